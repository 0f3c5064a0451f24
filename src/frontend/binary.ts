/**
 * @module frontend/binary
 * Finds an external program (haproxy, etcd) on PATH, or fails with one line naming the Debian
 * package that provides it.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export class MissingBinaryError extends Error {}

/** Debian installs daemons such as haproxy here, often missing from a user's PATH. */
const systemDirs = ['/usr/sbin', '/sbin'];

export function findBinary(name: string, debianPackage: string, path = process.env['PATH'] ?? ''): string {
  for (const dir of [...path.split(delimiter), ...systemDirs]) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new MissingBinaryError(`\`${name}\` not found on PATH; install the Debian package \`${debianPackage}\` (apt-get install -y ${debianPackage})`);
}

/**
 * A command line that the kernel ends with SIGTERM when our process dies, even by SIGKILL, for
 * programs that cannot watch their parent themselves (haproxy, etcd); plain where util-linux's
 * setpriv is missing.
 */
export function diesWithParent(bin: string, args: string[]): { command: string; args: string[] } {
  try {
    return { command: findBinary('setpriv', 'util-linux'), args: ['--pdeathsig', 'SIGTERM', bin, ...args] };
  } catch {
    return { command: bin, args };
  }
}

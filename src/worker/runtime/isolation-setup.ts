/**
 * @module worker/runtime/isolation-setup
 * Worker start-up for the `isolation` setting of process sandboxes: is bubblewrap isolation
 * usable here (bwrap, setpriv, nft, root), and the per-worker packet filter. 'bwrap' refuses to
 * start without them (one clear line, exit 78 through ConfigError); 'auto' falls back to 'none'
 * with a warning; 'none' runs functions unisolated, with a warning at start.
 */
import { constants as fsConstants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { ConfigError } from '../../config/compile.js';
import type { Logger } from '../../shared/logger.js';
import { installSandboxFirewall, nftPath, type SandboxFirewall } from './sandbox-firewall.js';
import { bwrapPath, setprivPath } from './sandbox-process.js';
import type { UidRanges } from './sandbox-uids.js';

const unisolatedHint = 'or pass --isolation none to run functions unisolated';

/** What isolation needs from the host, each with the fix; in the order they are checked. */
const requirements = [
  { path: bwrapPath, what: 'bubblewrap', fix: 'apt-get install bubblewrap' },
  { path: setprivPath, what: 'setpriv', fix: 'apt-get install util-linux' },
  { path: nftPath, what: 'nft', fix: 'apt-get install nftables' },
] as const;

/** Why bubblewrap isolation cannot work here, or undefined when it can. */
export async function isolationUnusableReason(uid = process.getuid?.() ?? -1): Promise<string | undefined> {
  for (const req of requirements) {
    const found = await access(req.path, fsConstants.X_OK).then(() => true, () => false);
    if (!found) return `${req.what} not found (${req.fix})`;
  }
  if (uid !== 0) return 'isolation needs root (each sandbox runs as its own uid)';
  return undefined;
}

/** The isolation to run with; throws ConfigError when 'bwrap' is asked for and unusable. */
export async function resolveIsolation(asked: string, log: Logger): Promise<'bwrap' | 'none'> {
  if (asked !== 'bwrap' && asked !== 'none' && asked !== 'auto') {
    throw new ConfigError(`worker: isolation must be bwrap, none or auto, got ${asked}`);
  }
  if (asked === 'none') {
    log.warn('worker.unisolated', { reason: '--isolation none: functions run as the worker user, unlimited' });
    return 'none';
  }
  const reason = await isolationUnusableReason();
  if (reason === undefined) return 'bwrap';
  if (asked === 'bwrap') throw new ConfigError(`worker: ${reason}, ${unisolatedHint}`);
  log.warn('worker.unisolated', { reason: `--isolation auto: ${reason}` });
  return 'none';
}

/** The worker's packet filter; a failure to load it is a start-up error like a missing binary. */
export async function startSandboxFirewall(
  stateDir: string,
  ranges: UidRanges,
  egressDenyCidrs: string,
  log: Logger,
): Promise<SandboxFirewall> {
  const denyCidrs = egressDenyCidrs.split(',').map((c) => c.trim()).filter((c) => c !== '');
  const nameservers = parseNameservers(await readFile('/etc/resolv.conf', 'utf8').catch(() => ''));
  try {
    return await installSandboxFirewall({ stateDir, ranges, denyCidrs, nameservers, log });
  } catch (err) {
    throw new ConfigError(`worker: packet filter not loaded: ${(err as Error).message}, ${unisolatedHint}`);
  }
}

/** The `nameserver` addresses of a resolv.conf text (anything not an IP address is skipped). */
export function parseNameservers(text: string): string[] {
  const found: string[] = [];
  for (const line of text.split('\n')) {
    const [key, address = ''] = line.trim().split(/\s+/);
    // A scoped IPv6 address (fe80::1%eth0) is not valid in an nft rule; leave it out.
    if (key === 'nameserver' && !address.includes('%') && isIP(address) !== 0) found.push(address);
  }
  return found;
}

/**
 * The isolation tests run sandboxes with: bwrap where usable, and always in CI (where an
 * unusable one then fails the worker loudly); elsewhere 'none', said once on stderr, so a
 * machine with only Node and npm still runs the suite (the wall tests skip, naming packages).
 */
export async function testIsolation(): Promise<'bwrap' | 'none'> {
  if (process.env.CI === 'true') return 'bwrap';
  const reason = await isolationUnusableReason();
  if (reason === undefined) return 'bwrap';
  if (!testIsolationWarned) {
    testIsolationWarned = true;
    process.stderr.write(`tests: process sandboxes run unisolated here: ${reason} ` +
      '(as root: apt-get install bubblewrap nftables util-linux)\n');
  }
  return 'none';
}

let testIsolationWarned = false;

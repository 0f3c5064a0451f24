/**
 * @module worker/runtime/bwrap-argv
 * The argv that walls one process sandbox in with bubblewrap and drops it to its own uid. Pure:
 * the caller probes the host once (which root entries are symlinks, where binaries live) and
 * passes the facts in; nothing here touches the file system, so it is unit-tested as data.
 *
 *   bwrap <namespaces> <read-only /usr, root symlinks, curated /etc> <proc, dev, /tmp tmpfs>
 *         <function dirs, read-only, at the same paths> --chdir <dir> --
 *     setpriv --reuid U --regid U --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all --
 *       <command> <args...>
 *
 * Why these choices:
 * - No --unshare-user: the worker is root, and a user namespace would make the sandbox root of
 *   its own namespace; a plain host uid from the pool is what the packet filter matches on.
 * - No --new-session: the sandbox must stay in the process group the runtime spawned, because
 *   delete() kills the whole group with one kill(-pgid). (TIOCSTI, the reason for
 *   --new-session, needs a terminal; sandboxes get none: stdin is /dev/null, output a file/pipe.)
 * - No --cap-drop ALL: it would also stop the inner setpriv from changing uid. setpriv clears
 *   every capability set itself when it leaves root (all Cap* 0, NoNewPrivs 1 afterwards).
 * - No --clearenv/--setenv: the process is spawned with exactly the sandbox's environment and
 *   bwrap passes it on unchanged; --setenv would put the function's env (secrets) into bwrap's
 *   command line, which every host user can read in /proc/<pid>/cmdline.
 * - Directories bwrap creates for mount points default to mode 0700, which the unprivileged
 *   function cannot enter; every parent of a bind target is therefore made explicitly 0755.
 */
import { dirname, posix } from 'node:path';

/** Entries of /etc a function may need (names, DNS, users, TLS roots, time zone); only ro. */
export const etcEntries = [
  'resolv.conf',
  'hosts',
  'nsswitch.conf',
  'passwd',
  'group',
  'ssl/certs',
  'ssl/openssl.cnf',
  'ca-certificates',
  'localtime',
  'alternatives',
] as const;

/** A top-level entry of the host root besides /usr: /bin, /lib, /lib64, /sbin. */
export type RootEntry =
  | { path: string; kind: 'symlink'; target: string }
  | { path: string; kind: 'dir' };

export interface BwrapHost {
  bwrapPath: string;
  setprivPath: string;
  /** /bin, /lib, /lib64, /sbin as found on the host (absent ones left out). */
  rootEntries: readonly RootEntry[];
  /** Absolute paths of the entries of `etcEntries` that exist on the host. */
  etcPaths: readonly string[];
}

export interface BwrapSandbox {
  uid: number;
  tmpMiB: number;
  /** The function's working directory on the host; '' means none (cwd /tmp). */
  workingDir: string;
  /** Resolved absolute path of the executable. */
  commandPath: string;
  args: readonly string[];
  /**
   * Further host directories to show read-only at the same path: the directories of
   * absolute-path arguments (`node /srv/app/server.js`) that the function spec names.
   */
  extraDirs: readonly string[];
}

/** Directories always visible, read-only; a path below them needs no bind of its own. */
const systemDirs = ['/usr'];

export function bwrapArgv(host: BwrapHost, sb: BwrapSandbox): string[] {
  const argv = [host.bwrapPath, ...namespaceArgs()];
  const made = new Set<string>(['/']);
  argv.push('--ro-bind', '/usr', '/usr');
  for (const entry of host.rootEntries) {
    if (entry.kind === 'symlink') argv.push('--symlink', entry.target, entry.path);
    else argv.push('--ro-bind', entry.path, entry.path);
    made.add(entry.path);
  }
  for (const path of host.etcPaths) {
    argv.push(...parentDirArgs(path, made), '--ro-bind', path, path);
  }
  argv.push('--proc', '/proc', '--dev', '/dev');
  argv.push('--perms', '1777', '--size', String(sb.tmpMiB * 1_048_576), '--tmpfs', '/tmp');
  made.add('/proc').add('/dev').add('/tmp');
  // After the /tmp tmpfs, so a function directory below /tmp is not hidden by it.
  for (const dir of functionDirs(sb, usrSymlinks(host))) {
    argv.push(...parentDirArgs(dir, made), '--ro-bind', dir, dir);
  }
  argv.push('--chdir', sb.workingDir !== '' ? sb.workingDir : '/tmp', '--');
  argv.push(...setprivArgs(host.setprivPath, sb.uid), sb.commandPath, ...sb.args);
  return argv;
}

function namespaceArgs(): string[] {
  // Host network on purpose (see sandbox-firewall.ts); pid, ipc, uts and cgroup are private.
  return ['--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup', '--die-with-parent'];
}

/** Runs inside the sandbox: become `uid`, lose every capability and the right to regain any. */
export function setprivArgs(setprivPath: string, uid: number): string[] {
  const id = String(uid);
  return [
    setprivPath,
    '--reuid', id,
    '--regid', id,
    '--clear-groups',
    '--no-new-privs',
    '--inh-caps=-all',
    '--bounding-set=-all',
    '--',
  ];
}

/** Root entries that are symlinks into /usr (merged-/usr: /bin -> usr/bin): already visible. */
function usrSymlinks(host: BwrapHost): string[] {
  return host.rootEntries
    .filter((e) => e.kind === 'symlink' && (e.target === 'usr' || e.target.startsWith('usr/')))
    .map((e) => e.path);
}

/**
 * The host directories the function needs, read-only: its working dir, its executable's dir,
 * and the extra dirs; minus those inside /usr (or a root symlink into it, as /bin on merged-/usr
 * hosts: binding it again costs a mount per create) or inside another one of the list.
 */
export function functionDirs(sb: BwrapSandbox, usrLinks: readonly string[] = []): string[] {
  const wanted = [sb.workingDir, dirname(sb.commandPath), ...sb.extraDirs]
    .filter((dir) => dir !== '')
    .map((dir) => posix.normalize(dir).replace(/(.)\/+$/, '$1'))
    // The host root itself would undo every wall (and hide /proc, /tmp); cwd '/' is the sandbox's.
    .filter((dir) => dir !== '/');
  const unique = [...new Set(wanted)].sort((a, b) => a.length - b.length);
  const kept: string[] = [];
  for (const dir of unique) {
    if ([...systemDirs, ...usrLinks, ...kept].some((outer) => isInside(dir, outer))) continue;
    kept.push(dir);
  }
  return kept;
}

/** True when `path` is `outer` or below it. */
function isInside(path: string, outer: string): boolean {
  return path === outer || path.startsWith(outer === '/' ? '/' : `${outer}/`);
}

/** `--perms 0755 --dir` for every ancestor of `path` not made yet (bwrap would make it 0700). */
function parentDirArgs(path: string, made: Set<string>): string[] {
  const args: string[] = [];
  const parts = path.split('/').filter(Boolean);
  for (let i = 1; i < parts.length; i++) {
    const dir = `/${parts.slice(0, i).join('/')}`;
    if (made.has(dir) || systemDirs.some((outer) => isInside(dir, outer))) continue;
    made.add(dir);
    args.push('--perms', '0755', '--dir', dir);
  }
  return args;
}

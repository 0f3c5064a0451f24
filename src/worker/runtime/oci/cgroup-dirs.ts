/**
 * @module worker/runtime/oci/cgroup-dirs
 * Where runc puts a container's cgroups when its cgroupsPath is relative: below the CALLER's
 * own cgroup in every hierarchy (v1 controllers, named v1 hierarchies like name=systemd, and
 * the unified one). We need those directories for two things runc does not do for us:
 * reading the memory cgroup's OOM counter after an exit, and removing our parent directory.
 *
 *   /proc/self/cgroup     "4:memory:/process_api/ab12"   "0::/"
 *   /proc/self/mountinfo  "... /sys/fs/cgroup/memory ... - cgroup cgroup rw,memory"
 *   => /sys/fs/cgroup/memory/process_api/ab12/<cgroupsPath>
 *
 * The parsers are pure (tested on text); `ownCgroupDirs` reads the two files.
 */
import { readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { unescapeMountField } from './mount-points.js';

export interface CgroupHierarchyDir {
  /** 'v1' for a legacy hierarchy, 'v2' for the unified one. */
  version: 'v1' | 'v2';
  /** Controllers (or `name=...`) of the hierarchy; [] for v2. */
  controllers: string[];
  /** The worker's own cgroup directory in this hierarchy. */
  dir: string;
}

interface CgroupMount {
  root: string;
  mountPoint: string;
  version: 'v1' | 'v2';
  options: string[];
}

/** Cgroup mounts listed in a mountinfo text (fields: see proc(5)). */
export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const [fsType = '', , superOptions = ''] = line.slice(sep + 3).split(' ');
    if (fsType !== 'cgroup' && fsType !== 'cgroup2') continue;
    const root = unescapeMountField(left[3] ?? '');
    const mountPoint = unescapeMountField(left[4] ?? '');
    mounts.push({ root, mountPoint, version: fsType === 'cgroup2' ? 'v2' : 'v1', options: superOptions.split(',') });
  }
  return mounts;
}

/** The worker's own directory in every hierarchy it belongs to and that is mounted. */
export function resolveCgroupDirs(procSelfCgroup: string, mountinfo: string): CgroupHierarchyDir[] {
  const mounts = parseCgroupMounts(mountinfo);
  const dirs: CgroupHierarchyDir[] = [];
  for (const line of procSelfCgroup.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const names = line.slice(first + 1, second);
    const ownPath = line.slice(second + 1);
    const controllers = names === '' ? [] : names.split(',');
    const version = names === '' ? 'v2' : 'v1';
    const mount = mounts.find((m) => m.version === version && controllers.every((c) => m.options.includes(c)));
    if (mount === undefined) continue;
    const relative = posix.relative(mount.root, ownPath);
    if (relative.startsWith('..')) continue; // our cgroup is outside what is mounted here
    dirs.push({ version, controllers, dir: join(mount.mountPoint, relative) });
  }
  return dirs;
}

/** Reads /proc/self/{cgroup,mountinfo}; [] when they cannot be read. */
export async function ownCgroupDirs(): Promise<CgroupHierarchyDir[]> {
  try {
    const [cgroup, mountinfo] = await Promise.all([
      readFile('/proc/self/cgroup', 'utf8'),
      readFile('/proc/self/mountinfo', 'utf8'),
    ]);
    return resolveCgroupDirs(cgroup, mountinfo);
  } catch {
    return [];
  }
}

/**
 * The file that counts OOM kills of a container, and how to read it: v1 `memory.oom_control`
 * and v2 `memory.events` both carry an `oom_kill N` line. Undefined without a memory hierarchy.
 */
export function oomCounterFile(dirs: readonly CgroupHierarchyDir[], cgroupsPath: string): string | undefined {
  const v1 = dirs.find((d) => d.version === 'v1' && d.controllers.includes('memory'));
  if (v1) return join(v1.dir, cgroupsPath, 'memory.oom_control');
  const v2 = dirs.find((d) => d.version === 'v2');
  return v2 ? join(v2.dir, cgroupsPath, 'memory.events') : undefined;
}

/** `oom_kill N` from either file's text; 0 when absent. */
export function parseOomKills(text: string): number {
  const match = /^oom_kill (\d+)$/m.exec(text);
  return match ? Number(match[1]) : 0;
}

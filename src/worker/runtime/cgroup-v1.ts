/**
 * @module worker/runtime/cgroup-v1
 * Resource limits for process sandboxes through cgroup v1 (sandboxes.md: on this machine type
 * cpu, memory and pids are v1 hierarchies; the v2 mount offers only hugetlb). ~0.3 ms per create.
 *
 *   /sys/fs/cgroup/<controller><own path>/<parent>/<sandboxId>/   for cpu, memory and pids
 *
 * Each sandbox's cgroups sit below the worker's OWN cgroup of each controller (read from
 * /proc/self/cgroup), so a memory limit on the worker also bounds its sandboxes (runc does the
 * same; crun does not). `<parent>` is one directory per runtime (per state dir).
 * A process is placed by a tiny sh prologue that writes its own pid into each cgroup.procs and
 * then execs the function, so everything it forks is inside from the first instruction.
 * Zombies are not listed in cgroup.procs and do not block rmdir.
 * Not handled: cgroup v2 (production hosts will need it), cpusets, memory+swap.
 */
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { assert } from '../../shared/assert.js';

const cgroupRoot = '/sys/fs/cgroup';
const controllers = ['cpu', 'memory', 'pids'] as const;
/** CFS period; the quota is cpuMillis of it (1000 millis = one full CPU). */
const cpuPeriodUs = 100_000;
/** The kernel refuses quotas under 1 ms. */
const cpuQuotaUsMin = 1_000;
/** Processes (threads count too) one sandbox may hold: stops fork bombs, allows thread pools. */
export const sandboxPidsMax = 1_024;
/** Bound on waiting for a killed cgroup to empty. */
const cgroupEmptyWaitMs = 5_000;
const cgroupPollMs = 2;

export interface CgroupHost {
  /** Per controller: the worker's own cgroup directory, parent of ours. */
  ownDirs: Record<(typeof controllers)[number], string>;
}

export interface SandboxCgroup {
  /** One directory per controller, pids first (its cgroup.procs is the membership we kill). */
  dirs: string[];
}

export interface CgroupLimits {
  cpuMillis: number;
  memoryMiB: number;
}

/** The worker's own cgroup per controller, or a reason why cgroup v1 limits cannot work here. */
export type CgroupDetection = { ok: true; host: CgroupHost } | { ok: false; reason: string };

export async function detectCgroupV1(): Promise<CgroupDetection> {
  const self = await readFile('/proc/self/cgroup', 'utf8');
  const ownDirs: Partial<CgroupHost['ownDirs']> = {};
  for (const line of self.split('\n')) {
    // "4:memory:/process_api/ddea..." ; v1 lines name their controllers, comma-separated.
    const [, names = '', path = ''] = line.split(':');
    for (const controller of controllers) {
      if (names.split(',').includes(controller)) {
        ownDirs[controller] = join(cgroupRoot, names.includes(',') ? names : controller, path);
      }
    }
  }
  for (const controller of controllers) {
    const dir = ownDirs[controller];
    if (dir === undefined) return { ok: false, reason: `no cgroup v1 '${controller}' hierarchy` };
    try {
      await readFile(join(dir, 'cgroup.procs'), 'utf8');
    } catch (err) {
      return { ok: false, reason: `cgroup ${dir} unreadable: ${(err as Error).message}` };
    }
  }
  return { ok: true, host: { ownDirs: ownDirs as CgroupHost['ownDirs'] } };
}

/** Makes the sandbox's cgroups and writes its limits. On failure, removes what it made. */
export async function createSandboxCgroup(
  host: CgroupHost,
  parent: string,
  sandboxId: string,
  limits: CgroupLimits,
): Promise<SandboxCgroup> {
  assert(limits.cpuMillis > 0 && limits.memoryMiB > 0, 'limits must be positive');
  const dir = (c: (typeof controllers)[number]): string => join(host.ownDirs[c], parent, sandboxId);
  const cgroup: SandboxCgroup = { dirs: [dir('pids'), dir('cpu'), dir('memory')] };
  try {
    for (const d of cgroup.dirs) await mkdir(d, { recursive: true });
    const quotaUs = Math.max(cpuQuotaUsMin, Math.round((limits.cpuMillis * cpuPeriodUs) / 1000));
    await writeFile(join(dir('pids'), 'pids.max'), String(sandboxPidsMax));
    await writeFile(join(dir('cpu'), 'cpu.cfs_period_us'), String(cpuPeriodUs));
    await writeFile(join(dir('cpu'), 'cpu.cfs_quota_us'), String(quotaUs));
    const memoryBytes = limits.memoryMiB * 1_048_576;
    await writeFile(join(dir('memory'), 'memory.limit_in_bytes'), String(memoryBytes));
  } catch (err) {
    await removeSandboxCgroup(cgroup);
    throw err;
  }
  return cgroup;
}

/**
 * argv prefix that joins every cgroup of `cgroup` and then execs the rest of argv:
 * `sh -c <prologue> sh <procs files...> -- <command...>`. A failed write exits 126.
 */
export function cgroupJoinArgv(cgroup: SandboxCgroup): string[] {
  const prologue =
    'for f do shift; [ "$f" = -- ] && break; echo $$ > "$f" || exit 126; done; exec "$@"';
  const procsFiles = cgroup.dirs.map((d) => join(d, 'cgroup.procs'));
  return ['/bin/sh', '-c', prologue, 'sh', ...procsFiles, '--'];
}

/**
 * SIGKILLs every process in the sandbox's pids cgroup, including any that left the process
 * group with setsid(), until the cgroup is empty. True when empty within the bound.
 */
export async function killSandboxCgroup(cgroup: SandboxCgroup): Promise<boolean> {
  const procsFile = join(cgroup.dirs[0], 'cgroup.procs');
  const t0Ms = performance.now();
  for (;;) {
    const pids = (await readFile(procsFile, 'utf8').catch(() => '')).split('\n').filter(Boolean);
    if (pids.length === 0) return true;
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // Already gone between the read and the kill.
      }
    }
    if (performance.now() - t0Ms > cgroupEmptyWaitMs) return false;
    await sleep(cgroupPollMs);
  }
}

/** Removes the sandbox's cgroup directories (they must be empty). Missing ones are fine. */
export async function removeSandboxCgroup(cgroup: SandboxCgroup): Promise<void> {
  for (const dir of cgroup.dirs) {
    try {
      await rmdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/**
 * Start-up clean-up: kills and removes every sandbox cgroup a previous run left below `parent`.
 * Returns how many sandbox cgroups were removed.
 */
export async function reapSandboxCgroups(host: CgroupHost, parent: string): Promise<number> {
  const names = new Set<string>();
  for (const controller of controllers) {
    const entries = await readdir(join(host.ownDirs[controller], parent), { withFileTypes: true })
      .catch(() => []);
    for (const entry of entries) if (entry.isDirectory()) names.add(entry.name);
  }
  for (const name of names) {
    const cgroup: SandboxCgroup = {
      dirs: [
        join(host.ownDirs.pids, parent, name),
        join(host.ownDirs.cpu, parent, name),
        join(host.ownDirs.memory, parent, name),
      ],
    };
    await killSandboxCgroup(cgroup);
    await removeSandboxCgroup(cgroup);
  }
  return names.size;
}

/** Removes the per-runtime parent directories once no sandbox is left (on close). */
export async function removeCgroupParent(host: CgroupHost, parent: string): Promise<void> {
  for (const controller of controllers) {
    await rmdir(join(host.ownDirs[controller], parent)).catch(() => undefined);
  }
}

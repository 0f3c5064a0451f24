/**
 * @module worker/runtime/cgroup-v1
 * The cgroup v1 back-end of cgroups.ts (this machine type: cpu, memory and pids are separate v1
 * hierarchies; the unified mount offers only hugetlb). One directory per controller:
 *
 *   /sys/fs/cgroup/<controller><own path>/<parent>/<sandboxId>/
 *
 * pids first, because its cgroup.procs is the membership the driver kills. Not handled:
 * cpusets, memory+swap.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cpuPeriodUs, cpuQuotaUs, type CgroupBackend, type CgroupLimits } from './cgroup-backend.js';

const controllers = ['pids', 'cpu', 'memory'] as const;

export type OwnDirsV1 = { ok: true; dirs: string[] } | { ok: false; reason: string };

/** The worker's own pids, cpu and memory dirs from /proc/self/cgroup text, in that order. */
export function cgroupV1OwnDirs(root: string, selfCgroup: string): OwnDirsV1 {
  const found: Partial<Record<(typeof controllers)[number], string>> = {};
  for (const line of selfCgroup.split('\n')) {
    // "4:memory:/process_api/ddea..."; v1 lines name their controllers, comma-separated.
    const [, names = '', path = ''] = line.split(':');
    for (const controller of controllers) {
      if (names.split(',').includes(controller)) {
        found[controller] = join(root, names.includes(',') ? names : controller, path);
      }
    }
  }
  const dirs: string[] = [];
  for (const controller of controllers) {
    const dir = found[controller];
    if (dir === undefined) return { ok: false, reason: `no cgroup v1 '${controller}' hierarchy` };
    dirs.push(dir);
  }
  return { ok: true, dirs };
}

export function cgroupV1Backend(ownDirs: string[], pidsMax: number): CgroupBackend {
  return {
    version: 'v1',
    ownDirs,
    memoryIndex: 2,
    oomFile: 'memory.oom_control',
    prepare: async () => {},
    async writeLimits(dirs: readonly string[], limits: CgroupLimits): Promise<void> {
      const [pids, cpu, memory] = dirs;
      await writeFile(join(pids, 'pids.max'), String(pidsMax));
      await writeFile(join(cpu, 'cpu.cfs_period_us'), String(cpuPeriodUs));
      await writeFile(join(cpu, 'cpu.cfs_quota_us'), String(cpuQuotaUs(limits.cpuMillis)));
      const memoryBytes = limits.memoryMiB * 1_048_576;
      await writeFile(join(memory, 'memory.limit_in_bytes'), String(memoryBytes));
    },
    async writeCpu(dirs: readonly string[], cpuMillis: number): Promise<void> {
      await writeFile(join(dirs[1], 'cpu.cfs_quota_us'), String(cpuQuotaUs(cpuMillis)));
    },
  };
}

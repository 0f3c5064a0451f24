/**
 * @module worker/runtime/cgroup-v2
 * The cgroup v2 back-end of cgroups.ts (production hosts; not usable on this machine type,
 * where the unified mount offers only hugetlb, so it is unit-tested against a fake tree).
 * One directory per sandbox in the unified hierarchy:
 *
 *   <cgroup2 mount><own path>/<parent>/<sandboxId>/   cpu.max, memory.max, pids.max
 *
 * Controllers must be delegated down the path: `+cpu +memory +pids` into the subtree_control of
 * the worker's own cgroup and of `<parent>`. v2 forbids that in a cgroup which holds processes
 * (the "no internal processes" rule), which is the normal case for a service's cgroup; the
 * worker then moves itself into a leaf `<parent>-worker` next to `<parent>` and tries again,
 * as systemd recommends for delegated services.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cpuPeriodUs, cpuQuotaUs, type CgroupBackend, type CgroupLimits } from './cgroup-backend.js';

const controllers = ['cpu', 'memory', 'pids'] as const;
const enableLine = controllers.map((c) => `+${c}`).join(' ');

export type OwnDirV2 = { ok: true; dir: string } | { ok: false; reason: string };

/** The worker's own unified-hierarchy dir, if the unified mount offers cpu, memory and pids. */
export async function cgroupV2OwnDir(root: string, selfCgroup: string): Promise<OwnDirV2> {
  const line = selfCgroup.split('\n').find((l) => l.startsWith('0::'));
  if (line === undefined) return { ok: false, reason: 'no cgroup v2 hierarchy' };
  const path = line.slice(3);
  // Pure v2 mounts at the root; the hybrid layout mounts it at <root>/unified.
  for (const mount of [root, join(root, 'unified')]) {
    const text = await readFile(join(mount, 'cgroup.controllers'), 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    const have = text.trim().split(/\s+/);
    const missing = controllers.filter((c) => !have.includes(c));
    if (missing.length > 0) {
      return { ok: false, reason: `cgroup v2 at ${mount} lacks ${missing.join(', ')}` };
    }
    return { ok: true, dir: join(mount, path) };
  }
  return { ok: false, reason: `no cgroup v2 mount under ${root}` };
}

export function cgroupV2Backend(ownDir: string, pidsMax: number, selfPid: number): CgroupBackend {
  return {
    version: 'v2',
    ownDirs: [ownDir],
    memoryIndex: 0,
    oomFile: 'memory.events',
    async prepare(parent: string): Promise<void> {
      try {
        await writeFile(join(ownDir, 'cgroup.subtree_control'), enableLine);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EBUSY') throw err;
        const leaf = join(ownDir, `${parent}-worker`);
        await mkdir(leaf, { recursive: true });
        await writeFile(join(leaf, 'cgroup.procs'), String(selfPid));
        await writeFile(join(ownDir, 'cgroup.subtree_control'), enableLine);
      }
      await mkdir(join(ownDir, parent), { recursive: true });
      await writeFile(join(ownDir, parent, 'cgroup.subtree_control'), enableLine);
    },
    async writeLimits(dirs: readonly string[], limits: CgroupLimits): Promise<void> {
      const [dir] = dirs;
      await writeFile(join(dir, 'pids.max'), String(pidsMax));
      await writeFile(join(dir, 'cpu.max'), `${cpuQuotaUs(limits.cpuMillis)} ${cpuPeriodUs}`);
      await writeFile(join(dir, 'memory.max'), String(limits.memoryMiB * 1_048_576));
    },
    async writeCpu(dirs: readonly string[], cpuMillis: number): Promise<void> {
      await writeFile(join(dirs[0], 'cpu.max'), `${cpuQuotaUs(cpuMillis)} ${cpuPeriodUs}`);
    },
  };
}

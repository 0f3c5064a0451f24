/**
 * @module worker/runtime/cgroups
 * Resource limits for process sandboxes behind one small driver, with a cgroup v1 back-end
 * (cgroup-v1.ts; this machine type: cpu, memory and pids are v1 hierarchies) and a v2 back-end
 * (cgroup-v2.ts; production hosts). ~0.3 ms per create.
 *
 *   <own dir of each controller>/<parent>/<sandboxId>/
 *
 * Sandbox cgroups sit below the worker's OWN cgroup (read from /proc/self/cgroup), so a limit on
 * the worker also bounds its sandboxes (runc does the same; crun does not). `<parent>` is one
 * directory per runtime (per state dir). A process is placed by a tiny sh prologue that writes
 * its own pid into each cgroup.procs and then execs the rest (bwrap, the function), so all it
 * forks is inside from the first instruction. Zombies are not listed in cgroup.procs and do not
 * block rmdir. The memory cgroup's OOM-kill counter is read before removal, so a sandbox killed
 * at its memory limit is reported as such rather than as a bare SIGKILL.
 */
import { mkdir, readdir, readFile, rename, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { assert } from '../../shared/assert.js';
import type { CgroupBackend, CgroupLimits } from './cgroup-backend.js';
import { cgroupV1Backend, cgroupV1OwnDirs } from './cgroup-v1.js';
import { cgroupV2Backend, cgroupV2OwnDir } from './cgroup-v2.js';

/** Bound on waiting for a killed cgroup to empty. */
const cgroupEmptyWaitMs = 5_000;
const cgroupPollMs = 2;

export { cpuPeriodUs, cpuQuotaUs, type CgroupBackend, type CgroupLimits } from './cgroup-backend.js';
export interface SandboxCgroup {
  /** One directory per hierarchy; the first one's cgroup.procs is the membership we kill. */
  dirs: string[];
  /** The directory holding the memory controller's files (limit, OOM counter). */
  memoryDir: string;
  memoryMiB: number;
}

export interface CgroupDriver {
  readonly version: 'v1' | 'v2';
  readonly parent: string;
  create(sandboxId: string, limits: CgroupLimits): Promise<SandboxCgroup>;
  /** A cgroup without limits yet (a launcher waits in it); adopt() makes it a sandbox's. */
  createIdle(name: string): Promise<SandboxCgroup>;
  /** Renames an idle cgroup (processes inside stay) to the sandbox's id and writes its limits. */
  adopt(idle: SandboxCgroup, sandboxId: string, limits: CgroupLimits): Promise<SandboxCgroup>;
  /** Sets the CPU quota alone (ends the start-up boost once the sandbox is ready). */
  setCpu(cgroup: SandboxCgroup, cpuMillis: number): Promise<void>;
  /** Processes the kernel OOM-killed in this cgroup so far (0 when unreadable). */
  oomKills(cgroup: SandboxCgroup): Promise<number>;
  remove(cgroup: SandboxCgroup): Promise<void>;
  /** Start-up clean-up of sandbox cgroups a previous run left; returns how many. */
  reap(): Promise<number>;
  /** Removes the per-runtime parent directories (on close, once no sandbox is left). */
  removeParent(): Promise<void>;
}

export interface DetectOptions {
  /** Name of the per-runtime directory below the worker's own cgroups. */
  parent: string;
  pidsMax: number;
  /** For tests: a fake tree instead of /sys/fs/cgroup, and a fake /proc/self/cgroup. */
  root?: string;
  selfCgroup?: string;
  selfPid?: number;
}

export type CgroupDetection = { ok: true; driver: CgroupDriver } | { ok: false; reason: string };

/** v1 when cpu, memory and pids are v1 hierarchies; else v2 when the unified one has them. */
export async function detectCgroups(opts: DetectOptions): Promise<CgroupDetection> {
  const root = opts.root ?? '/sys/fs/cgroup';
  const self = opts.selfCgroup ?? (await readFile('/proc/self/cgroup', 'utf8'));
  const v1 = cgroupV1OwnDirs(root, self);
  let backend: CgroupBackend;
  if (v1.ok) {
    backend = cgroupV1Backend(v1.dirs, opts.pidsMax);
  } else {
    const v2 = await cgroupV2OwnDir(root, self);
    if (!v2.ok) return { ok: false, reason: `${v1.reason}; ${v2.reason}` };
    backend = cgroupV2Backend(v2.dir, opts.pidsMax, opts.selfPid ?? process.pid);
  }
  for (const dir of backend.ownDirs) {
    try {
      await readFile(join(dir, 'cgroup.procs'), 'utf8');
    } catch (err) {
      return { ok: false, reason: `cgroup ${dir} unreadable: ${(err as Error).message}` };
    }
  }
  try {
    await backend.prepare(opts.parent);
  } catch (err) {
    return { ok: false, reason: `cgroup ${backend.version} set-up failed: ${(err as Error).message}` };
  }
  return { ok: true, driver: new Driver(backend, opts.parent) };
}

/** `oom_kill N` from memory.oom_control (v1) or memory.events (v2); 0 when absent. */
export function parseOomKills(text: string): number {
  const match = /^oom_kill (\d+)$/m.exec(text);
  return match ? Number(match[1]) : 0;
}

class Driver implements CgroupDriver {
  readonly version: 'v1' | 'v2';

  constructor(
    private readonly backend: CgroupBackend,
    readonly parent: string,
  ) {
    this.version = backend.version;
  }

  private cgroupOf(name: string, memoryMiB: number): SandboxCgroup {
    const dirs = this.backend.ownDirs.map((own) => join(own, this.parent, name));
    return { dirs, memoryDir: dirs[this.backend.memoryIndex], memoryMiB };
  }

  async create(sandboxId: string, limits: CgroupLimits): Promise<SandboxCgroup> {
    assert(limits.cpuMillis > 0 && limits.memoryMiB > 0, 'limits must be positive');
    const cgroup = this.cgroupOf(sandboxId, limits.memoryMiB);
    try {
      for (const dir of cgroup.dirs) await mkdir(dir, { recursive: true });
      await this.backend.writeLimits(cgroup.dirs, limits);
    } catch (err) {
      await this.remove(cgroup).catch(() => undefined);
      throw err;
    }
    return cgroup;
  }

  async createIdle(name: string): Promise<SandboxCgroup> {
    const cgroup = this.cgroupOf(name, 0);
    try {
      for (const dir of cgroup.dirs) await mkdir(dir, { recursive: true });
    } catch (err) {
      await this.remove(cgroup).catch(() => undefined);
      throw err;
    }
    return cgroup;
  }

  async adopt(idle: SandboxCgroup, sandboxId: string, limits: CgroupLimits): Promise<SandboxCgroup> {
    assert(limits.cpuMillis > 0 && limits.memoryMiB > 0, 'limits must be positive');
    const cgroup = this.cgroupOf(sandboxId, limits.memoryMiB);
    // Named by the sandbox, so people (and reap) find it; v1 and v2 allow renames in a parent.
    for (let i = 0; i < idle.dirs.length; i++) await rename(idle.dirs[i], cgroup.dirs[i]);
    await this.backend.writeLimits(cgroup.dirs, limits);
    return cgroup;
  }

  async setCpu(cgroup: SandboxCgroup, cpuMillis: number): Promise<void> {
    assert(cpuMillis > 0, 'cpuMillis must be positive');
    await this.backend.writeCpu(cgroup.dirs, cpuMillis);
  }

  async oomKills(cgroup: SandboxCgroup): Promise<number> {
    const text = await readFile(join(cgroup.memoryDir, this.backend.oomFile), 'utf8').catch(() => '');
    return parseOomKills(text);
  }

  async remove(cgroup: SandboxCgroup): Promise<void> {
    for (const dir of cgroup.dirs) {
      try {
        await rmdir(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  }

  async reap(): Promise<number> {
    const names = new Set<string>();
    for (const own of this.backend.ownDirs) {
      const entries = await readdir(join(own, this.parent), { withFileTypes: true }).catch(() => []);
      for (const entry of entries) if (entry.isDirectory()) names.add(entry.name);
    }
    for (const name of names) {
      const cgroup = this.cgroupOf(name, 0);
      await killSandboxCgroup(cgroup);
      await this.remove(cgroup).catch(() => undefined);
    }
    return names.size;
  }

  async removeParent(): Promise<void> {
    for (const own of this.backend.ownDirs) {
      await rmdir(join(own, this.parent)).catch(() => undefined);
    }
  }
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
 * SIGKILLs every process in the sandbox's cgroup, including any that left the process group
 * with setsid(), until the cgroup is empty. True when empty within the bound.
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

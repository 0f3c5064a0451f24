/**
 * @module worker/runtime/cgroup-backend
 * What the cgroup v1 and v2 back-ends implement for cgroups.ts, and the CPU quota both write.
 */

/** CFS period; the quota is cpuMillis of it (1000 millis = one full CPU). */
export const cpuPeriodUs = 100_000;
/** The kernel refuses quotas under 1 ms. */
const cpuQuotaUsMin = 1_000;

export interface CgroupLimits {
  cpuMillis: number;
  memoryMiB: number;
}

/** The CFS limit for `cpuMillis` as OCI specs and runc take it (oci and containerd runtimes). */
export function cpuLimit(cpuMillis: number): { quota: number; period: number } {
  return { quota: cpuQuotaUs(cpuMillis), period: cpuPeriodUs };
}

/** The CFS quota for `cpuMillis` of one CPU per period. */
export function cpuQuotaUs(cpuMillis: number): number {
  return Math.max(cpuQuotaUsMin, Math.round((cpuMillis * cpuPeriodUs) / 1000));
}

/** What differs between v1 and v2: where the hierarchies are and how limits are written. */
export interface CgroupBackend {
  readonly version: 'v1' | 'v2';
  /** The worker's own cgroup dirs, one per hierarchy; the first holds the pids controller. */
  readonly ownDirs: readonly string[];
  /** Index into ownDirs of the memory controller's hierarchy. */
  readonly memoryIndex: number;
  /** One-time set-up below the worker's cgroup (v2: delegating controllers). */
  prepare(parent: string): Promise<void>;
  writeLimits(dirs: readonly string[], limits: CgroupLimits): Promise<void>;
  /** Rewrites the CPU quota alone (the end of a start-up boost). */
  writeCpu(dirs: readonly string[], cpuMillis: number): Promise<void>;
  /** The file holding `oom_kill N`, relative to the memory dir. */
  readonly oomFile: string;
}

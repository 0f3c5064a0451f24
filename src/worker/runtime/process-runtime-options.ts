/**
 * @module worker/runtime/process-runtime-options
 * What createProcessRuntime takes and returns (kept apart so the runtime module stays small).
 */
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import type { PortAllocator } from './port-allocator.js';
import type { SandboxRuntime } from './runtime.js';
import type { ReapResult } from './sandbox-records.js';
import type { SandboxUids } from './sandbox-uids.js';

export interface ProcessRuntimeOptions {
  host: string;
  portRange: readonly [number, number];
  stateDir: string;
  readinessTimeoutMs: number;
  readinessBackoffMs: readonly [number, number];
  logger: Logger;
  clock: Clock;
  /**
   * 'bwrap': bubblewrap namespaces, a minimal read-only fs, its own uid, no capabilities.
   * When bwrap or setpriv is missing, every create fails (the worker checks before).
   * @default 'bwrap'
   */
  isolation?: 'bwrap' | 'none';
  /**
   * 'cgroups': each sandbox gets cpu (quota = fn cpuMillis), memory (fn memoryMiB) and pids
   * limits below the worker's own cgroups (v1 or v2); delete() then also kills processes that
   * left the group. Isolated sandboxes start from pre-joined launchers (sandbox-launchers.ts);
   * others pay a /bin/sh join prologue per create. When unusable, every create fails.
   * @default 'cgroups' with isolation 'bwrap', else 'none'
   */
  limits?: 'none' | 'cgroups';
  /** Uids shared by every runtime of the worker; a private pool of the default range if unset. */
  uids?: SandboxUids;
  /** Ports shared by every runtime of the worker; a private allocator of portRange if unset. */
  ports?: PortAllocator;
  /** @default workerDefaults.sandboxTmpMiB */
  sandboxTmpMiB?: number;
  /** @default workerDefaults.sandboxPidsMax */
  sandboxPidsMax?: number;
  /** CPU quota until ready when the function's is smaller; 0 = off. @default workerDefaults.sandboxStartupCpuMillis */
  sandboxStartupCpuMillis?: number;
}

export interface ProcessRuntime extends SandboxRuntime {
  readonly name: 'process';
  /** The start-up reaping of a previous run's sandboxes; create() waits for it. */
  readonly orphansReaped: Promise<ReapResult>;
}

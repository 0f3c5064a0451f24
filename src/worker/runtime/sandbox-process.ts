/**
 * @module worker/runtime/sandbox-process
 * Starting and stopping ONE sandbox process, without any runtime bookkeeping: cgroups (when
 * limits are on), argv with its wrappers, minimal env, log file, spawn, pid record; and the
 * kill that ends only when every process is gone. `process-runtime.ts` owns ports, the sandbox
 * map and the lifecycle around these two steps.
 *
 * argv of a sandbox, outermost first (each part optional except the command):
 *   setpriv --pdeathsig SIGKILL --   dies with the worker
 *   /bin/sh -c <join cgroups> sh ... --   enters cpu/memory/pids cgroups, then execs
 *   <command> <args...>               the function, with the same pid as all of the above
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import {
  cgroupJoinArgv,
  createSandboxCgroup,
  detectCgroupV1,
  killSandboxCgroup,
  reapSandboxCgroups,
  removeSandboxCgroup,
  type CgroupHost,
  type SandboxCgroup,
} from './cgroup-v1.js';
import { killProcessGroup, killProcessGroupAndWait } from './process-group.js';
import {
  openSandboxLog,
  sandboxEnv,
  spawnSandboxProcess,
  type SpawnedProcess,
  type SpawnResult,
} from './process-spawn.js';
import type { SandboxSpec } from './runtime.js';
import { sandboxPaths, writeSandboxRecord } from './sandbox-records.js';

/** Bound on waiting for a SIGKILLed child's exit event; past it something is badly wrong. */
const exitWaitMsMax = 5_000;
/** Bound on waiting for the rest of a killed group (grandchildren) to be reaped. */
const groupExitWaitMsMax = 5_000;

export interface SandboxCgroups {
  host: CgroupHost;
  /** One directory per runtime below the worker's own cgroups. */
  parent: string;
}

export interface SandboxProcessContext {
  stateDir: string;
  clock: Clock;
  log: Logger;
  /** Prefix making the sandbox die with the worker ([] when setpriv is missing). */
  wrapper: readonly string[];
  cgroups?: SandboxCgroups;
}

/** The resolved command line of a function and where it runs. */
export interface SandboxCommand {
  command: string[];
  cwd: string;
  searchPath: string;
}

export interface SandboxProcess extends SpawnedProcess {
  port: number;
  recordWritten: Promise<void>;
  cgroup?: SandboxCgroup;
}

/**
 * Detects cgroup v1 and removes sandbox cgroups a previous run on `stateDir` left. Returns the
 * cgroups to use, or why limits cannot work here.
 */
export async function prepareSandboxCgroups(
  stateDir: string,
  log: Logger,
): Promise<SandboxCgroups | string> {
  const detected = await detectCgroupV1();
  if (!detected.ok) return `limits 'cgroup-v1' unavailable: ${detected.reason}`;
  // One parent per state dir, so two runtimes on one machine never touch each other's.
  const digest = createHash('sha256').update(resolve(stateDir)).digest('hex');
  const parent = `dirigent-${digest.slice(0, 12)}`;
  const cgroupsReaped = await reapSandboxCgroups(detected.host, parent);
  if (cgroupsReaped > 0) log.warn('sandbox.orphan_cgroups_reaped', { parent, cgroupsReaped });
  return { host: detected.host, parent };
}

/** Spawns the sandbox's process on `port`; on failure nothing of it is left behind. */
export async function startSandboxProcess(
  ctx: SandboxProcessContext,
  spec: SandboxSpec,
  cmd: SandboxCommand,
  port: number,
): Promise<{ ok: true; proc: SandboxProcess } | { ok: false; reason: string }> {
  let cgroup: SandboxCgroup | undefined;
  if (ctx.cgroups) {
    const { host, parent } = ctx.cgroups;
    cgroup = await createSandboxCgroup(host, parent, spec.sandboxId, spec.fn.resources);
  }
  const argv = [...ctx.wrapper, ...(cgroup ? cgroupJoinArgv(cgroup) : []), ...cmd.command];
  let result: SpawnResult;
  try {
    result = await startSandboxProcessSpawn(ctx, spec, { ...cmd, command: argv }, port);
  } catch (err) {
    if (cgroup) await removeSandboxCgroup(cgroup);
    throw err;
  }
  if (!result.ok) {
    if (cgroup) await removeSandboxCgroup(cgroup);
    return result;
  }
  const { pid } = result.spawned;
  // Off the readiness path: the record only matters if this worker dies before the sandbox.
  const record = { sandboxId: spec.sandboxId, function: spec.fn.name, pid, pgid: pid, port };
  const recordWritten = writeSandboxRecord(ctx.stateDir, {
    ...record,
    createdAtMs: ctx.clock.wallMs(),
  }).catch((err: Error) => {
    ctx.log.warn('sandbox.record_failed', { ...record, err: err.message });
  });
  return { ok: true, proc: { ...result.spawned, port, recordWritten, cgroup } };
}

async function startSandboxProcessSpawn(
  ctx: SandboxProcessContext,
  spec: SandboxSpec,
  cmd: SandboxCommand,
  port: number,
): Promise<SpawnResult> {
  const paths = sandboxPaths(ctx.stateDir, spec.sandboxId);
  const env = sandboxEnv({
    sandboxId: spec.sandboxId,
    fn: spec.fn,
    port,
    searchPath: cmd.searchPath,
    homeDir: paths.scratchDir,
  });
  const log = await openSandboxLog(paths.log);
  const nowMs = (): number => ctx.clock.nowMs();
  const result = await spawnSandboxProcess({ argv: cmd.command, cwd: cmd.cwd, env, log, nowMs });
  if (!result.ok) await log.close();
  return result;
}

export interface StopResult {
  /** The child's exit event came. */
  exited: boolean;
  /** No process of the sandbox is alive (zombies awaiting PID 1 count as gone). */
  gone: boolean;
}

/**
 * SIGKILLs the process group, waits for the exit event and for every member to die, then
 * empties and removes the cgroups (catching processes that left the group with setsid()).
 * Killing only the leader would return before its children are dead (sandboxes.md, trap 7).
 */
export async function stopSandboxProcess(
  ctx: SandboxProcessContext,
  proc: SandboxProcess,
): Promise<StopResult> {
  killProcessGroup(proc.pid);
  const exited = (await withTimeout(proc.exited, exitWaitMsMax)) !== false;
  let gone = await killProcessGroupAndWait(proc.pid, groupExitWaitMsMax);
  if (proc.cgroup) {
    const emptied = await killSandboxCgroup(proc.cgroup);
    gone = gone && emptied;
    if (emptied) {
      await removeSandboxCgroup(proc.cgroup).catch((err: Error) => {
        ctx.log.warn('sandbox.cgroup_remove_failed', { pid: proc.pid, err: err.message });
      });
    }
  }
  return { exited, gone };
}

/** The promise's value, or false when `ms` passed first. The timer never outlives the race. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | false> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((done) => (timer = setTimeout(() => done(false), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

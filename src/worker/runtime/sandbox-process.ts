/**
 * @module worker/runtime/sandbox-process
 * Starting and stopping ONE sandbox process, without any runtime bookkeeping: cgroups (when
 * limits are on), argv with its wrappers, minimal env, log file, spawn, pid record; and the
 * kill that ends only when every process is gone. `process-runtime.ts` owns ports, uids, the
 * sandbox map and the lifecycle around these two steps.
 *
 * argv of a sandbox, outermost first (each part optional except the command):
 *   setpriv --pdeathsig SIGKILL --        dies with the worker (unisolated only; bwrap does it)
 *   /bin/sh -c <join cgroups> sh ... --   enters its cgroups, then execs
 *   bwrap ... -- setpriv --reuid U ... -- namespaces, minimal fs, own uid, no caps (bwrap-argv.ts)
 *   <command> <args...>                    the function
 * Everything down to bwrap keeps one pid, the process-group leader the runtime kills.
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { access } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { bwrapArgv, type BwrapHost } from './bwrap-argv.js';
import {
  cgroupJoinArgv,
  detectCgroups,
  killSandboxCgroup,
  type CgroupDriver,
  type SandboxCgroup,
} from './cgroups.js';
import type { CgroupLimits } from './cgroup-backend.js';
import type { FileHandle } from 'node:fs/promises';
import { assert } from '../../shared/assert.js';
import { killProcessGroup, killProcessGroupAndWait } from './process-group.js';
import { probeReadyOrExit } from './readiness.js';
import { launchLine, LauncherPool, type Launcher } from './sandbox-launchers.js';
import {
  describeExit,
  openSandboxLog,
  probeBwrapHost,
  sandboxEnv,
  spawnSandboxProcess,
  type ExitInfo,
  type SpawnedProcess,
  type SpawnResult,
  watchSandboxProcess,
} from './process-spawn.js';
import type { SandboxSpec } from './runtime.js';
import { sandboxPaths, writeSandboxRecord } from './sandbox-records.js';

/** Bound on waiting for a SIGKILLed child's exit event; past it something is badly wrong. */
const exitWaitMsMax = 5_000;
/** Bound on waiting for the rest of a killed group (grandchildren) to be reaped. */
const groupExitWaitMsMax = 5_000;

/** How sandboxes are walled in when isolation is on. */
export interface SandboxIsolation {
  host: BwrapHost;
  tmpMiB: number;
}

export interface SandboxProcessContext {
  stateDir: string;
  clock: Clock;
  log: Logger;
  /** Prefix making the sandbox die with the worker ([] when setpriv is missing). */
  wrapper: readonly string[];
  cgroups?: CgroupDriver;
  /** CPU quota until ready when the function's is smaller (0 = off); see workerDefaults. */
  startupCpuMillis?: number;
  isolation?: SandboxIsolation;
  /** Pre-attached launchers (isolation with cgroups only); see sandbox-launchers.ts. */
  launchers?: LauncherPool;
}

/** The resolved command line of a function and where it runs. */
export interface SandboxCommand {
  command: string[];
  cwd: string;
  searchPath: string;
  /** Host dirs the command names by absolute path (see absolutePathArgDirs). */
  extraDirs?: readonly string[];
}

export interface SandboxProcess extends SpawnedProcess {
  port: number;
  /** The host uid it runs as under isolation (from the shared pool). */
  uid?: number;
  recordWritten: Promise<void>;
  cgroup?: SandboxCgroup;
}

/**
 * Detects the cgroup version and removes sandbox cgroups a previous run on `stateDir` left.
 * Returns the driver to use, or why limits cannot work here.
 */
export async function prepareSandboxCgroups(
  stateDir: string,
  pidsMax: number,
  log: Logger,
): Promise<CgroupDriver | string> {
  // One parent per state dir, so two runtimes on one machine never touch each other's.
  const digest = createHash('sha256').update(resolve(stateDir)).digest('hex');
  const parent = `dirigent-${digest.slice(0, 12)}`;
  const detected = await detectCgroups({ parent, pidsMax });
  if (!detected.ok) return `cgroup limits unavailable: ${detected.reason}`;
  const cgroupsReaped = await detected.driver.reap();
  if (cgroupsReaped > 0) log.warn('sandbox.orphan_cgroups_reaped', { parent, cgroupsReaped });
  return detected.driver;
}

export interface PrepareOptions {
  stateDir: string;
  clock: Clock;
  log: Logger;
  wrapper: readonly string[];
  isolation: 'bwrap' | 'none';
  limits: 'cgroups' | 'none';
  tmpMiB: number;
  pidsMax: number;
  startupCpuMillis: number;
}

/** Where bubblewrap and setpriv live on Debian (packages bubblewrap and util-linux). */
export const bwrapPath = '/usr/bin/bwrap';
export const setprivPath = '/usr/bin/setpriv';

/** Everything spawning needs, probed once per runtime; or why sandboxes cannot start here. */
export async function prepareSandboxContext(opts: PrepareOptions): Promise<SandboxProcessContext | string> {
  const { stateDir, clock, log, wrapper } = opts;
  const ctx: SandboxProcessContext = { stateDir, clock, log, wrapper, startupCpuMillis: opts.startupCpuMillis };
  if (opts.isolation === 'bwrap') {
    for (const path of [bwrapPath, setprivPath]) {
      if (!(await isExecutable(path))) return `isolation 'bwrap' needs ${path}, which is missing`;
    }
    ctx.isolation = { host: await probeBwrapHost(bwrapPath, setprivPath), tmpMiB: opts.tmpMiB };
  }
  if (opts.limits === 'none') return ctx;
  const cgroups = await prepareSandboxCgroups(stateDir, opts.pidsMax, log);
  if (typeof cgroups === 'string') return cgroups;
  const launchers = ctx.isolation ? new LauncherPool(cgroups, log) : undefined;
  return { ...ctx, cgroups, launchers };
}

async function isExecutable(path: string): Promise<boolean> {
  return access(path, fsConstants.X_OK).then(() => true, () => false);
}

/**
 * Why a sandbox process ended, for people: an OOM kill in its memory cgroup says so (the bare
 * exit would be a SIGKILL or bwrap's 137); otherwise the exit with its last stderr line.
 * Must run before the cgroup is removed.
 */
export async function exitReason(
  ctx: SandboxProcessContext,
  proc: SandboxProcess,
  info: ExitInfo,
): Promise<string> {
  if (ctx.cgroups && proc.cgroup && (await ctx.cgroups.oomKills(proc.cgroup)) > 0) {
    return oomReason(proc.cgroup);
  }
  return describeSandboxExit(ctx, info, proc);
}

/** Signal numbers to names, for exits bwrap reports as 128 + signal. */
const signalNames = new Map(Object.entries(osConstants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

/**
 * describeExit, seeing through bwrap: it exits 128 + n when the function died of signal n,
 * which would otherwise read as a deliberate exit code.
 */
export function describeSandboxExit(
  ctx: SandboxProcessContext,
  info: ExitInfo,
  proc: Pick<SandboxProcess, 'stderrTail'>,
): string {
  const signal = ctx.isolation && info.code !== null ? signalNames.get(info.code - 128) : undefined;
  return describeExit(signal ? { code: null, signal } : info, proc.stderrTail);
}

export function oomReason(cgroup: SandboxCgroup): string {
  return `out of memory: killed at its ${cgroup.memoryMiB} MiB limit`;
}

/** The limits a sandbox starts with: its own, with the CPU quota raised to the start-up boost. */
export function startupLimits(ctx: Pick<SandboxProcessContext, 'startupCpuMillis'>, limits: CgroupLimits): CgroupLimits {
  return { ...limits, cpuMillis: Math.max(limits.cpuMillis, ctx.startupCpuMillis ?? 0) };
}

/** Once ready, the sandbox runs at its own CPU quota (a no-op when it was never raised). */
export async function endStartupBoost(ctx: SandboxProcessContext, proc: SandboxProcess, cpuMillis: number): Promise<void> {
  if (!ctx.cgroups || !proc.cgroup || cpuMillis >= (ctx.startupCpuMillis ?? 0)) return;
  await ctx.cgroups.setCpu(proc.cgroup, cpuMillis);
}

/** Spawns the sandbox's process on `port`; on failure nothing of it is left behind. */
export async function startSandboxProcess(
  ctx: SandboxProcessContext,
  spec: SandboxSpec,
  cmd: SandboxCommand,
  port: number,
  uid?: number,
): Promise<{ ok: true; proc: SandboxProcess } | { ok: false; reason: string }> {
  const launcher = ctx.launchers?.take();
  if (launcher) return startFromLauncher(ctx, spec, cmd, port, uid, launcher);
  const cgroup = ctx.cgroups ? await ctx.cgroups.create(spec.sandboxId, startupLimits(ctx, spec.fn.resources)) : undefined;
  // Isolated, bwrap's --die-with-parent already ties the sandbox to the worker, so the setpriv
  // pdeathsig wrapper would only cost an exec (~1-3 ms of cold start).
  const wrapper = ctx.isolation ? [] : ctx.wrapper;
  const argv = [...wrapper, ...(cgroup ? cgroupJoinArgv(cgroup) : []), ...isolatedArgv(ctx, spec, cmd, uid)];
  let result: SpawnResult;
  try {
    result = await startSandboxProcessSpawn(ctx, spec, { ...cmd, command: argv }, port);
  } catch (err) {
    if (cgroup) await ctx.cgroups?.remove(cgroup);
    throw err;
  }
  if (!result.ok) {
    if (cgroup) await ctx.cgroups?.remove(cgroup);
    return result;
  }
  const recordWritten = recordSandbox(ctx, spec, result.spawned.pid, port);
  return { ok: true, proc: { ...result.spawned, port, uid, recordWritten, cgroup } };
}

/** Hands the sandbox's command to a pre-attached launcher (no cgroup join on this path). */
async function startFromLauncher(
  ctx: SandboxProcessContext,
  spec: SandboxSpec,
  cmd: SandboxCommand,
  port: number,
  uid: number | undefined,
  launcher: Launcher,
): Promise<{ ok: true; proc: SandboxProcess }> {
  assert(ctx.cgroups !== undefined && ctx.launchers !== undefined, 'launchers need cgroups');
  let cgroup: SandboxCgroup;
  let log: FileHandle;
  try {
    cgroup = await ctx.cgroups.adopt(launcher.cgroup, spec.sandboxId, startupLimits(ctx, spec.fn.resources));
    launcher.cgroup = cgroup; // renamed: a discard below must remove the new name
    log = await openSandboxLog(sandboxPaths(ctx.stateDir, spec.sandboxId).log);
  } catch (err) {
    await ctx.launchers.discard(launcher);
    throw err;
  }
  const t0Ms = ctx.clock.nowMs();
  const env = sandboxEnv({ sandboxId: spec.sandboxId, fn: spec.fn, port, searchPath: cmd.searchPath, homeDir: '/tmp' });
  const logPath = sandboxPaths(ctx.stateDir, spec.sandboxId).log;
  launcher.child.stdin?.end(launchLine(logPath, env, isolatedArgv(ctx, spec, cmd, uid)));
  const spawned = watchSandboxProcess(launcher.child, log, ctx.clock.nowMs() - t0Ms, launcher.exit);
  const recordWritten = recordSandbox(ctx, spec, spawned.pid, port);
  return { ok: true, proc: { ...spawned, port, uid, recordWritten, cgroup } };
}

/** Off the readiness path: the record only matters if this worker dies before the sandbox. */
function recordSandbox(ctx: SandboxProcessContext, spec: SandboxSpec, pid: number, port: number): Promise<void> {
  const record = { sandboxId: spec.sandboxId, function: spec.fn.name, pid, pgid: pid, port };
  return writeSandboxRecord(ctx.stateDir, { ...record, createdAtMs: ctx.clock.wallMs() }).catch((err: Error) => {
    ctx.log.warn('sandbox.record_failed', { ...record, err: err.message });
  });
}

/** The command itself, or bwrap + setpriv around it when isolation is on. */
function isolatedArgv(
  ctx: SandboxProcessContext,
  spec: SandboxSpec,
  cmd: SandboxCommand,
  uid: number | undefined,
): string[] {
  if (!ctx.isolation) return cmd.command;
  if (uid === undefined) throw new Error('isolated sandbox without a uid');
  const [commandPath, ...args] = cmd.command;
  return bwrapArgv(ctx.isolation.host, {
    uid,
    tmpMiB: ctx.isolation.tmpMiB,
    workingDir: spec.fn.workingDir,
    commandPath,
    args,
    extraDirs: cmd.extraDirs ?? [],
  });
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
    // Isolated: /tmp is the sandbox's private tmpfs; the scratch dir is not visible inside.
    homeDir: ctx.isolation ? '/tmp' : paths.scratchDir,
  });
  const log = await openSandboxLog(paths.log);
  const nowMs = (): number => ctx.clock.nowMs();
  // Isolated, bwrap's own cwd does not matter (--chdir sets the sandbox's); '/' always exists.
  const cwd = ctx.isolation ? '/' : cmd.cwd;
  const result = await spawnSandboxProcess({ argv: cmd.command, cwd, env, log, nowMs });
  if (!result.ok) await log.close();
  return result;
}

export type ReadyFailure = { ok: false; reason: string; addressInUse?: true };

export interface ReadyProbe {
  host: string;
  timeoutMs: number;
  backoffMs: readonly [number, number];
  /** Aborted by delete() during start. */
  cancel: AbortSignal;
}

/** Probes until the port accepts, the process exits, delete() aborts, or time runs out. */
export async function awaitSandboxReady(
  ctx: SandboxProcessContext,
  proc: SandboxProcess,
  probe: ReadyProbe,
): Promise<{ ok: true; readinessMs: number } | ReadyFailure> {
  const t0Ms = ctx.clock.nowMs();
  const outcome = await probeReadyOrExit({ ...probe, port: proc.port, exited: proc.exited });
  switch (outcome.kind) {
    case 'ready':
      return { ok: true, readinessMs: ctx.clock.nowMs() - t0Ms };
    case 'cancelled':
      return { ok: false, reason: 'deleted during start' };
    case 'timeout':
      return { ok: false, reason: `readiness timeout after ${probe.timeoutMs} ms` };
    case 'exited': {
      const reason = `exited during start: ${await exitReason(ctx, proc, outcome.exit)}`;
      if (!proc.stderrTail.includes('EADDRINUSE')) return { ok: false, reason };
      return { ok: false, reason, addressInUse: true };
    }
  }
}

export interface StopResult {
  /** The child's exit event came. */
  exited: boolean;
  /** No process of the sandbox is alive (zombies awaiting PID 1 count as gone). */
  gone: boolean;
  /** The kernel OOM-killed a process in its memory cgroup (false without cgroups). */
  oomKilled: boolean;
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
  // With a cgroup, its member list is the sandbox: it holds every process (setsid escapees too)
  // and no zombies, so "empty" means gone without waiting for PID 1 to reap the killed init of
  // the pid namespace. The group wait is only for sandboxes without one: it falls back to /proc
  // scans for zombies, which cost O(processes) each and made 100 concurrent deletes take 3.6 s.
  let gone = proc.cgroup && ctx.cgroups ? true : await killProcessGroupAndWait(proc.pid, groupExitWaitMsMax);
  let oomKilled = false;
  if (proc.cgroup && ctx.cgroups) {
    const emptied = await killSandboxCgroup(proc.cgroup);
    oomKilled = (await ctx.cgroups.oomKills(proc.cgroup)) > 0;
    gone = gone && emptied;
    if (emptied) {
      await ctx.cgroups.remove(proc.cgroup).catch((err: Error) => {
        ctx.log.warn('sandbox.cgroup_remove_failed', { pid: proc.pid, err: err.message });
      });
    }
  }
  return { exited, gone, oomKilled };
}

/** The promise's value, or false when `ms` passed first. The timer never outlives the race. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | false> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((done) => (timer = setTimeout(() => done(false), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

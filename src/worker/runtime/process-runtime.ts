/**
 * @module worker/runtime/process-runtime
 * The "process" SandboxRuntime (DESIGN §7): each sandbox is the function's command, spawned
 * without a shell as the leader of its own process group, listening on a host port from
 * `portRange` that it reads from $PORT. Owns: ports, child processes, their state files and logs.
 *
 * Life of a sandbox:
 *   starting --ready probe ok--> ready --delete()--> stopping --group gone--> (removed)
 *      |                           `--exit (crash)--> stopping --group gone--> listeners
 *      `--exit / timeout / delete() during start--> stopping --> create() says { ok: false }
 *
 * Invariants: a port is held from acquire until the sandbox's whole group is gone; an entry in
 * `sandboxes` exists from the start of create() until its teardown finished; listeners hear only
 * about exits nobody asked for; a uid is held from acquire until the group is gone.
 *
 * Isolation 'bwrap' (the default): every sandbox runs under bubblewrap as its own host uid from
 * the worker's pool, with no capabilities, under cgroup limits (cgroups.ts) taken from the
 * function's resources. 'none' runs the plain command as the worker's user (trusted code only).
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { workerDefaults } from '../../config/defaults.js';
import type { Logger } from '../../shared/logger.js';
import { assert } from '../../shared/assert.js';
import { acquireCheckedPort, createPortAllocator, type PortAllocator } from './port-allocator.js';
import { absolutePathArgDirs, isDirectory, portIsFree, resolveCommand, type ExitInfo } from './process-spawn.js';
import type { CreateResult, ExitListener, RuntimeSandbox, SandboxSpec } from './runtime.js';
import { isValidSandboxId } from './runtime.js';
import {
  awaitSandboxReady,
  endStartupBoost,
  describeSandboxExit,
  oomReason,
  prepareSandboxContext,
  setprivPath,
  startSandboxProcess,
  stopSandboxProcess,
  type ReadyFailure,
  type SandboxCommand,
  type SandboxProcess,
  type SandboxProcessContext,
} from './sandbox-process.js';
import {
  ensureStateDirs,
  reapOrphans,
  removeSandboxState,
  sandboxPaths,
  type ReapResult,
} from './sandbox-records.js';
import { createSandboxUids, type SandboxUids } from './sandbox-uids.js';
import type { ProcessRuntime, ProcessRuntimeOptions } from './process-runtime-options.js';

export { reapOrphans, type ReapResult } from './sandbox-records.js';
export type { ProcessRuntime, ProcessRuntimeOptions } from './process-runtime-options.js';

/** Extra ports tried when a child fails with EADDRINUSE (a foreign process won the race). */
const addressInUseRetriesMax = 2;
/** Ports skipped per create because a foreign process listens on them. */
const busyPortSkipsMax = 16;

/**
 * Builds the runtime and, in the background, kills sandboxes a previous run on the same
 * `stateDir` left behind (see `reapOrphans`); every create() waits for that to finish.
 */
export function createProcessRuntime(opts: ProcessRuntimeOptions): ProcessRuntime {
  assert(opts.readinessTimeoutMs > 0, 'readinessTimeoutMs must be positive');
  return new ProcessSandboxRuntime(opts);
}

interface ProcessSandbox {
  sandboxId: string;
  function: string;
  state: 'starting' | 'ready' | 'stopping';
  /** True until create() returned; create() owns the sandbox meanwhile (retries included). */
  creating: boolean;
  /** Aborted by delete() during start: stops the readiness probe. */
  abort: AbortController;
  /** Resolves when create() has returned, whatever the outcome. */
  created: Promise<void>;
  proc?: SandboxProcess;
  sandbox?: RuntimeSandbox;
  /** Set by the teardown: the kernel OOM-killed a process of it (read before cgroup removal). */
  oomKilled?: boolean;
  teardown?: Promise<void>;
}

/** What the runtime learned at start-up. */
interface Startup {
  reaped: ReapResult;
  /** Everything spawning and killing needs; cgroups set when limits are on. */
  ctx: SandboxProcessContext;
}

/** Why a process is torn down; 'retry' keeps the sandbox's files for the next attempt. */
type TeardownCause = 'delete' | 'crash' | 'failed' | 'retry';

type AttemptResult = CreateResult | ReadyFailure;

class ProcessSandboxRuntime implements ProcessRuntime {
  readonly name = 'process' as const;
  readonly orphansReaped: Promise<ReapResult>;
  private readonly sandboxes = new Map<string, ProcessSandbox>();
  private readonly listeners: ExitListener[] = [];
  private readonly ports: PortAllocator;
  private readonly uids: SandboxUids;
  private readonly log: Logger;
  private readonly searchPath: string;
  private readonly wrapper: readonly string[];
  private readonly startup: Promise<Startup | string>;
  private closed = false;

  constructor(private readonly opts: ProcessRuntimeOptions) {
    this.ports = opts.ports ?? createPortAllocator(opts.portRange);
    this.uids = opts.uids ?? createSandboxUids(workerDefaults.sandboxUidRange);
    this.log = opts.logger.child({ runtime: 'process' });
    // The only thing taken from the worker's environment: needed to find `node` and friends.
    this.searchPath = process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin';
    this.wrapper = existsSync(setprivPath) ? [setprivPath, '--pdeathsig', 'SIGKILL', '--'] : [];
    this.startup = this.startRun().catch((err: Error) => `runtime start failed: ${err.message}`);
    this.orphansReaped = this.startup.then((started) => {
      if (typeof started === 'string') throw new Error(started);
      return started.reaped;
    });
    this.orphansReaped.catch(() => {}); // creates report it; an unread rejection must not crash
    const pdeathsig = this.wrapper.length > 0;
    const { isolation, limits } = this.modes();
    this.log.info('runtime.started', { stateDir: opts.stateDir, pdeathsig, isolation, limits });
  }

  private modes(): { isolation: 'bwrap' | 'none'; limits: 'cgroups' | 'none' } {
    const isolation = this.opts.isolation ?? 'bwrap';
    return { isolation, limits: this.opts.limits ?? (isolation === 'bwrap' ? 'cgroups' : 'none') };
  }

  /** State dirs, orphans of a previous run, and the isolation and cgroup set-up. */
  private async startRun(): Promise<Startup | string> {
    const { stateDir, clock } = this.opts;
    await ensureStateDirs(stateDir);
    const reaped = await reapOrphans({ stateDir, logger: this.log });
    const ctx = await prepareSandboxContext({
      ...this.modes(),
      stateDir,
      clock,
      log: this.log,
      wrapper: this.wrapper,
      tmpMiB: this.opts.sandboxTmpMiB ?? workerDefaults.sandboxTmpMiB,
      pidsMax: this.opts.sandboxPidsMax ?? workerDefaults.sandboxPidsMax,
      startupCpuMillis: this.opts.sandboxStartupCpuMillis ?? workerDefaults.sandboxStartupCpuMillis,
    });
    if (typeof ctx === 'string') return ctx;
    return { reaped, ctx };
  }

  async create(spec: SandboxSpec): Promise<CreateResult> {
    const t0Ms = this.opts.clock.nowMs();
    const invalid = this.createCheck(spec);
    if (invalid !== undefined) return { ok: false, reason: invalid };
    let createdDone!: () => void;
    const entry: ProcessSandbox = {
      sandboxId: spec.sandboxId,
      function: spec.fn.name,
      state: 'starting',
      creating: true,
      abort: new AbortController(),
      created: new Promise<void>((done) => (createdDone = done)),
    };
    this.sandboxes.set(spec.sandboxId, entry);
    let result: CreateResult;
    try {
      result = await this.createRun(entry, spec, t0Ms);
    } catch (err) {
      // Unexpected (a bug or an fs failure): still a failed creation, never a rejected promise.
      result = { ok: false, reason: `internal error: ${(err as Error).message}` };
    }
    if (!result.ok) {
      if (entry.proc) await this.teardownOnce(entry, 'failed');
      else await removeSandboxState(this.opts.stateDir, spec.sandboxId, { keepLog: true });
      this.sandboxes.delete(spec.sandboxId);
      this.log.warn('sandbox.create_failed', { sandboxId: spec.sandboxId, reason: result.reason });
    }
    entry.creating = false;
    createdDone(); // after the cleanup, so a waiting delete() finds nothing left to do
    return result;
  }

  async delete(sandboxId: string): Promise<void> {
    const entry = this.sandboxes.get(sandboxId);
    if (entry === undefined) return;
    if (entry.creating) {
      // create() owns the sandbox: stop its probe and let it clean up. It may also have
      // just become ready, in which case we tear it down below.
      entry.abort.abort();
      await entry.created;
    }
    if (this.sandboxes.get(sandboxId) !== entry) return;
    await this.teardownOnce(entry, 'delete');
    if (this.sandboxes.get(sandboxId) === entry) this.sandboxes.delete(sandboxId);
  }

  list(): RuntimeSandbox[] {
    const ready: RuntimeSandbox[] = [];
    for (const entry of this.sandboxes.values()) {
      if (entry.state === 'ready' && entry.sandbox) ready.push(entry.sandbox);
    }
    return ready;
  }

  onExit(listener: ExitListener): void {
    this.listeners.push(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    const started = await this.startup;
    await Promise.all([...this.sandboxes.keys()].map((id) => this.delete(id)));
    assert(this.sandboxes.size === 0, 'sandboxes left after close');
    if (typeof started !== 'string') {
      await started.ctx.launchers?.close();
      await started.ctx.cgroups?.removeParent();
    }
    this.log.info('runtime.closed', {});
  }

  /** Why this spec cannot be created, or undefined. */
  private createCheck(spec: SandboxSpec): string | undefined {
    if (this.closed) return 'runtime closed';
    if (!isValidSandboxId(spec.sandboxId)) return `invalid sandbox id '${spec.sandboxId}'`;
    if (this.sandboxes.has(spec.sandboxId)) return `sandbox '${spec.sandboxId}' already exists`;
    if (spec.fn.command.length === 0) return `function '${spec.fn.name}' has no command`;
    return undefined;
  }

  private async createRun(
    entry: ProcessSandbox,
    spec: SandboxSpec,
    t0Ms: number,
  ): Promise<CreateResult> {
    const started = await this.startup;
    if (typeof started === 'string') return { ok: false, reason: started };
    const paths = sandboxPaths(this.opts.stateDir, spec.sandboxId);
    await mkdir(paths.scratchDir, { recursive: true });
    const cwd = spec.fn.workingDir !== '' ? spec.fn.workingDir : paths.scratchDir;
    if (!(await isDirectory(cwd))) return { ok: false, reason: `workingDir '${cwd}' does not exist or is not a directory` };
    const searchPath = spec.fn.env.PATH ?? this.searchPath;
    const command = await resolveCommand(spec.fn.command[0], searchPath, cwd);
    if (command === undefined) {
      return { ok: false, reason: `spawn ENOENT: no such command '${spec.fn.command[0]}'` };
    }
    const args = spec.fn.command.slice(1);
    const extraDirs = await absolutePathArgDirs(args);
    const cmd = { command: [command, ...args], cwd, searchPath, extraDirs };
    for (let retry = 0; ; retry++) {
      if (entry.abort.signal.aborted) return { ok: false, reason: 'deleted during start' };
      const result = await this.createAttempt(entry, spec, cmd, started.ctx);
      if (result.ok) {
        const created = { ...result, totalMs: this.opts.clock.nowMs() - t0Ms };
        const { sandboxId, address, pid } = result.sandbox;
        const { startMs, readinessMs, totalMs } = created;
        const timing = { startMs, readinessMs, totalMs };
        this.log.info('sandbox.created', { sandboxId, address, pid, ...timing });
        return created;
      }
      if (!('addressInUse' in result) || retry === addressInUseRetriesMax) {
        return { ok: false, reason: result.reason };
      }
      this.log.warn('sandbox.port_in_use', { sandboxId: spec.sandboxId, port: entry.proc?.port });
      await this.teardownOnce(entry, 'retry');
      entry.proc = undefined;
      entry.teardown = undefined;
      entry.state = 'starting';
    }
  }

  /** One try on one port. On failure the process (if any) is left in entry.proc for teardown. */
  private async createAttempt(
    entry: ProcessSandbox,
    spec: SandboxSpec,
    cmd: SandboxCommand,
    ctx: SandboxProcessContext,
  ): Promise<AttemptResult> {
    const port = await this.acquirePort();
    if (port === undefined) {
      const [first, last] = this.opts.portRange;
      return { ok: false, reason: `no free port in [${first}, ${last}]` };
    }
    const uid = ctx.isolation ? this.uids.acquire(spec.fn.egress) : undefined;
    if (ctx.isolation && uid === undefined) {
      this.ports.release(port);
      return { ok: false, reason: `no free sandbox uid (egress ${spec.fn.egress ? 'on' : 'off'})` };
    }
    let spawned: Awaited<ReturnType<typeof startSandboxProcess>>;
    try {
      spawned = await startSandboxProcess(ctx, spec, cmd, port, uid);
    } catch (err) {
      this.releaseIds(port, uid);
      throw err;
    }
    if (!spawned.ok) {
      this.releaseIds(port, uid);
      return spawned;
    }
    const proc = spawned.proc;
    entry.proc = proc;
    const { host, readinessTimeoutMs: timeoutMs, readinessBackoffMs: backoffMs } = this.opts;
    const probe = { host, timeoutMs, backoffMs, cancel: entry.abort.signal };
    const readiness = await awaitSandboxReady(ctx, proc, probe);
    if (!readiness.ok) return readiness;
    await endStartupBoost(ctx, proc, spec.fn.resources.cpuMillis);
    entry.state = 'ready';
    entry.sandbox = {
      sandboxId: spec.sandboxId,
      function: spec.fn.name,
      address: `${this.opts.host}:${port}`,
      createdAtMs: this.opts.clock.wallMs(),
      pid: proc.pid,
    };
    void proc.exited.then((info) => this.onProcessExit(entry, proc, info));
    const { startMs } = proc;
    const { readinessMs } = readiness;
    // totalMs is filled in by createRun, which saw the whole create.
    return { ok: true, sandbox: entry.sandbox, startMs, readinessMs, totalMs: 0 };
  }

  /** A free port from the range, skipping (and sending to the back) ports foreigners hold. */
  private async acquirePort(): Promise<number | undefined> {
    const isFree = (port: number): Promise<boolean> => portIsFree(this.opts.host, port);
    const { port, busy } = await acquireCheckedPort(this.ports, isFree, busyPortSkipsMax);
    if (busy.length > 0) this.log.warn('sandbox.ports_busy', { ports: busy });
    return port;
  }

  /** An exit of a ready sandbox that nobody asked for: clean up, then tell the listeners. */
  private async onProcessExit(
    entry: ProcessSandbox,
    proc: SandboxProcess,
    info: ExitInfo,
  ): Promise<void> {
    if (entry.state !== 'ready' || entry.proc !== proc) return; // delete() caused it
    await this.teardownOnce(entry, 'crash');
    // The OOM counter was read by the teardown, before it removed the cgroup.
    const ctx = (await this.startup) as Startup; // a process exists, so start-up succeeded
    const reason = entry.oomKilled && proc.cgroup ? oomReason(proc.cgroup) : describeSandboxExit(ctx.ctx, info, proc);
    this.log.warn('sandbox.crashed', { sandboxId: entry.sandboxId, pid: proc.pid, reason });
    if (this.sandboxes.get(entry.sandboxId) === entry) this.sandboxes.delete(entry.sandboxId);
    for (const listener of this.listeners) {
      try {
        listener(entry.sandboxId, reason);
      } catch (err) {
        this.log.error('runtime.listener_failed', { err: (err as Error).message });
      }
    }
  }

  private releaseIds(port: number, uid: number | undefined): void {
    this.ports.release(port);
    if (uid !== undefined) this.uids.release(uid);
  }

  /** Tears down once; a second caller waits for the first teardown (its cause wins). */
  private teardownOnce(entry: ProcessSandbox, cause: TeardownCause): Promise<void> {
    entry.state = 'stopping';
    entry.teardown ??= this.teardownRun(entry, cause);
    return entry.teardown;
  }

  /**
   * Stops the process (every member gone), then frees the port and the sandbox's files.
   * The log survives a crash or a failed start, for the post-mortem; a deleted sandbox's goes.
   */
  private async teardownRun(entry: ProcessSandbox, cause: TeardownCause): Promise<void> {
    const proc = entry.proc;
    assert(proc !== undefined, 'teardown without a process');
    const started = await this.startup;
    assert(typeof started !== 'string', 'a process exists, so start-up succeeded');
    const t0Ms = this.opts.clock.nowMs();
    const { sandboxId } = entry;
    const stopped = await stopSandboxProcess(started.ctx, proc);
    entry.oomKilled = stopped.oomKilled;
    if (!stopped.exited || !stopped.gone) {
      this.log.error('sandbox.kill_stuck', { sandboxId, pid: proc.pid, ...stopped });
    }
    this.ports.release(proc.port);
    // A uid whose process may still live is never handed out again (it would share its walls).
    if (proc.uid !== undefined && stopped.gone) this.uids.release(proc.uid);
    await proc.recordWritten;
    if (cause !== 'retry') {
      const keepLog = cause !== 'delete';
      await removeSandboxState(this.opts.stateDir, sandboxId, { keepLog }).catch((err: Error) => {
        this.log.warn('sandbox.state_remove_failed', { sandboxId, err: err.message });
      });
    }
    const teardownMs = this.opts.clock.nowMs() - t0Ms;
    this.log.info('sandbox.deleted', { sandboxId, cause, port: proc.port, teardownMs });
  }
}

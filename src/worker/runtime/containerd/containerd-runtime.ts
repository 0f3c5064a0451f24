/**
 * @module worker/runtime/containerd/containerd-runtime
 * The "containerd" SandboxRuntime (DESIGN §7): each sandbox is a runc container made by
 * containerd from an OCI image, in the host network namespace, running as a pool uid and
 * listening on HOST:PORT (a host port from the shared allocator). Talks to containerd over its
 * gRPC socket; with `socket: ''` it runs a private containerd under `<stateDir>/containerd`.
 *
 * Life of a sandbox:
 *   starting --image imported, container started, port accepts--> ready --delete()--> stopping
 *      |                                                            `--task exit (crash)--> stopping -> listeners
 *      `--failure / delete() during start--> stopping --> create() says { ok: false }
 *
 * Invariants: a port and a uid are held from acquire until the sandbox's task is deleted; an
 * entry exists from the start of create() until its teardown finished; listeners hear only about
 * exits nobody asked for. Containers carry an owner label (hash of the state dir): start-up
 * removes what a previous run with the same state dir left, and nothing else.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Clock } from '../../../shared/clock.js';
import type { Logger } from '../../../shared/logger.js';
import { assert } from '../../../shared/assert.js';
import type { ImageCache } from '../image/image-cache.js';
import { acquireCheckedPort, type PortAllocator } from '../port-allocator.js';
import { portIsFree } from '../process-spawn.js';
import { probeReadyOrExit } from '../readiness.js';
import type { CreateResult, ExitListener, RuntimeSandbox, SandboxRuntime, SandboxSpec } from '../runtime.js';
import { isValidSandboxId } from '../runtime.js';
import type { SandboxUids } from '../sandbox-uids.js';
import { readCgroupParentDirs, removeCgroupParentDirs } from './cgroup-parents.js';
import { ContainerdClient, errorText, isNotFound } from './client.js';
import { daemonLogTail, daemonStartTimeoutMs, startPrivateDaemon, type PrivateDaemon } from './daemon.js';
import { subscribeTaskEvents, type TaskEventSubscription } from './events.js';
import { ImageImporter } from './image-import.js';
import { endStartupBoost, removeLeftovers, startContainer, stopContainer } from './sandbox-container.js';
import { buildSpec, containerIdFor } from './spec.js';

/** The containerd namespace every Dirigent container lives in. */
export const containerdNamespace = 'dirigent';
/** Ports skipped per create because a foreign process listens on them. */
const busyPortSkipsMax = 16;
/** An OOM event may trail the task's exit event by a little; a SIGKILL exit waits this long for it. */
const oomEventGraceMs = 100;
/** Exit status of a process killed by SIGKILL (128 + 9), which is what the OOM killer sends. */
const sigkillExitStatus = 137;
/** A crash reason quotes at most this much of the sandbox log's last line. */
const logLineCharsMax = 200;
/**
 * The shim copies a task's output to its log file on its own schedule: the exit event can come
 * before the last lines land. An exit that found the log empty looks again for this long.
 */
const exitLogSettleMs = 1_000;
const exitLogPollMs = 20;

export interface ContainerdRuntimeOptions {
  host: string;
  stateDir: string;
  /** containerd's socket; '' = start a private containerd under `<stateDir>/containerd`. */
  socket: string;
  images: ImageCache;
  ports: PortAllocator;
  uids: SandboxUids;
  pidsMax: number;
  tmpMiB: number;
  /** CPU quota until ready when the function's is smaller (start-up boost); 0 or unset = none. */
  startupCpuMillis?: number;
  readinessTimeoutMs: number;
  readinessBackoffMs: readonly [number, number];
  logger: Logger;
  clock: Clock;
}

interface Sandbox {
  sandboxId: string;
  containerId: string;
  function: string;
  memoryMiB: number;
  state: 'starting' | 'ready' | 'stopping';
  creating: boolean;
  abort: AbortController;
  created: Promise<void>;
  /** Resolves with the init process's exit status once containerd reports it. */
  exited: Promise<number>;
  exit: (status: number) => void;
  oomKilled: boolean;
  /** Set once containerd objects may exist (teardown must remove them). */
  touched: boolean;
  /** Host pid of the task's init, once created: events of an earlier task of the same id differ. */
  pid?: number;
  port?: number;
  uid?: number;
  sandbox?: RuntimeSandbox;
  teardown?: Promise<void>;
}

interface Connected {
  client: ContainerdClient;
  importer: ImageImporter;
  events: TaskEventSubscription;
}

export function createContainerdRuntime(opts: ContainerdRuntimeOptions): SandboxRuntime {
  assert(opts.readinessTimeoutMs > 0, 'readinessTimeoutMs must be positive');
  assert(opts.pidsMax > 0 && opts.tmpMiB > 0, 'pidsMax and tmpMiB must be positive');
  return new ContainerdRuntime(opts);
}

class ContainerdRuntime implements SandboxRuntime {
  readonly name = 'containerd' as const;
  private readonly sandboxes = new Map<string, Sandbox>();
  private readonly byContainer = new Map<string, Sandbox>();
  private readonly listeners: ExitListener[] = [];
  private readonly log: Logger;
  /** Hash of the state dir: container id prefix and owner label. */
  private readonly owner: string;
  private readonly logDir: string;
  private daemon?: PrivateDaemon;
  /** The `<owner>` cgroup dirs runc made (learnt from the first sandbox), removed on close. */
  private cgroupParents?: Promise<string[]>;
  private readonly startup: Promise<Connected | string>;
  private closed = false;

  constructor(private readonly opts: ContainerdRuntimeOptions) {
    this.log = opts.logger.child({ runtime: 'containerd' });
    this.owner = `dg${sha256Hex(resolve(opts.stateDir)).slice(0, 10)}`;
    this.logDir = join(resolve(opts.stateDir), 'logs');
    this.startup = this.connect().catch((err: Error) => `containerd runtime start failed: ${err.message}`);
  }

  /** Starts (or reaches) containerd, subscribes to task events, removes a previous run's containers. */
  private async connect(): Promise<Connected> {
    await mkdir(this.logDir, { recursive: true });
    let socket = this.opts.socket;
    let died: Promise<never> | undefined;
    if (socket === '') {
      this.daemon = await startPrivateDaemon(this.opts.stateDir, this.log);
      socket = this.daemon.socket;
      died = this.daemon.exited.then(async (how) => {
        throw new Error(`containerd ended (${how}): ${await daemonLogTail(this.opts.stateDir)}`);
      });
      died.catch(() => {});
      void this.daemon.exited.then((how) => {
        if (!this.closed) this.log.error('containerd.died', { how, pid: this.daemon?.pid });
      });
    }
    const client = new ContainerdClient(socket, containerdNamespace);
    const t0Ms = this.opts.clock.nowMs();
    await Promise.race([client.waitReady(daemonStartTimeoutMs), ...(died ? [died] : [])]).catch((err: Error) => {
      client.close();
      throw new Error(`containerd at ${socket} not answering: ${err.message}`);
    });
    const events = subscribeTaskEvents(client, { exit: this.onTaskExit, oom: this.onTaskOom }, this.log);
    const leftovers = await removeLeftovers(client, this.owner, this.log);
    const readyMs = this.opts.clock.nowMs() - t0Ms;
    this.log.info('runtime.started', { socket, private: this.daemon !== undefined, leftovers, readyMs });
    return { client, importer: new ImageImporter(client, this.opts.clock, this.log), events };
  }

  async create(spec: SandboxSpec): Promise<CreateResult> {
    const t0Ms = this.opts.clock.nowMs();
    const invalid = this.createCheck(spec);
    if (invalid !== undefined) return { ok: false, reason: invalid };
    const entry = this.newEntry(spec);
    let createdDone!: () => void;
    entry.created = new Promise<void>((done) => (createdDone = done));
    let result: CreateResult;
    try {
      result = await this.createRun(entry, spec, t0Ms);
    } catch (err) {
      result = { ok: false, reason: errorText(err) };
    }
    if (!result.ok) {
      await this.teardownOnce(entry, 'failed');
      this.forget(entry);
      this.log.warn('sandbox.create_failed', { sandboxId: spec.sandboxId, reason: result.reason });
    }
    entry.creating = false;
    createdDone();
    return result;
  }

  async delete(sandboxId: string): Promise<void> {
    const entry = this.sandboxes.get(sandboxId);
    if (entry === undefined) return;
    if (entry.creating) {
      entry.abort.abort();
      await entry.created;
    }
    if (this.sandboxes.get(sandboxId) !== entry) return;
    await this.teardownOnce(entry, 'delete');
    this.forget(entry);
  }

  list(): RuntimeSandbox[] {
    return [...this.sandboxes.values()].flatMap((e) => (e.state === 'ready' && e.sandbox ? [e.sandbox] : []));
  }

  onExit(listener: ExitListener): void {
    this.listeners.push(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    const connected = await this.startup;
    await Promise.all([...this.sandboxes.keys()].map((id) => this.delete(id)));
    assert(this.sandboxes.size === 0, 'sandboxes left after close');
    if (typeof connected !== 'string') {
      connected.events.close();
      connected.client.close();
    }
    await this.daemon?.stop();
    if (this.cgroupParents) await removeCgroupParentDirs(await this.cgroupParents);
    this.log.info('runtime.closed', {});
  }

  private createCheck(spec: SandboxSpec): string | undefined {
    if (this.closed) return 'runtime closed';
    if (!isValidSandboxId(spec.sandboxId)) return `invalid sandbox id '${spec.sandboxId}'`;
    if (this.sandboxes.has(spec.sandboxId)) return `sandbox '${spec.sandboxId}' already exists`;
    if (spec.fn.image === '') return `function '${spec.fn.name}' has no image (the containerd runtime runs images)`;
    return undefined;
  }

  private newEntry(spec: SandboxSpec): Sandbox {
    let exit!: (status: number) => void;
    const exited = new Promise<number>((done) => (exit = done));
    const entry: Sandbox = {
      sandboxId: spec.sandboxId,
      containerId: containerIdFor(this.owner, spec.sandboxId, sha256Hex),
      function: spec.fn.name,
      memoryMiB: spec.fn.resources.memoryMiB,
      state: 'starting',
      creating: true,
      abort: new AbortController(),
      created: Promise.resolve(),
      exited,
      exit,
      oomKilled: false,
      touched: false,
    };
    this.sandboxes.set(entry.sandboxId, entry);
    this.byContainer.set(entry.containerId, entry);
    return entry;
  }

  private forget(entry: Sandbox): void {
    if (this.sandboxes.get(entry.sandboxId) === entry) this.sandboxes.delete(entry.sandboxId);
    if (this.byContainer.get(entry.containerId) === entry) this.byContainer.delete(entry.containerId);
  }

  private async createRun(entry: Sandbox, spec: SandboxSpec, t0Ms: number): Promise<CreateResult> {
    const connected = await this.startup;
    if (typeof connected === 'string') return { ok: false, reason: connected };
    const fetched = await this.opts.images.get(spec.fn.image);
    if (!fetched.ok) return { ok: false, reason: fetched.reason };
    const image = fetched.image;
    const parent = await connected.importer.ensure(image).catch((err: unknown) => {
      throw new Error(`image '${image.ref}': loading into containerd failed: ${errorText(err)}`);
    });
    if (entry.abort.signal.aborted) return { ok: false, reason: 'deleted during start' };
    entry.uid = this.opts.uids.acquire(spec.fn.egress);
    if (entry.uid === undefined) return { ok: false, reason: 'no free sandbox uid' };
    const { port, busy } = await acquireCheckedPort(this.opts.ports, (p) => portIsFree(this.opts.host, p), busyPortSkipsMax);
    if (busy.length > 0) this.log.warn('sandbox.ports_busy', { ports: busy });
    if (port === undefined) return { ok: false, reason: 'no free port' };
    entry.port = port;
    const ociSpec = buildSpec({
      sandboxId: spec.sandboxId, containerId: entry.containerId, fn: spec.fn, image: image.config,
      uid: entry.uid, gid: entry.uid, port, host: this.opts.host, pidsMax: this.opts.pidsMax,
      tmpMiB: this.opts.tmpMiB, cgroupsPath: `${this.owner}/${entry.containerId}`,
      startupCpuMillis: this.opts.startupCpuMillis ?? 0,
    });
    const tStartMs = this.opts.clock.nowMs();
    entry.touched = true;
    const pid = await startContainer(connected.client, {
      containerId: entry.containerId, sandboxId: spec.sandboxId, owner: this.owner, image: image.ref,
      parent, spec: ociSpec, logPath: this.logPath(entry), wallNowMs: this.opts.clock.wallMs(),
    }, (taskPid) => this.onTaskCreated(entry, taskPid)).catch((err: unknown) => {
      // Most likely the image's snapshots were removed behind our back: import it again next time.
      if (isNotFound(err)) connected.importer.forget(image.digest);
      throw err;
    });
    const startMs = this.opts.clock.nowMs() - tStartMs;
    const ready = await this.awaitReady(entry, port);
    if (!ready.ok) return ready;
    if (spec.fn.resources.cpuMillis < (this.opts.startupCpuMillis ?? 0)) {
      // Ready: from now on the function runs at its own quota.
      await endStartupBoost(connected.client, entry.containerId, spec.fn.resources.cpuMillis);
    }
    const address = `${this.opts.host}:${port}`;
    entry.sandbox = { sandboxId: spec.sandboxId, function: spec.fn.name, address, createdAtMs: this.opts.clock.wallMs(), pid };
    entry.state = 'ready';
    const totalMs = this.opts.clock.nowMs() - t0Ms;
    const timing = { startMs, readinessMs: ready.readinessMs, totalMs };
    this.log.info('sandbox.created', { sandboxId: spec.sandboxId, containerId: entry.containerId, address, pid, ...timing });
    void entry.exited.then((status) => this.onCrash(entry, status));
    return { ok: true, sandbox: entry.sandbox, ...timing };
  }

  private async awaitReady(entry: Sandbox, port: number): Promise<{ ok: true; readinessMs: number } | { ok: false; reason: string }> {
    const t0Ms = this.opts.clock.nowMs();
    const outcome = await probeReadyOrExit({
      host: this.opts.host, port, timeoutMs: this.opts.readinessTimeoutMs,
      backoffMs: this.opts.readinessBackoffMs, exited: entry.exited, cancel: entry.abort.signal,
    });
    switch (outcome.kind) {
      case 'ready':
        return { ok: true, readinessMs: this.opts.clock.nowMs() - t0Ms };
      case 'cancelled':
        return { ok: false, reason: 'deleted during start' };
      case 'timeout':
        return { ok: false, reason: `readiness timeout after ${this.opts.readinessTimeoutMs} ms` };
      case 'exited':
        return { ok: false, reason: `exited during start: ${await this.describeExit(entry, outcome.exit)}` };
    }
  }

  private onTaskCreated(entry: Sandbox, pid: number): void {
    entry.pid = pid;
    if (this.cgroupParents !== undefined) return;
    // The first task of this runtime tells where runc puts our cgroups (the process is already in them).
    this.cgroupParents = readCgroupParentDirs(pid, this.owner, entry.containerId);
  }

  private readonly onTaskExit = (containerId: string, pid: number, status: number): void => {
    const entry = this.byContainer.get(containerId);
    // A deleted task's late event must not end a re-created sandbox of the same id.
    if (entry?.pid === pid) entry.exit(status);
  };

  private readonly onTaskOom = (containerId: string): void => {
    const entry = this.byContainer.get(containerId);
    if (entry?.pid !== undefined) entry.oomKilled = true;
  };

  /** An exit of a ready sandbox that nobody asked for: clean up, then tell the listeners. */
  private async onCrash(entry: Sandbox, status: number): Promise<void> {
    if (entry.state !== 'ready') return; // delete() caused it
    const reason = await this.describeExit(entry, status);
    if (entry.state !== 'ready') return;
    this.log.warn('sandbox.crashed', { sandboxId: entry.sandboxId, containerId: entry.containerId, reason });
    await this.teardownOnce(entry, 'crash');
    this.forget(entry);
    for (const listener of this.listeners) {
      try {
        listener(entry.sandboxId, reason);
      } catch (err) {
        this.log.error('runtime.listener_failed', { err: (err as Error).message });
      }
    }
  }

  /** "out of memory: ..." when the kernel's OOM killer did it, else the status and last log line. */
  private async describeExit(entry: Sandbox, status: number): Promise<string> {
    if (status === sigkillExitStatus && !entry.oomKilled) await sleep(oomEventGraceMs);
    if (entry.oomKilled) return `out of memory: killed at its ${entry.memoryMiB} MiB limit`;
    const what = status > 128 ? `signal ${status - 128}` : `exit code ${status}`;
    const text = await this.settledLog(entry);
    const line = text.trim().split('\n').at(-1)?.slice(0, logLineCharsMax) ?? '';
    return line === '' ? what : `${what}: ${line}`;
  }

  /** The sandbox's log, waiting up to exitLogSettleMs for the shim to copy output that is still in flight. */
  private async settledLog(entry: Sandbox): Promise<string> {
    const read = (): Promise<string> => readFile(this.logPath(entry), 'utf8').catch(() => '');
    let text = await read();
    for (let waitedMs = 0; text.trim() === '' && waitedMs < exitLogSettleMs; waitedMs += exitLogPollMs) {
      await sleep(exitLogPollMs);
      text = await read();
    }
    return text;
  }

  private teardownOnce(entry: Sandbox, cause: 'delete' | 'crash' | 'failed'): Promise<void> {
    entry.state = 'stopping';
    entry.teardown ??= this.teardownRun(entry, cause);
    return entry.teardown;
  }

  /** Removes the container (every process gone), then frees port and uid; a deleted sandbox's log goes too. */
  private async teardownRun(entry: Sandbox, cause: 'delete' | 'crash' | 'failed'): Promise<void> {
    const t0Ms = this.opts.clock.nowMs();
    const connected = await this.startup;
    let removed = true;
    if (entry.touched && typeof connected !== 'string') {
      removed = await stopContainer(connected.client, entry.containerId, this.log).then(
        () => true,
        (err: unknown) => {
          this.log.error('sandbox.remove_failed', { sandboxId: entry.sandboxId, err: errorText(err) });
          return false;
        },
      );
    }
    // A container we failed to remove may still run as this uid on this port: never reuse them.
    if (removed && entry.port !== undefined) this.opts.ports.release(entry.port);
    if (removed && entry.uid !== undefined) this.opts.uids.release(entry.uid);
    if (cause === 'delete') await rm(this.logPath(entry), { force: true });
    const teardownMs = this.opts.clock.nowMs() - t0Ms;
    this.log.info('sandbox.deleted', { sandboxId: entry.sandboxId, cause, port: entry.port, teardownMs });
  }

  private logPath(entry: Sandbox): string {
    return join(this.logDir, `${entry.containerId}.log`);
  }
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

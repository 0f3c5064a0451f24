/**
 * @module worker/runtime/oci/oci-runtime
 * The "oci" SandboxRuntime (DESIGN §7, §11): each sandbox is an image run by runc as a pool
 * uid without capabilities, in its own pid/ipc/uts/mount/cgroup namespaces, sharing the host's
 * network namespace and listening on host:PORT (a port of the worker's range).
 *
 * Create: image (ImageCache: fetched once per digest) -> rootfs (RootfsCache: unpacked once per
 * digest) -> port + uid -> bundle (overlay root + config.json) -> `runc run` in the foreground
 * -> TCP readiness probe. Teardown, whatever the cause: `runc kill` + wait for the run child ->
 * (crash: read the OOM counter) -> `runc delete` -> unmount, remove bundle -> free port + uid.
 *
 * Life of a sandbox (as in the process runtime):
 *   starting --ready--> ready --delete()--> stopping --gone--> (removed)
 *      |                  `--exit (crash)--> stopping --gone--> listeners (with the reason)
 *      `--exit / timeout / delete() during start--> stopping --> create() says { ok: false }
 *
 * Invariants: port and uid are held until the container is gone; an entry in `sandboxes`
 * exists from the start of create() until its teardown finished; listeners hear only about
 * exits nobody asked for.
 *
 * An image must listen on $HOST:$PORT (the runtime's values win over the image's and the
 * function's env): sandboxes share the host network namespace, so `FunctionSpec.port` cannot be
 * remapped and is not used. The unpacked images under <stateDir>/rootfs are a cache: they
 * outlive close() and restarts; everything else of a sandbox goes with it.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Clock } from '../../../shared/clock.js';
import type { Logger } from '../../../shared/logger.js';
import { assert } from '../../../shared/assert.js';
import type { ImageCache } from '../image/image-cache.js';
import { acquireCheckedPort, type PortAllocator } from '../port-allocator.js';
import { portIsFree, type ExitInfo, type SpawnedProcess } from '../process-spawn.js';
import { probeReadyOrExit } from '../readiness.js';
import type { CreateResult, ExitListener, RuntimeSandbox, SandboxRuntime, SandboxSpec } from '../runtime.js';
import { isValidSandboxId } from '../runtime.js';
import type { SandboxUids } from '../sandbox-uids.js';
import { cpuQuotaUs } from '../cgroup-backend.js';
import { hostBindFiles } from './bundle-spec.js';
import { ownCgroupDirs } from './cgroup-dirs.js';
import {
  describeContainerExit,
  ociPaths,
  prepareBundle,
  readContainerPid,
  removeContainer,
  startContainer,
  stopContainer,
  type OciContext,
} from './oci-container.js';
import { reapOciOrphans, removeCgroupParents, type OciReapResult } from './oci-orphans.js';
import { RootfsCache } from './rootfs-cache.js';
import { Runc } from './runc.js';

/** Ports skipped per create because a foreign process listens on them. */
const busyPortSkipsMax = 16;

export interface OciRuntimeOptions {
  /** Address sandboxes listen on and the data plane reaches them at. */
  host: string;
  stateDir: string;
  images: ImageCache;
  ports: PortAllocator;
  uids: SandboxUids;
  /** runc (crun needs hugetlb moved to a v1 mount on hybrid hosts, sandboxes.md 5a). */
  runtimeBinary: string;
  pidsMax: number;
  tmpMiB: number;
  /** CPU quota until ready when the function's is smaller (start-up boost); 0 or unset = none. */
  startupCpuMillis?: number;
  readinessTimeoutMs: number;
  readinessBackoffMs: readonly [number, number];
  logger: Logger;
  clock: Clock;
}

export interface OciRuntime extends SandboxRuntime {
  readonly name: 'oci';
  /** The start-up reaping of a previous run's containers; create() waits for it. */
  readonly orphansReaped: Promise<OciReapResult>;
}

export function createOciRuntime(opts: OciRuntimeOptions): OciRuntime {
  assert(opts.readinessTimeoutMs > 0, 'readinessTimeoutMs must be positive');
  assert(opts.pidsMax > 0 && opts.tmpMiB > 0, 'pidsMax and tmpMiB must be positive');
  return new OciSandboxRuntime(opts);
}

interface OciSandbox {
  sandboxId: string;
  function: string;
  memoryMiB: number;
  state: 'starting' | 'ready' | 'stopping';
  /** True until create() returned; create() owns the sandbox meanwhile. */
  creating: boolean;
  /** Aborted by delete() during start. */
  abort: AbortController;
  created: Promise<void>;
  port?: number;
  uid?: number;
  /** The bundle dir may exist (removed at teardown). */
  bundled: boolean;
  mounted: boolean;
  run?: SpawnedProcess;
  sandbox?: RuntimeSandbox;
  teardown?: Promise<void>;
}

type TeardownCause = 'delete' | 'crash' | 'failed';

class OciSandboxRuntime implements OciRuntime {
  readonly name = 'oci' as const;
  readonly orphansReaped: Promise<OciReapResult>;
  private readonly sandboxes = new Map<string, OciSandbox>();
  private readonly listeners: ExitListener[] = [];
  private readonly rootfs: RootfsCache;
  private readonly log: Logger;
  private readonly startup: Promise<OciContext | string>;
  private closed = false;

  constructor(private readonly opts: OciRuntimeOptions) {
    this.log = opts.logger.child({ runtime: 'oci' });
    this.rootfs = new RootfsCache(join(opts.stateDir, 'rootfs'), this.log, opts.clock);
    const started = this.startRun();
    this.startup = started.then((s) => s.ctx).catch((err: Error) => `oci runtime start failed: ${err.message}`);
    this.orphansReaped = started.then((s) => s.reaped);
    this.orphansReaped.catch(() => {}); // creates report it; an unread rejection must not crash
  }

  private async startRun(): Promise<{ ctx: OciContext; reaped: OciReapResult }> {
    const { stateDir } = this.opts;
    for (const dir of ['runc', 'bundles', 'logs', 'rootfs']) await mkdir(join(stateDir, dir), { recursive: true });
    // One cgroup parent per state dir, so two runtimes on one machine never touch each other's.
    const digest = createHash('sha256').update(resolve(stateDir)).digest('hex');
    const ctx: OciContext = {
      stateDir,
      runc: new Runc(this.opts.runtimeBinary, join(stateDir, 'runc')),
      host: this.opts.host,
      pidsMax: this.opts.pidsMax,
      tmpMiB: this.opts.tmpMiB,
      startupCpuMillis: this.opts.startupCpuMillis ?? 0,
      cgroupParent: `dirigent-${digest.slice(0, 12)}`,
      cgroupDirs: await ownCgroupDirs(),
      hostFiles: hostBindFiles.filter((file) => existsSync(file)),
      clock: this.opts.clock,
      log: this.log,
    };
    const reaped = await reapOciOrphans(ctx);
    await removeCgroupParents(ctx);
    this.log.info('runtime.started', { stateDir, runtimeBinary: this.opts.runtimeBinary, ...reaped });
    return { ctx, reaped };
  }

  async create(spec: SandboxSpec): Promise<CreateResult> {
    const t0Ms = this.opts.clock.nowMs();
    const invalid = this.createCheck(spec);
    if (invalid !== undefined) return { ok: false, reason: invalid };
    let createdDone!: () => void;
    const entry: OciSandbox = {
      sandboxId: spec.sandboxId,
      function: spec.fn.name,
      memoryMiB: spec.fn.resources.memoryMiB,
      state: 'starting',
      creating: true,
      abort: new AbortController(),
      created: new Promise<void>((done) => (createdDone = done)),
      bundled: false,
      mounted: false,
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
      await this.teardownOnce(entry, 'failed');
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
    const ctx = await this.startup;
    await Promise.all([...this.sandboxes.keys()].map((id) => this.delete(id)));
    assert(this.sandboxes.size === 0, 'sandboxes left after close');
    if (typeof ctx !== 'string') await removeCgroupParents(ctx);
    this.log.info('runtime.closed', {});
  }

  private createCheck(spec: SandboxSpec): string | undefined {
    if (this.closed) return 'runtime closed';
    if (!isValidSandboxId(spec.sandboxId)) return `invalid sandbox id '${spec.sandboxId}'`;
    if (this.sandboxes.has(spec.sandboxId)) return `sandbox '${spec.sandboxId}' already exists`;
    if (spec.fn.image === '') return `function '${spec.fn.name}' has no image (the oci runtime runs images)`;
    return undefined;
  }

  private async createRun(entry: OciSandbox, spec: SandboxSpec, t0Ms: number): Promise<CreateResult> {
    const ctx = await this.startup;
    if (typeof ctx === 'string') return { ok: false, reason: ctx };
    // A delete() does not wait for a long pull: the shared fetch goes on for the next create.
    const fetched = await untilAborted(this.opts.images.get(spec.fn.image), entry.abort.signal);
    if (fetched === undefined) return { ok: false, reason: 'deleted during start' };
    if (!fetched.ok) return { ok: false, reason: fetched.reason };
    const unpacked = await untilAborted(this.rootfs.get(fetched.image), entry.abort.signal);
    if (unpacked === undefined) return { ok: false, reason: 'deleted during start' };
    if (!unpacked.ok) return { ok: false, reason: unpacked.reason };
    const held = await this.holdPortAndUid(entry, spec);
    if (held !== undefined) return { ok: false, reason: held };
    const t1Ms = this.opts.clock.nowMs();
    entry.bundled = true;
    const image = fetched.image.config;
    const input = { spec, image, rootfsDir: unpacked.rootfsDir, uid: entry.uid!, port: entry.port! };
    const bundleFailed = await prepareBundle(ctx, input);
    if (bundleFailed !== undefined) return { ok: false, reason: bundleFailed };
    entry.mounted = true;
    if (entry.abort.signal.aborted) return { ok: false, reason: 'deleted during start' };
    const started = await startContainer(ctx, spec.sandboxId);
    if (!started.ok) return started;
    entry.run = started.run;
    const startMs = this.opts.clock.nowMs() - t1Ms;
    const ready = await this.awaitReady(ctx, entry, started.run);
    if (!ready.ok) return ready;
    const { cpuMillis } = spec.fn.resources;
    if (cpuMillis < ctx.startupCpuMillis) {
      // Ready: from now on the function runs at its own quota.
      const updated = await ctx.runc.updateCpuQuota(spec.sandboxId, cpuQuotaUs(cpuMillis));
      if (!updated.ok) return { ok: false, reason: `ending the start-up CPU boost: ${updated.reason}` };
    }
    entry.state = 'ready';
    entry.sandbox = {
      sandboxId: spec.sandboxId,
      function: spec.fn.name,
      address: `${this.opts.host}:${entry.port!}`,
      createdAtMs: this.opts.clock.wallMs(),
      pid: await readContainerPid(ctx, spec.sandboxId),
    };
    const run = started.run;
    void run.exited.then((info) => this.onContainerExit(ctx, entry, run, info));
    const timing = { startMs, readinessMs: ready.readinessMs, totalMs: this.opts.clock.nowMs() - t0Ms };
    this.log.info('sandbox.created', { sandboxId: spec.sandboxId, address: entry.sandbox.address, ...timing });
    return { ok: true, sandbox: entry.sandbox, ...timing };
  }

  /** A free port (skipping ones foreigners hold) and a uid of the right half; why not, else. */
  private async holdPortAndUid(entry: OciSandbox, spec: SandboxSpec): Promise<string | undefined> {
    const isFree = (port: number): Promise<boolean> => portIsFree(this.opts.host, port);
    const { port, busy } = await acquireCheckedPort(this.opts.ports, isFree, busyPortSkipsMax);
    if (busy.length > 0) this.log.warn('sandbox.ports_busy', { ports: busy });
    if (port === undefined) return 'no free port in the worker range';
    entry.port = port;
    const uid = this.opts.uids.acquire(spec.fn.egress);
    if (uid === undefined) return `no free sandbox uid (${spec.fn.egress ? 'egress' : 'no-egress'} half exhausted)`;
    entry.uid = uid;
    return undefined;
  }

  private async awaitReady(
    ctx: OciContext,
    entry: OciSandbox,
    run: SpawnedProcess,
  ): Promise<{ ok: true; readinessMs: number } | { ok: false; reason: string }> {
    const t0Ms = this.opts.clock.nowMs();
    const outcome = await probeReadyOrExit({
      host: this.opts.host,
      port: entry.port!,
      timeoutMs: this.opts.readinessTimeoutMs,
      backoffMs: this.opts.readinessBackoffMs,
      exited: run.exited,
      cancel: entry.abort.signal,
    });
    switch (outcome.kind) {
      case 'ready':
        return { ok: true, readinessMs: this.opts.clock.nowMs() - t0Ms };
      case 'cancelled':
        return { ok: false, reason: 'deleted during start' };
      case 'timeout':
        return { ok: false, reason: `readiness timeout after ${this.opts.readinessTimeoutMs} ms` };
      case 'exited': {
        const why = await describeContainerExit(ctx, entry.sandboxId, entry.memoryMiB, run, outcome.exit);
        return { ok: false, reason: `exited during start: ${why}` };
      }
    }
  }

  /** An exit of a ready sandbox that nobody asked for: find out why, clean up, tell listeners. */
  private async onContainerExit(
    ctx: OciContext,
    entry: OciSandbox,
    run: SpawnedProcess,
    info: ExitInfo,
  ): Promise<void> {
    if (entry.state !== 'ready' || entry.run !== run) return; // delete() caused it
    entry.state = 'stopping'; // from here, a delete() waits for this teardown
    const reason = await describeContainerExit(ctx, entry.sandboxId, entry.memoryMiB, run, info);
    this.log.warn('sandbox.crashed', { sandboxId: entry.sandboxId, reason });
    await this.teardownOnce(entry, 'crash');
    if (this.sandboxes.get(entry.sandboxId) === entry) this.sandboxes.delete(entry.sandboxId);
    for (const listener of this.listeners) {
      try {
        listener(entry.sandboxId, reason);
      } catch (err) {
        this.log.error('runtime.listener_failed', { err: (err as Error).message });
      }
    }
  }

  private teardownOnce(entry: OciSandbox, cause: TeardownCause): Promise<void> {
    entry.state = 'stopping';
    entry.teardown ??= this.teardownRun(entry, cause);
    return entry.teardown;
  }

  /** Container gone, runc record and bundle removed, then port and uid freed. */
  private async teardownRun(entry: OciSandbox, cause: TeardownCause): Promise<void> {
    const t0Ms = this.opts.clock.nowMs();
    const { sandboxId } = entry;
    const ctx = await this.startup;
    let gone = true;
    if (typeof ctx !== 'string') {
      if (entry.run) gone = await stopContainer(ctx, sandboxId, entry.run);
      const { bundled, mounted } = entry;
      if (bundled) await removeContainer(ctx, sandboxId, { spawned: entry.run !== undefined, mounted });
      if (cause === 'delete') await rm(ociPaths(ctx.stateDir, sandboxId).log, { force: true });
    }
    // A container that would not die keeps its port and uid: reusing them would let it squat.
    if (gone && entry.port !== undefined) this.opts.ports.release(entry.port);
    if (gone && entry.uid !== undefined) this.opts.uids.release(entry.uid);
    const teardownMs = this.opts.clock.nowMs() - t0Ms;
    this.log.info('sandbox.deleted', { sandboxId, cause, port: entry.port, teardownMs });
  }
}

/** The promise's value, or undefined as soon as `signal` aborts (the promise runs on). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  let onAbort!: () => void;
  const aborted = new Promise<undefined>((done) => {
    onAbort = () => done(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([promise, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}

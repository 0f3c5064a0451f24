/**
 * @module worker/daemon
 * The worker daemon's shell: one gRPC stream to the CP, the heartbeat timer, reconnect back-off and
 * the runtime calls. All decisions live in `core/worker-core.ts`; `driver.ts` decodes commands and
 * encodes events, exactly as the simulator does. Several daemons can share one process
 * (`dirigent worker --count N`), each with its own identity, stream and heartbeats.
 *
 * No exception from a timer, a stream callback or a runtime promise ends the process silently:
 * each callback is wrapped and logs `worker.callback_failed {event}` before the error goes on.
 */
import type { FunctionSpecMsg } from '../api/cluster.js';
import type { Resources } from '../api/types.js';
import {
  ControlPlane,
  type WorkerBatch,
  type WorkerCommandBatch,
  type WorkerEvent,
} from '../gen/dirigent/v1/cluster_pb.js';
import type { Clock } from '../shared/clock.js';
import { isUnauthenticated, makeClient, openStream, type BidiStream, type LinkSecurity } from '../shared/grpc.js';
import type { GrpcChannel } from '../shared/grpc-link/channel.js';
import type { Logger } from '../shared/logger.js';
import { CpAddresses } from '../shared/cp-addresses.js';
import { assert } from '../shared/assert.js';
import { WorkerCore } from './core/worker-core.js';
import { WorkerDriver, type RuntimePort } from './driver.js';
import type { SandboxRuntime } from './runtime/runtime.js';
import { runtimeSpec } from './wire.js';
import { encodeWorkerBatch } from '../wire/codec.js';

/** How long past the back-off a connect waits for the channel before trying again. */
const channelReadyWaitMs = 2_000;

export interface WorkerDaemonOptions {
  id: string;
  address: string;
  controlPlane: string;
  capacity: Resources;
  capabilities: string[];
  heartbeatPeriodMs: number;
  /**
   * When the first heartbeat tick comes after start(), in [0, heartbeatPeriodMs); the ticks then
   * follow every period. Daemons that start together (a cluster booting, the thousands of
   * emulated workers of one process) would otherwise heartbeat in one burst each period, and the
   * CP would take them all in one turn. Default: uniform at random over the period.
   */
  heartbeatPhaseMs?: number;
  backoffMs: readonly [number, number];
  /** Sandbox events kept while the stream is down. */
  replayEventsMax: number;
  /** Share one gRPC channel among the daemons of one process. */
  client?: GrpcChannel;
  /** The cluster token and the CP's CA. */
  security: LinkSecurity;
}

export class WorkerDaemon {
  private stream: BidiStream<WorkerBatch> | null = null;
  private client: GrpcChannel | null;
  private closed = false;
  private backoffMs: number;
  /** The phase's one-shot timer until the first tick, then the periodic one. */
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private readonly driver: WorkerDriver;
  /** The CP list and the standbys' redirects: which CP to dial next. */
  private readonly targets: CpAddresses;
  /** Refusals of our cluster token are logged once per streak (the back-off retries go on). */
  private refusedLogged = false;

  constructor(
    private readonly opts: WorkerDaemonOptions,
    private readonly runtime: SandboxRuntime,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.backoffMs = opts.backoffMs[0];
    this.targets = new CpAddresses(opts.controlPlane);
    this.client = this.targets.single ? (opts.client ?? null) : null;
    const core = new WorkerCore(
      {
        workerId: opts.id,
        address: opts.address,
        capacity: { cpuMillis: opts.capacity.cpuMillis, memoryMib: opts.capacity.memoryMiB },
        runtimes: opts.capabilities,
        heartbeatPeriodMs: opts.heartbeatPeriodMs,
        replayEventsMax: opts.replayEventsMax,
      },
      log,
    );
    const port: RuntimePort = {
      create: (sandboxId, spec) => this.runtimeCreate(sandboxId, spec),
      delete: (sandboxId) => this.runtimeDelete(sandboxId),
    };
    const io = {
      write: (events: WorkerEvent[]) => this.write(events),
      runtime: port,
      defer: (fn: () => void) => setImmediate(() => this.guard('flush', fn)),
    };
    this.driver = new WorkerDriver(core, io, log, opts.id);
    runtime.onExit((sandboxId, reason) => {
      this.guard('sandbox_exit', () => this.driver.exited(sandboxId, reason, this.clock.nowMs()));
    });
  }

  start(): void {
    const periodMs = this.opts.heartbeatPeriodMs;
    const phaseMs = this.opts.heartbeatPhaseMs ?? Math.floor(Math.random() * periodMs);
    assert(phaseMs >= 0 && phaseMs < periodMs, 'heartbeatPhaseMs must be in [0, heartbeatPeriodMs)');
    this.connect();
    const tick = (): void => this.guard('heartbeat', () => this.driver.tick(this.clock.nowMs()));
    this.heartbeatTimer = setTimeout(() => {
      if (this.closed) return;
      this.heartbeatTimer = setInterval(tick, periodMs);
      tick();
    }, phaseMs);
  }

  get sandboxCount(): number {
    return this.driver.core.runningCount();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer); // clears either kind of Node timer
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.stream?.cancel();
    if (!this.opts.client) this.client?.close();
    await this.runtime.close();
  }

  /** Runs a callback; a throw is logged with the event's name, then rethrown (a bug of ours). */
  private guard(event: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error('worker.callback_failed', { workerId: this.opts.id, event, error: String(err), stack: (err as Error)?.stack });
      throw err;
    }
  }

  private write(events: WorkerEvent[]): void {
    this.stream?.write(encodeWorkerBatch(events));
  }

  /**
   * Opens the stream only once the channel is up: a hello and a replay written into a stream to a
   * CP that is down would be lost with it (the replay is kept until a stream can carry it).
   */
  private connect(): void {
    if (this.closed) return;
    const client = (this.client ??= makeClient(this.targets.current(), this.opts.security.caPem));
    client.waitForReady(Date.now() + this.backoffMs + channelReadyWaitMs, (err) => {
      this.guard('channel_ready', () => {
        if (this.closed) return;
        if (err) this.retryLater(`channel not ready: ${err.message}`);
        else this.openStream(client);
      });
    });
  }

  private retryLater(reason: string): void {
    const before = this.targets.current();
    const now = this.targets.ended();
    // A channel belongs to one address; a shared one (emulated workers) is never closed here.
    if (this.targets.current() !== before || !this.targets.single) {
      if (this.client !== this.opts.client) this.client?.close();
      this.client = null;
    }
    const waitMs = now ? 0 : this.backoffMs;
    this.log.warn('control_plane.disconnected', { workerId: this.opts.id, reason, next: this.targets.current(), retryInMs: waitMs });
    this.reconnectTimer = setTimeout(() => this.guard('reconnect', () => this.connect()), waitMs);
    if (!now) this.backoffMs = Math.min(this.opts.backoffMs[1], this.backoffMs * 2);
  }

  private openStream(client: GrpcChannel): void {
    const stream = openStream<WorkerBatch, WorkerCommandBatch>(client, ControlPlane, 'workerStream', this.opts.security.clusterToken());
    this.stream = stream;
    let alive = true;
    stream.on('data', (batch: WorkerCommandBatch) => {
      this.guard('commands', () => {
        if (batch.leaderAddress !== '' && batch.commands.length === 0) {
          // A standby: it names the leader and ends the stream; the next dial goes there.
          this.targets.redirected(batch.leaderAddress);
          this.log.info('worker.redirected', { workerId: this.opts.id, leader: batch.leaderAddress });
          return;
        }
        this.targets.served();
        this.refusedLogged = false;
        this.backoffMs = this.opts.backoffMs[0];
        this.driver.commands(batch, this.clock.nowMs());
      });
    });
    const lost = (reason: string): void => {
      if (!alive) return;
      alive = false;
      this.stream = null;
      this.driver.disconnected(this.clock.nowMs());
      if (!this.closed) this.retryLater(reason);
    };
    stream.on('error', (e: Error) => this.guard('stream_error', () => {
      if (isUnauthenticated(e)) this.refused(e.message);
      lost(e.message);
    }));
    stream.on('end', () => this.guard('stream_end', () => lost('stream ended')));
    stream.on('close', () => this.guard('stream_close', () => lost('stream closed')));
    // The hello and the replay of what happened while down go out first on the new stream.
    this.driver.connected(this.clock.nowMs());
  }

  private refused(reason: string): void {
    if (this.refusedLogged) return;
    this.refusedLogged = true;
    this.log.error('cp_link.refused', { workerId: this.opts.id, tokenFile: this.opts.security.clusterTokenFile, reason, hint: 'the control plane refused our cluster token: fix --cluster-token-file; retrying' });
  }

  private runtimeCreate(sandboxId: string, spec: FunctionSpecMsg): void {
    this.runtime.create({ sandboxId, fn: runtimeSpec(spec) }).then(
      (r) => this.guard('sandbox_created', () => {
        const result = r.ok
          ? { ok: true as const, address: r.sandbox.address, createdAtMs: r.sandbox.createdAtMs, startMs: r.startMs, readinessMs: r.readinessMs }
          : r;
        this.driver.created(sandboxId, result, this.clock.nowMs());
      }),
      (err: unknown) => this.guard('sandbox_created', () => {
        const reason = `runtime error: ${(err as Error)?.message ?? String(err)}`;
        this.driver.created(sandboxId, { ok: false, reason }, this.clock.nowMs());
      }),
    );
  }

  private runtimeDelete(sandboxId: string): void {
    this.runtime.delete(sandboxId).then(
      () => this.guard('sandbox_deleted', () => this.driver.deleted(sandboxId, this.clock.nowMs())),
      (err: unknown) => this.guard('sandbox_deleted', () => {
        this.log.error('sandbox.delete_failed', { workerId: this.opts.id, sandboxId, error: String(err) });
        this.driver.deleted(sandboxId, this.clock.nowMs());
      }),
    );
  }
}

/**
 * @module worker/daemon
 * The worker daemon's link logic: one stream to the CP; executes create/delete commands through
 * a SandboxRuntime, reports ready/failed/deleted/crashed sandboxes and heartbeats with capacity
 * and allocation. After a reconnect (CP failover) its hello lists the running sandboxes so the
 * new leader can rebuild its state from the workers. Several daemons can share one process
 * (`dirigent worker --count N`), each with its own identity, stream and heartbeats.
 */
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import type * as grpc from '@grpc/grpc-js';
import type { Resources } from '../api/types.js';
import {
  ControlPlane,
  FailureKind,
  WorkerBatchSchema,
  type FunctionSpec as WireSpec,
  type SandboxInfo,
  type WorkerBatch,
  type WorkerCommandBatch,
  WorkerEventSchema,
} from '../gen/dirigent/v1/cluster_pb.js';
import { assert } from '../shared/assert.js';
import type { Clock } from '../shared/clock.js';
import { Batcher, makeClient, openStream, type BidiStream } from '../shared/grpc.js';
import type { Logger } from '../shared/logger.js';
import type { SandboxRuntime } from './runtime/runtime.js';
import { fromWireSpec } from './wire.js';

type EventInit = NonNullable<MessageInitShape<typeof WorkerEventSchema>['event']>;

export interface WorkerDaemonOptions {
  id: string;
  address: string;
  controlPlane: string;
  capacity: Resources;
  capabilities: string[];
  heartbeatPeriodMs: number;
  backoffMs: readonly [number, number];
  /** Share one gRPC channel among the daemons of one process. */
  client?: grpc.Client;
}

interface Running {
  info: SandboxInfo;
}

export class WorkerDaemon {
  private readonly running = new Map<string, Running>();
  private readonly creating = new Map<string, { resources: Resources; cancelled: boolean }>();
  private stream: BidiStream<WorkerBatch, WorkerCommandBatch> | null = null;
  private client: grpc.Client | null;
  private connected = false;
  private closed = false;
  private backoffMs: number;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private readonly out = new Batcher<EventInit>((events) => {
    if (this.stream && this.connected) {
      this.stream.write(create(WorkerBatchSchema, { events: events.map((event) => ({ event })) }));
    }
  });

  constructor(
    private readonly opts: WorkerDaemonOptions,
    private readonly runtime: SandboxRuntime,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.backoffMs = opts.backoffMs[0];
    this.client = opts.client ?? null;
    runtime.onExit((sandboxId, reason) => this.onCrash(sandboxId, reason));
  }

  start(): void {
    this.connect();
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.opts.heartbeatPeriodMs);
  }

  get sandboxCount(): number {
    return this.running.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.stream?.cancel();
    if (!this.opts.client) this.client?.close();
    await this.runtime.close();
  }

  private connect(): void {
    if (this.closed) return;
    this.client ??= makeClient(ControlPlane, this.opts.controlPlane);
    const stream = openStream<WorkerBatch, WorkerCommandBatch>(this.client, ControlPlane, 'workerStream');
    this.stream = stream;
    this.connected = true;
    let alive = true;
    stream.on('data', (batch: WorkerCommandBatch) => {
      this.backoffMs = this.opts.backoffMs[0];
      for (const c of batch.commands) {
        const cmd = c.command;
        if (cmd.case === 'create') this.create(cmd.value.sandboxId, cmd.value.function!);
        else if (cmd.case === 'delete') this.delete(cmd.value.sandboxId);
      }
    });
    const lost = (reason: string): void => {
      if (!alive) return;
      alive = false;
      this.connected = false;
      this.stream = null;
      if (this.closed) return;
      this.log.warn('control_plane.disconnected', { workerId: this.opts.id, reason });
      this.reconnectTimer = setTimeout(() => this.connect(), this.backoffMs);
      this.backoffMs = Math.min(this.opts.backoffMs[1], this.backoffMs * 2);
    };
    stream.on('error', (e: Error) => lost(e.message));
    stream.on('end', () => lost('stream ended'));
    stream.on('close', () => lost('stream closed'));
    const hello = {
      workerId: this.opts.id,
      address: this.opts.address,
      capacity: wireResources(this.opts.capacity),
      runtimes: this.opts.capabilities,
      sandboxes: [...this.running.values()].map((r) => r.info),
    };
    stream.write(create(WorkerBatchSchema, { events: [{ event: { case: 'hello', value: hello } }] }));
  }

  private heartbeat(): void {
    const allocated = { cpuMillis: 0, memoryMiB: 0 };
    for (const r of this.running.values()) {
      allocated.cpuMillis += r.info.resources?.cpuMillis ?? 0;
      allocated.memoryMiB += r.info.resources?.memoryMib ?? 0;
    }
    for (const c of this.creating.values()) {
      allocated.cpuMillis += c.resources.cpuMillis;
      allocated.memoryMiB += c.resources.memoryMiB;
    }
    this.out.push({
      case: 'heartbeat',
      value: {
        capacity: wireResources(this.opts.capacity),
        allocated: wireResources(allocated),
        sandboxCount: this.running.size,
      },
    });
  }

  private create(sandboxId: string, wire: WireSpec): void {
    if (this.running.has(sandboxId) || this.creating.has(sandboxId)) return; // duplicate command
    const spec = fromWireSpec(wire);
    const entry = { resources: spec.resources, cancelled: false };
    this.creating.set(sandboxId, entry);
    const startedMs = this.clock.nowMs();
    this.runtime.create({ sandboxId, fn: spec }).then(
      (r) => {
        this.creating.delete(sandboxId);
        if (!r.ok) {
          this.out.push({ case: 'failed', value: { sandboxId, function: spec.name, kind: FailureKind.CREATE, reason: r.reason } });
          this.log.warn('sandbox.create_failed', { workerId: this.opts.id, sandboxId, fn: spec.name, reason: r.reason });
          return;
        }
        const info: SandboxInfo = {
          $typeName: 'dirigent.v1.SandboxInfo',
          sandboxId,
          function: spec.name,
          address: r.sandbox.address,
          resources: wireResources(spec.resources),
          createdAtMs: r.sandbox.createdAtMs,
          functionGeneration: wire.generation,
          functionUid: wire.uid,
        };
        this.running.set(sandboxId, { info });
        if (entry.cancelled) {
          this.delete(sandboxId);
          return;
        }
        const totalMs = this.clock.nowMs() - startedMs;
        this.out.push({
          case: 'ready',
          value: { sandbox: info, breakdown: { totalMs, startMs: r.startMs, readinessMs: r.readinessMs } },
        });
      },
      (err: unknown) => {
        this.creating.delete(sandboxId);
        const reason = `runtime error: ${(err as Error).message}`;
        this.out.push({ case: 'failed', value: { sandboxId, function: spec.name, kind: FailureKind.CREATE, reason } });
      },
    );
  }

  private delete(sandboxId: string): void {
    const pending = this.creating.get(sandboxId);
    if (pending) {
      pending.cancelled = true; // finishes creating, then deletes itself
      return;
    }
    const known = this.running.delete(sandboxId);
    this.runtime.delete(sandboxId).then(
      () => this.out.push({ case: 'deleted', value: { sandboxId } }),
      (err: unknown) => {
        this.log.error('sandbox.delete_failed', { workerId: this.opts.id, sandboxId, error: String(err) });
        this.out.push({ case: 'deleted', value: { sandboxId } });
      },
    );
    if (!known && this.log.isDebugEnabled()) this.log.debug('sandbox.delete_unknown', { sandboxId });
  }

  private onCrash(sandboxId: string, reason: string): void {
    const r = this.running.get(sandboxId);
    if (!r) return;
    this.running.delete(sandboxId);
    assert(!this.creating.has(sandboxId), `crashed sandbox ${sandboxId} still creating`);
    this.log.warn('sandbox.crashed', { workerId: this.opts.id, sandboxId, fn: r.info.function, reason });
    this.out.push({ case: 'failed', value: { sandboxId, function: r.info.function, kind: FailureKind.CRASH, reason } });
  }
}

function wireResources(r: Resources) {
  return { $typeName: 'dirigent.v1.Resources' as const, cpuMillis: r.cpuMillis, memoryMib: r.memoryMiB };
}

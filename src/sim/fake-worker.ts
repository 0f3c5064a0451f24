/**
 * @module sim/fake-worker
 * A worker daemon in virtual time, mirroring `worker/daemon.ts` message for message: create →
 * ready or failed(CREATE) after a creation delay; delete → deleted (a delete during creation
 * lets the creation finish, then deletes); a sandbox crash → failed(CRASH); a hello listing the
 * running sandboxes on every (re)connect; heartbeats with capacity and allocation. Events
 * produced while the stream is down are lost, as the daemon's Batcher drops them.
 * A crashed worker loses every sandbox; it restarts empty.
 */
import { create } from '@bufbuild/protobuf';
import type { Resources } from '../api/types.js';
import {
  FailureKind,
  WorkerEventSchema,
  type FunctionSpec as WireSpec,
  type SandboxInfo,
  type WorkerCommand,
  type WorkerEvent,
} from '../gen/dirigent/v1/cluster_pb.js';
import { assert } from '../shared/assert.js';
import type { Rng } from '../shared/rng.js';
import type { TimerQueue } from './clock.js';

/** Creation faults; the cluster zeroes the rates for the quiet phase. */
export interface CreationFaults {
  createMs: readonly [number, number];
  slowRate: number;
  slowFactor: readonly [number, number];
  failRate: number;
}

interface Creating {
  fn: string;
  resources: Resources;
  cancelled: boolean;
}

export class FakeWorker {
  alive = true;
  /** Bumped by a crash so creations started before it never complete. */
  private incarnation = 0;
  readonly running = new Map<string, SandboxInfo>();
  readonly creating = new Map<string, Creating>();
  private portSeq = 0;
  created = 0;

  constructor(
    readonly id: string,
    readonly capacity: Resources,
    private readonly faults: CreationFaults,
    private readonly rng: Rng,
    private readonly timers: TimerQueue,
    /** Sends one event on the current stream; lost if there is none. */
    private readonly send: (ev: WorkerEvent, nowMs: number) => void,
  ) {}

  hello(): WorkerEvent {
    return create(WorkerEventSchema, {
      event: {
        case: 'hello',
        value: {
          workerId: this.id,
          address: `${this.id}:10010`,
          capacity: wireResources(this.capacity),
          runtimes: ['process', 'image'],
          sandboxes: [...this.running.values()],
        },
      },
    });
  }

  heartbeat(nowMs: number): void {
    if (!this.alive) return;
    const allocated = { cpuMillis: 0, memoryMiB: 0 };
    for (const r of this.running.values()) {
      allocated.cpuMillis += r.resources?.cpuMillis ?? 0;
      allocated.memoryMiB += r.resources?.memoryMib ?? 0;
    }
    for (const c of this.creating.values()) {
      allocated.cpuMillis += c.resources.cpuMillis;
      allocated.memoryMiB += c.resources.memoryMiB;
    }
    const value = {
      capacity: wireResources(this.capacity),
      allocated: wireResources(allocated),
      sandboxCount: this.running.size,
    };
    this.send(create(WorkerEventSchema, { event: { case: 'heartbeat', value } }), nowMs);
  }

  onCommand(cmd: WorkerCommand, nowMs: number): void {
    assert(this.alive, `dead worker ${this.id} got a command`);
    const c = cmd.command;
    if (c.case === 'create') this.create(c.value.sandboxId, c.value.function!, nowMs);
    else if (c.case === 'delete') this.delete(c.value.sandboxId, nowMs);
  }

  private create(sandboxId: string, wire: WireSpec, nowMs: number): void {
    if (this.running.has(sandboxId) || this.creating.has(sandboxId)) return; // duplicate command
    const resources = {
      cpuMillis: wire.resources?.cpuMillis ?? 0,
      memoryMiB: wire.resources?.memoryMib ?? 0,
    };
    const entry: Creating = { fn: wire.name, resources, cancelled: false };
    this.creating.set(sandboxId, entry);
    const f = this.faults;
    let delayMs = f.createMs[0] + this.rng.next() * (f.createMs[1] - f.createMs[0]);
    if (this.rng.next() < f.slowRate) {
      delayMs *= f.slowFactor[0] + this.rng.next() * (f.slowFactor[1] - f.slowFactor[0]);
    }
    const fails = this.rng.next() < f.failRate;
    const incarnation = this.incarnation;
    this.timers.at(nowMs + delayMs, (atMs) => {
      if (incarnation !== this.incarnation) return; // the worker crashed meanwhile
      this.finishCreate(sandboxId, wire, entry, fails, atMs);
    });
  }

  private finishCreate(
    id: string, wire: WireSpec, e: Creating, fails: boolean, nowMs: number,
  ): void {
    this.creating.delete(id);
    if (fails) {
      const value = { sandboxId: id, function: wire.name, kind: FailureKind.CREATE, reason: 'sim' };
      this.send(create(WorkerEventSchema, { event: { case: 'failed', value } }), nowMs);
      return;
    }
    this.portSeq += 1;
    const info: SandboxInfo = {
      $typeName: 'dirigent.v1.SandboxInfo',
      sandboxId: id,
      function: wire.name,
      address: `${this.id}:${20000 + this.portSeq}`,
      resources: wireResources(e.resources),
      createdAtMs: nowMs,
      functionGeneration: wire.generation,
      functionUid: wire.uid,
    };
    this.running.set(id, info);
    this.created += 1;
    if (e.cancelled) {
      this.delete(id, nowMs);
      return;
    }
    const value = { sandbox: info, breakdown: { totalMs: 0, startMs: 0, readinessMs: 0 } };
    this.send(create(WorkerEventSchema, { event: { case: 'ready', value } }), nowMs);
  }

  private delete(sandboxId: string, nowMs: number): void {
    const pending = this.creating.get(sandboxId);
    if (pending) {
      pending.cancelled = true; // finishes creating, then deletes itself
      return;
    }
    this.running.delete(sandboxId);
    // The daemon answers `deleted` even for unknown ids: the CP's state converges either way.
    const value = { sandboxId };
    this.send(create(WorkerEventSchema, { event: { case: 'deleted', value } }), nowMs);
  }

  /** A sandbox process dies on its own. */
  crashSandbox(sandboxId: string, nowMs: number): void {
    const info = this.running.get(sandboxId);
    if (!info) return;
    this.running.delete(sandboxId);
    const value = {
      sandboxId, function: info.function, kind: FailureKind.CRASH, reason: 'sim crash',
    };
    this.send(create(WorkerEventSchema, { event: { case: 'failed', value } }), nowMs);
  }

  /** The whole worker dies: every sandbox and pending creation is gone. */
  crash(): void {
    this.alive = false;
    this.incarnation += 1;
    this.running.clear();
    this.creating.clear();
  }

  restart(): void {
    assert(!this.alive, `restart of live worker ${this.id}`);
    this.alive = true;
  }

  allocated(): Resources {
    const sum = { cpuMillis: 0, memoryMiB: 0 };
    for (const r of this.running.values()) {
      sum.cpuMillis += r.resources?.cpuMillis ?? 0;
      sum.memoryMiB += r.resources?.memoryMib ?? 0;
    }
    return sum;
  }
}

function wireResources(r: Resources) {
  const $typeName = 'dirigent.v1.Resources' as const;
  return { $typeName, cpuMillis: r.cpuMillis, memoryMib: r.memoryMiB };
}

/**
 * @module sim/fake-worker
 * A worker in virtual time: the real WorkerCore behind the real WorkerDriver (the same command
 * decoding and event encoding as `worker/daemon.ts`), with a fake runtime underneath. Only the
 * runtime is fake: creation takes a seeded time and may be slow or fail; delete takes
 * `runtimeDeleteMs`; `crashSandbox` is a sandbox process dying on its own. A crashed worker loses
 * every sandbox and its core; it restarts empty with a new core.
 *
 * `running` is the runtime's truth (a sandbox process exists), which the checkers compare with
 * the CP's view and requests use to know whether their sandbox is still there.
 */
import type { FunctionSpecMsg } from '../api/cluster.js';
import type { Resources } from '../api/types.js';
import type { WorkerCommandBatch, WorkerEvent } from '../gen/dirigent/v1/cluster_pb.js';
import { assert } from '../shared/assert.js';
import type { Logger } from '../shared/logger.js';
import type { Rng } from '../shared/rng.js';
import { WorkerCore } from '../worker/core/worker-core.js';
import { WorkerDriver, type RuntimePort } from '../worker/driver.js';
import type { TimerQueue } from './clock.js';
import type { Cluster, WorkerLink } from './cluster.js';
import type { WorkerOptions } from './options.js';

/** Creation faults; the cluster zeroes the rates for the quiet phase. */
export interface CreationFaults {
  createMs: readonly [number, number];
  slowRate: number;
  slowFactor: readonly [number, number];
  failRate: number;
}

/** How long the fake runtime takes to stop a sandbox (the real one waits for the process). */
const runtimeDeleteMs = 1;
/** The daemon's default; the sim never keeps more while a link is down. */
const replayEventsMax = 10_000;

export interface SimWorkerIo {
  /** Writes one event on the current stream; lost if there is none. */
  send(ev: WorkerEvent, nowMs: number): void;
  /** Runs `fn` at the end of the current step (the daemon's once-per-turn flush). */
  defer(fn: () => void): void;
  /** The runtime is about to stop a sandbox on the core's order (the drain checker's hook). */
  onDelete(workerId: string, sandboxId: string, nowMs: number): void;
  heartbeatPeriodMs: number;
  log: Logger;
}

export class FakeWorker {
  alive = true;
  /** Bumped by a crash so runtime work started before it never completes. */
  private incarnation = 0;
  /** Sandboxes whose process exists, by id, with the function they run. */
  readonly running = new Map<string, { fn: string; resources: Resources }>();
  readonly creating = new Set<string>();
  private portSeq = 0;
  created = 0;
  driver: WorkerDriver;
  /** The highest leader term of any batch this worker process received (0 after a restart). */
  private termDelivered = 0;
  /** While a batch is applied: its term, and the highest term seen before it. */
  private applying: { term: number; seenBefore: number } | null = null;
  /** Batches of a term below one already received (the core must ignore them). */
  staleBatches = 0;

  get termReceived(): number {
    return this.termDelivered;
  }

  constructor(
    readonly id: string,
    readonly capacity: Resources,
    private readonly faults: CreationFaults,
    private readonly rng: Rng,
    private readonly timers: TimerQueue,
    private readonly io: SimWorkerIo,
  ) {
    this.driver = this.newDriver();
  }

  private newDriver(): WorkerDriver {
    const core = new WorkerCore(
      {
        workerId: this.id,
        address: `${this.id}:10010`,
        capacity: { cpuMillis: this.capacity.cpuMillis, memoryMib: this.capacity.memoryMiB },
        runtimes: ['process', 'image'],
        heartbeatPeriodMs: this.io.heartbeatPeriodMs,
        replayEventsMax,
      },
      this.io.log,
    );
    const incarnation = this.incarnation;
    const runtime: RuntimePort = {
      create: (sandboxId, spec) => this.runtimeCreate(sandboxId, spec),
      delete: (sandboxId) => this.runtimeDelete(sandboxId),
    };
    const io = {
      write: (events: WorkerEvent[]) => {
        for (const ev of events) this.io.send(ev, this.nowMs);
      },
      runtime,
      defer: (fn: () => void) => this.io.defer(() => {
        if (incarnation === this.incarnation) fn();
      }),
    };
    return new WorkerDriver(core, io, this.io.log, this.id);
  }

  /** The time of the step in progress, for callbacks that carry none (writes). */
  nowMs = 0;

  onConnected(nowMs: number): void {
    this.nowMs = nowMs;
    this.driver.connected(nowMs);
  }

  onBroken(nowMs: number): void {
    this.nowMs = nowMs;
    if (this.alive) this.driver.disconnected(nowMs);
  }

  /**
   * A command batch from a leader (the current one over the link, or a paused old one late).
   * Fencing invariant: whatever the runtime does on a batch's orders, the batch's term is at least
   * every term this worker received before it (checked in runtimeCreate/runtimeDelete).
   */
  onCommand(batch: WorkerCommandBatch, nowMs: number): void {
    assert(this.alive, `dead worker ${this.id} got a command`);
    this.nowMs = nowMs;
    const seenBefore = this.termDelivered;
    if (batch.term < seenBefore) this.staleBatches += 1;
    this.termDelivered = Math.max(seenBefore, batch.term);
    this.applying = { term: batch.term, seenBefore };
    try {
      this.driver.commands(batch, nowMs);
    } finally {
      this.applying = null;
    }
  }

  private checkFenced(what: string, sandboxId: string): void {
    const a = this.applying;
    if (!a) return; // not on a command's orders (a creation that ended cancelled)
    assert(a.term >= a.seenBefore, `worker ${this.id} ran ${what} ${sandboxId} of term ${a.term} after seeing term ${a.seenBefore}`);
  }

  tick(nowMs: number): void {
    this.nowMs = nowMs;
    if (this.alive) this.driver.tick(nowMs);
  }

  private runtimeCreate(sandboxId: string, spec: FunctionSpecMsg): void {
    this.checkFenced('create', sandboxId);
    assert(!this.creating.has(sandboxId) && !this.running.has(sandboxId), `runtime create of known ${sandboxId}`);
    this.creating.add(sandboxId);
    const f = this.faults;
    let delayMs = f.createMs[0] + this.rng.next() * (f.createMs[1] - f.createMs[0]);
    if (this.rng.next() < f.slowRate) {
      delayMs *= f.slowFactor[0] + this.rng.next() * (f.slowFactor[1] - f.slowFactor[0]);
    }
    const fails = this.rng.next() < f.failRate;
    const incarnation = this.incarnation;
    this.timers.at(this.nowMs + delayMs, (atMs) => {
      if (incarnation !== this.incarnation) return; // the worker crashed meanwhile
      this.nowMs = atMs;
      this.creating.delete(sandboxId);
      if (fails) {
        this.driver.created(sandboxId, { ok: false, reason: 'sim' }, atMs);
        return;
      }
      this.portSeq += 1;
      const resources = { cpuMillis: spec.resources?.cpuMillis ?? 0, memoryMiB: spec.resources?.memoryMib ?? 0 };
      this.running.set(sandboxId, { fn: spec.name, resources });
      this.created += 1;
      const address = `${this.id}:${20000 + this.portSeq}`;
      this.driver.created(sandboxId, { ok: true, address, createdAtMs: atMs, startMs: 0, readinessMs: 0 }, atMs);
    });
  }

  private runtimeDelete(sandboxId: string): void {
    this.checkFenced('delete', sandboxId);
    if (this.running.has(sandboxId)) this.io.onDelete(this.id, sandboxId, this.nowMs);
    this.running.delete(sandboxId);
    const incarnation = this.incarnation;
    this.timers.at(this.nowMs + runtimeDeleteMs, (atMs) => {
      if (incarnation !== this.incarnation) return;
      this.nowMs = atMs;
      this.driver.deleted(sandboxId, atMs);
    });
  }

  /** A sandbox process dies on its own. */
  crashSandbox(sandboxId: string, nowMs: number): void {
    if (!this.running.delete(sandboxId)) return;
    this.nowMs = nowMs;
    this.driver.exited(sandboxId, 'sim crash', nowMs);
  }

  /** The whole worker dies: every sandbox, pending creation and queued event is gone. */
  crash(): void {
    this.alive = false;
    this.incarnation += 1;
    this.running.clear();
    this.creating.clear();
  }

  restart(): void {
    assert(!this.alive, `restart of live worker ${this.id}`);
    this.alive = true;
    this.termDelivered = 0;
    this.driver = this.newDriver();
  }

  allocated(): Resources {
    const sum = { cpuMillis: 0, memoryMiB: 0 };
    for (const r of this.running.values()) {
      sum.cpuMillis += r.resources.cpuMillis;
      sum.memoryMiB += r.resources.memoryMiB;
    }
    return sum;
  }
}

/** A worker of the cluster, talking over `link`; the runtime's stops feed checker S7. */
export function newFakeWorker(
  c: Cluster, w: WorkerOptions, link: WorkerLink, heartbeatPeriodMs: number,
): FakeWorker {
  const io: SimWorkerIo = {
    send: (ev, nowMs) => c.workerNet.sendToCp(link, ev, nowMs),
    defer: (fn) => c.deferred.push(fn),
    onDelete: (workerId, sandboxId, atMs) => {
      // When the CP began draining it, if it did (the checker allows a stop past the drain limit).
      const sb = c.cp.sandboxes.get(sandboxId);
      const drainStartedAtMs = sb && sb.state === 'draining' ? sb.drainStartedAtMs : (c.drainsSeen.get(sandboxId) ?? null);
      c.stoppedSandboxes.push({ workerId, sandboxId, atMs, drainStartedAtMs });
    },
    heartbeatPeriodMs,
    log: c.log.child({ c: w.id }),
  };
  const capacity = { cpuMillis: w.cpuMillis, memoryMiB: w.memoryMiB };
  return new FakeWorker(w.id, capacity, c.options.creation, c.rng.split(), c.timers, io);
}

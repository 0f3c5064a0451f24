/**
 * @module worker/core/worker-core
 * The worker daemon's logic without I/O: `handle(event, nowMs) -> effects`, `tick(nowMs) -> effects`,
 * `flush() -> effects`. The shell (`worker/daemon.ts`, or the simulator) owns the stream, the timers
 * and the runtime; it feeds stream state, decoded commands and runtime results in as events and
 * carries out the effects (runtime_create, runtime_delete, send).
 *
 * Sandbox lifecycle, per id:
 *
 *   create ─▶ creating ──created ok──▶ running ──delete──▶ deleting ──runtime done──▶ (gone: `deleted`)
 *                │  └──created failed──▶ (gone: `failed` create)      │
 *                └─delete: cancelled; once created ─▶ deleting        └──exit──▶ (gone: `failed` crash)
 *
 * Duplicate commands are idempotent: a create for a known id and a delete for a creating, deleting or
 * already cancelled sandbox change nothing. A delete for an unknown id still goes to the runtime
 * (idempotent there) and is answered with `deleted`, so the CP converges either way.
 *
 * Fencing: every command carries the term of the leader that sent it. The core keeps the highest
 * term seen (across reconnects, not restarts) and ignores a command of a lower term: a paused or
 * partitioned old leader cannot act once a newer one has spoken (`fenceTerm` in api/cluster.ts).
 *
 * Events reach the CP through the outbox (`outbox.ts`): batched per flush while connected, kept for
 * replay (bounded) while not; on every (re)connect the hello goes first, then the replayed events.
 */
import {
  fenceTerm,
  type FunctionSpecMsg,
  type HeartbeatMsg,
  type ResourcesMsg,
  type SandboxInfoMsg,
  type WorkerCommandMsg,
  type WorkerEventMsg,
  type WorkerHelloMsg,
} from '../../api/cluster.js';
import type { Logger } from '../../shared/logger.js';
import { Outbox } from './outbox.js';

export interface WorkerCoreConfig {
  workerId: string;
  address: string;
  capacity: ResourcesMsg;
  runtimes: string[];
  heartbeatPeriodMs: number;
  /** Sandbox events kept while the stream is down (see outbox.ts for what happens past it). */
  replayEventsMax: number;
}

/** What the runtime reports when a creation ends. */
export type CreatedResult =
  | { ok: true; address: string; createdAtMs: number; startMs: number; readinessMs: number }
  | { ok: false; reason: string };

export type WorkerCoreEvent =
  | { kind: 'connected' }
  | { kind: 'disconnected' }
  /** `term`: of the leader whose batch carried it (0 = none, see `fenceTerm`). */
  | { kind: 'command'; term: number; command: WorkerCommandMsg }
  | { kind: 'created'; sandboxId: string; result: CreatedResult }
  | { kind: 'runtime_deleted'; sandboxId: string }
  | { kind: 'exited'; sandboxId: string; reason: string };

export type WorkerEffect =
  | { kind: 'runtime_create'; sandboxId: string; spec: FunctionSpecMsg }
  | { kind: 'runtime_delete'; sandboxId: string }
  | { kind: 'send'; events: WorkerEventMsg[] };

type SandboxState = 'creating' | 'running' | 'deleting';

interface Sandbox {
  id: string;
  state: SandboxState;
  /**
   * What to create; null once created (`info` keeps what is reported: a decoded spec is a few
   * hundred bytes per sandbox that would otherwise live as long as it) and for a delete of an id
   * this worker never knew.
   */
  spec: FunctionSpecMsg | null;
  /** A delete came while creating: delete as soon as the creation ends. */
  cancelled: boolean;
  requestedAtMs: number;
  info: SandboxInfoMsg | null;
}

const noResources: ResourcesMsg = Object.freeze({ cpuMillis: 0, memoryMib: 0 });

export class WorkerCore {
  private readonly sandboxes = new Map<string, Sandbox>();
  private readonly outbox: Outbox;
  private connected = false;
  private nextHeartbeatMs = 0;
  /** An event was emitted during the current `handle` (it defers the next heartbeat). */
  private spoke = false;
  private effects: WorkerEffect[] = [];
  private seenTerm = 0;
  /** A stale command was logged on this stream (one line per stream, not per command). */
  private staleLogged = false;
  /** Commands ignored for a stale term, ever. */
  staleCommandCount = 0;
  /** Sandboxes whose runtime creation succeeded, ever (the simulator's accounting). */
  createdCount = 0;

  constructor(private readonly config: WorkerCoreConfig, private readonly log: Logger) {
    this.outbox = new Outbox(config.replayEventsMax);
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** The highest leader term this worker has seen (0: none yet). */
  get highestTerm(): number {
    return this.seenTerm;
  }

  /** Running sandboxes (ready and serving), as the hello lists them. */
  runningCount(): number {
    let n = 0;
    for (const sb of this.sandboxes.values()) if (sb.state === 'running') n += 1;
    return n;
  }

  /** Events waiting for a flush or for replay. */
  get queuedEventCount(): number {
    return this.outbox.size;
  }

  handle(event: WorkerCoreEvent, nowMs: number): WorkerEffect[] {
    switch (event.kind) {
      case 'connected': this.onConnected(nowMs); break;
      case 'disconnected': this.onDisconnected(); break;
      case 'command': if (this.admitTerm(event.term)) this.onCommand(event.command, nowMs); break;
      case 'created': this.onCreated(event.sandboxId, event.result, nowMs); break;
      case 'runtime_deleted': this.onRuntimeDeleted(event.sandboxId); break;
      case 'exited': this.onExited(event.sandboxId, event.reason); break;
    }
    // An event on the stream tells the CP we are alive as a heartbeat would: the next heartbeat
    // is due a period after it (the CP counts any message; control-plane/core/health).
    if (this.spoke) {
      this.spoke = false;
      if (this.connected) this.nextHeartbeatMs = nowMs + this.config.heartbeatPeriodMs;
    }
    return this.takeEffects();
  }

  /**
   * Heartbeats when due: a period after the last message sent (only while connected: a
   * heartbeat is never replayed). The shell ticks once per period with timer jitter either way,
   * so half a period of slack keeps it at one heartbeat per tick instead of skipping every
   * other one; the CP hears from the worker at least every 1.5 periods.
   */
  tick(nowMs: number): WorkerEffect[] {
    if (this.connected && nowMs >= this.nextHeartbeatMs - this.config.heartbeatPeriodMs / 2) {
      this.nextHeartbeatMs = nowMs + this.config.heartbeatPeriodMs;
      this.emit({ case: 'heartbeat', value: this.heartbeat() });
      this.spoke = false;
    }
    return this.takeEffects();
  }

  /** One batch of everything queued since the last flush; nothing while the stream is down. */
  flush(): WorkerEffect[] {
    if (!this.connected || this.outbox.size === 0) return [];
    return [{ kind: 'send', events: this.outbox.take() }];
  }

  private takeEffects(): WorkerEffect[] {
    const out = this.effects;
    this.effects = [];
    return out;
  }

  private emit(event: WorkerEventMsg): void {
    this.outbox.push(event, this.connected);
    this.spoke = true;
  }

  // ---------------------------------------------------------------- stream

  private onConnected(nowMs: number): void {
    if (this.connected) this.onDisconnected(); // a new stream replaces the old one
    this.connected = true;
    this.staleLogged = false;
    this.nextHeartbeatMs = nowMs + this.config.heartbeatPeriodMs;
    const replay = this.outbox.take();
    const dropped = this.outbox.resetDropped();
    // The hello must be the first message on a stream; the replay follows it in order.
    this.effects.push({ kind: 'send', events: [{ case: 'hello', value: this.hello() }, ...replay] });
    if (replay.length > 0 || dropped > 0) {
      this.log.info('worker.replayed', { workerId: this.config.workerId, events: replay.length, dropped });
    }
  }

  private onDisconnected(): void {
    if (!this.connected) return;
    this.connected = false;
    this.outbox.onDisconnected();
  }

  hello(): WorkerHelloMsg {
    const sandboxes: SandboxInfoMsg[] = [];
    for (const sb of this.sandboxes.values()) if (sb.state === 'running' && sb.info) sandboxes.push(sb.info);
    return {
      workerId: this.config.workerId,
      address: this.config.address,
      capacity: this.config.capacity,
      runtimes: [...this.config.runtimes],
      sandboxes,
    };
  }

  /** Allocation counts what holds resources now: creating, running and not yet deleted. */
  heartbeat(): HeartbeatMsg {
    const allocated = { cpuMillis: 0, memoryMib: 0 };
    let running = 0;
    for (const sb of this.sandboxes.values()) {
      const r = sb.info?.resources ?? sb.spec?.resources ?? noResources;
      allocated.cpuMillis += r.cpuMillis;
      allocated.memoryMib += r.memoryMib;
      if (sb.state === 'running') running += 1;
    }
    return { capacity: this.config.capacity, allocated, sandboxCount: running };
  }

  // ---------------------------------------------------------------- commands

  /** Fencing: false for a command of a term below the highest seen; a higher term is adopted. */
  private admitTerm(term: number): boolean {
    const verdict = fenceTerm(this.seenTerm, term);
    if (verdict === 'stale') {
      this.staleCommandCount += 1;
      if (!this.staleLogged) {
        this.staleLogged = true;
        this.log.warn('worker.stale_term', { workerId: this.config.workerId, term, seen: this.seenTerm });
      }
      return false;
    }
    if (verdict === 'newer') {
      // The first term seen is the leader the worker started under: routine, and 10,000 emulated
      // workers would log 10,000 lines. A term after another one is a new leader: worth a line.
      const fields = { workerId: this.config.workerId, term, previous: this.seenTerm };
      if (this.seenTerm === 0) this.log.debug('worker.term_adopted', fields);
      else this.log.info('worker.term_adopted', fields);
      this.seenTerm = term;
    }
    return true;
  }

  private onCommand(cmd: WorkerCommandMsg, nowMs: number): void {
    if (cmd.case === 'create') this.create(cmd.value.sandboxId, cmd.value.function, nowMs);
    else this.delete(cmd.value.sandboxId, nowMs);
  }

  private create(sandboxId: string, spec: FunctionSpecMsg, nowMs: number): void {
    if (this.sandboxes.has(sandboxId)) return; // duplicate command
    this.sandboxes.set(sandboxId, {
      id: sandboxId, state: 'creating', spec, cancelled: false, requestedAtMs: nowMs, info: null,
    });
    this.effects.push({ kind: 'runtime_create', sandboxId, spec });
  }

  private delete(sandboxId: string, nowMs: number): void {
    const sb = this.sandboxes.get(sandboxId);
    if (!sb) {
      // Unknown here (a restart lost it, or it is gone already): the runtime delete is idempotent.
      this.sandboxes.set(sandboxId, {
        id: sandboxId, state: 'deleting', spec: null, cancelled: false, requestedAtMs: nowMs, info: null,
      });
      this.effects.push({ kind: 'runtime_delete', sandboxId });
      return;
    }
    if (sb.state === 'creating') sb.cancelled = true; // finishes creating, then deletes itself
    else if (sb.state === 'running') this.startDelete(sb);
    // deleting: a duplicate command
  }

  private startDelete(sb: Sandbox): void {
    sb.state = 'deleting';
    this.effects.push({ kind: 'runtime_delete', sandboxId: sb.id });
  }

  // ---------------------------------------------------------------- runtime results

  private onCreated(sandboxId: string, result: CreatedResult, nowMs: number): void {
    const sb = this.sandboxes.get(sandboxId);
    if (!sb || sb.state !== 'creating' || !sb.spec) {
      // Not ours to run (a bug in the shell): stop it rather than leave an orphan process.
      this.log.warn('sandbox.created_unexpected', { workerId: this.config.workerId, sandboxId });
      if (result.ok) this.effects.push({ kind: 'runtime_delete', sandboxId });
      return;
    }
    const spec = sb.spec;
    if (!result.ok) {
      this.sandboxes.delete(sandboxId);
      this.log.warn('sandbox.create_failed', { workerId: this.config.workerId, sandboxId, fn: spec.name, reason: result.reason });
      this.emit({ case: 'failed', value: { sandboxId, function: spec.name, kind: 'create', reason: result.reason } });
      return;
    }
    this.createdCount += 1;
    sb.info = {
      sandboxId,
      function: spec.name,
      functionUid: spec.uid,
      functionGeneration: spec.generation,
      address: result.address,
      resources: spec.resources ?? noResources,
      createdAtMs: result.createdAtMs,
    };
    sb.spec = null;
    if (sb.cancelled) {
      this.startDelete(sb);
      return;
    }
    sb.state = 'running';
    const breakdown = { totalMs: nowMs - sb.requestedAtMs, startMs: result.startMs, readinessMs: result.readinessMs };
    this.emit({ case: 'ready', value: { sandbox: sb.info, breakdown } });
  }

  private onRuntimeDeleted(sandboxId: string): void {
    const sb = this.sandboxes.get(sandboxId);
    if (!sb || sb.state !== 'deleting') return;
    this.sandboxes.delete(sandboxId);
    this.emit({ case: 'deleted', value: { sandboxId } });
  }

  /** An unexpected exit: only a running sandbox crashes (a creating one fails its creation). */
  private onExited(sandboxId: string, reason: string): void {
    const sb = this.sandboxes.get(sandboxId);
    if (!sb || sb.state !== 'running') return;
    this.sandboxes.delete(sandboxId);
    const fn = sb.info?.function ?? '';
    this.log.warn('sandbox.crashed', { workerId: this.config.workerId, sandboxId, fn, reason });
    this.emit({ case: 'failed', value: { sandboxId, function: fn, kind: 'crash', reason } });
  }
}

/**
 * @module control-plane/shell/runtime
 * Drives the control-plane core: feeds it events (stream messages, API operations, store
 * completions, ticks) with the clock's time and carries out its effects (encode and send,
 * store writes fed back as `persisted`, API answers after the DPs applied the routing change).
 * Every core call is guarded: an exception is logged with the event's kind and never ends the
 * process from a timer or stream callback.
 */
import { randomUUID } from 'node:crypto';
import { onlyDrains, type InvokeTokenMsg } from '../../api/cluster.js';
import type { FunctionSpec, NamespaceQuotas, NamespaceRecord } from '../../api/types.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { encodeRoutingUpdate, encodeWorkerCommand } from '../../wire/codec.js';
import type { ControlPlaneCore } from '../core/control-plane.js';
import type { ApiOp, ApiResult, CpEffect, CpEvent } from '../core/types.js';
import type { Store } from '../store/store.js';
import type { CpMetrics } from './metrics.js';
import type { RpcServer } from './rpc-server.js';

/** Longest wait for data planes to acknowledge a routing change before answering the API. */
const routingAckWaitMsMax = 2_000;
/**
 * Autoscaler visits per event-loop turn. At 3,000 cold starts/s about 20,000 functions are
 * active and 5,000 due at each 250 ms tick. Made in one turn they held the loop 25 ms (p50) to
 * 46 ms while cold starts waited; 300 visits take 1.5 ms (p50), 1.9 ms (p90) (a node
 * microbenchmark of the core with 20,000 such functions, this machine).
 */
const tickVisitsPerTurnMax = 300;

type ApiOpInit =
  | { kind: 'api_create'; spec: FunctionSpec }
  | { kind: 'api_update'; name: string; patch: (current: FunctionSpec) => FunctionSpec }
  | { kind: 'api_delete'; name: string };

export class CpRuntime {
  rpc: RpcServer | null = null;
  /** False once this CP may have lost leadership: from then on it sends and writes nothing. */
  mayAct: () => boolean = () => true;
  private readonly requests = new Map<number, { resolve: (r: ApiResult) => void; reject: (err: Error) => void }>();
  /** API operations of this turn, handed to the core together (see `submit`). */
  private apiOps: ApiOp[] = [];
  private requestSeq = 0;
  private readonly routingWaiters = new Set<{ version: number; resolve: () => void }>();
  private completions: CpEvent[] = [];
  /** A tick's remaining visits are scheduled for the next turn. */
  private tickContinues = false;
  private closed = false;

  constructor(
    readonly core: ControlPlaneCore,
    private readonly db: Store,
    private readonly clock: Clock,
    private readonly metrics: CpMetrics,
    private readonly log: Logger,
  ) {}

  /** Feed one event to the core; false if handling it threw (logged with the event's kind). */
  handle(event: CpEvent): boolean {
    if (event.kind === 'sandbox_ready') this.metrics.onReady(event.creationMs);
    if (event.kind === 'sandbox_failed') this.metrics.onFailure();
    let ok = true;
    try {
      this.exec(this.core.handle(event, this.clock.nowMs()));
    } catch (err) {
      ok = false;
      this.log.error('control_plane.event_failed', { event: event.kind, error: String(err), stack: (err as Error).stack });
    }
    if ((event.kind === 'dp_ack' || event.kind === 'dp_disconnected') && this.routingWaiters.size > 0) {
      for (const w of this.routingWaiters) if (this.core.routingAppliedEverywhere(w.version)) w.resolve();
    }
    return ok;
  }

  /**
   * One tick of the core: at most `tickVisitsPerTurnMax` autoscaler visits per event-loop turn.
   * The rest follow in the next turns (setImmediate), after the I/O that waited, until none is
   * left or the runtime is closed. A tick that threw is not continued at once: the next timer
   * tick retries, so a bug cannot turn into a busy loop of errors.
   */
  tick(): void {
    if (this.closed) return;
    try {
      this.exec(this.core.tick(this.clock.nowMs(), tickVisitsPerTurnMax));
    } catch (err) {
      this.log.error('control_plane.tick_failed', { error: String(err), stack: (err as Error).stack });
      return;
    }
    if (this.core.visitsPending > 0 && !this.tickContinues) {
      this.tickContinues = true;
      setImmediate(() => {
        this.tickContinues = false;
        this.tick();
      });
    }
  }

  /**
   * One registry operation through the core; resolves with its result once routed. The
   * operations of one event-loop turn go to the core together, so the creates among them are
   * announced to the DPs in one routing delta (one write and one ack per DP), not one each.
   */
  submit(op: ApiOpInit): Promise<ApiResult> {
    this.requestSeq += 1;
    const requestId = this.requestSeq;
    const done = new Promise<ApiResult>((resolve, reject) => this.requests.set(requestId, { resolve, reject }));
    const wallMs = this.clock.wallMs();
    // Spelled out, not `{ ...op, requestId }`: V8 adds properties after a spread on a slow path.
    if (op.kind === 'api_create') this.apiOps.push({ kind: op.kind, spec: op.spec, requestId, uid: randomUUID(), wallMs });
    else if (op.kind === 'api_update') this.apiOps.push({ kind: op.kind, name: op.name, patch: op.patch, requestId, wallMs });
    else this.apiOps.push({ kind: op.kind, name: op.name, requestId });
    if (this.apiOps.length === 1) setImmediate(() => this.handleApiOps());
    return done;
  }

  private handleApiOps(): void {
    const events = this.apiOps;
    this.apiOps = [];
    try {
      this.exec(this.core.handleAll(events, this.clock.nowMs()));
    } catch (err) {
      this.log.error('control_plane.event_failed', { event: 'api_ops', count: events.length, error: String(err), stack: (err as Error).stack });
      for (const e of events) {
        const r = this.requests.get(e.requestId);
        if (!r) continue;
        this.requests.delete(e.requestId);
        r.reject(new Error(`${e.kind} failed; see control-plane log`));
      }
    }
  }

  /**
   * Tenancy seam (API side calls, core side implements). Every token that may invoke, the whole
   * set: the DPs get the change in the next routing delta; resolves once every connected DP
   * applied it (or after the routing-ack wait limit), so a revoked token is refused at once.
   */
  setInvokeTokens(tokens: InvokeTokenMsg[]): Promise<void> {
    if (!this.handle({ kind: 'tokens_set', tokens })) return Promise.reject(new Error('tokens_set failed; see control-plane log'));
    return this.routingApplied(this.core.routing.version);
  }

  /** Tenancy seam: a new leader's stored tokens, with no wait on DP acks (see Tenancy.load). */
  loadInvokeTokens(tokens: InvokeTokenMsg[]): void {
    if (!this.handle({ kind: 'tokens_set', tokens })) throw new Error('tokens_set failed; see control-plane log');
  }

  /**
   * Tenancy seam: the quotas of every namespace that has a record (the others use the
   * defaults). The core refuses to place a sandbox past its namespace's sandbox, CPU or memory
   * quota; lowering a quota never stops running sandboxes.
   */
  setNamespaceQuotas(records: NamespaceRecord[], defaults: NamespaceQuotas): void {
    this.handle({ kind: 'quotas_set', records, defaults });
  }

  /** Tenancy seam: what a namespace uses now (functions, live sandboxes and their resources). */
  namespaceUsage(namespace: string): NamespaceQuotas {
    return this.core.namespaceUsage(namespace);
  }

  private exec(effects: CpEffect[]): void {
    if (effects.length > 0 && !this.mayAct()) return;
    for (const e of effects) this.execOne(e);
  }

  private execOne(e: CpEffect): void {
    const rpc = this.rpc!;
    switch (e.kind) {
      case 'worker_send': return rpc.sendWorker(e.workerId, encodeWorkerCommand(e.command), e.command.case === 'delete');
      case 'dp_send': return rpc.sendDataPlane(e.dataPlaneId, encodeRoutingUpdate(e.update), onlyDrains(e.update));
      case 'dp_broadcast': return rpc.broadcastDataPlanes(encodeRoutingUpdate(e.update), onlyDrains(e.update));
      case 'persist_worker': return this.background(this.db.putWorker({ id: e.id, address: e.address }));
      case 'persist_data_plane':
        return this.background(this.db.putDataPlane({ id: e.id, proxyAddress: e.proxyAddress, internalAddress: e.internalAddress }));
      case 'forget_worker': return this.background(this.db.deleteWorker(e.id));
      case 'forget_data_plane': return this.background(this.db.deleteDataPlane(e.id));
      case 'store_function': return this.stored(e.opId, this.db.putFunction(e.record));
      case 'store_delete_function': return this.stored(e.opId, this.db.deleteFunction(e.name));
      case 'store_idle_histories': return this.background(this.db.putIdleHistories(e.records));
      case 'store_delete_idle_history': return this.background(this.db.deleteIdleHistory(e.name));
      case 'api_done': return this.answer(e.requestId, e.result, e.routingVersion);
    }
  }

  private background(p: Promise<void>): void {
    p.catch((err) => this.log.error('store.failed', { error: String(err) }));
  }

  /**
   * Store completions are fed to the core together, once per loop turn: the writes of one group
   * commit then make one routing delta and one ack per DP, not one per registration.
   */
  private stored(opId: number, p: Promise<void>): void {
    p.then(
      () => this.completed({ kind: 'persisted', opId }),
      (err) => this.completed({ kind: 'persist_failed', opId, error: String(err) }),
    );
  }

  private completed(event: CpEvent): void {
    this.completions.push(event);
    if (this.completions.length === 1) setImmediate(() => this.handleCompletions());
  }

  private handleCompletions(): void {
    const events = this.completions;
    this.completions = [];
    try {
      this.exec(this.core.handleAll(events, this.clock.nowMs()));
    } catch (err) {
      this.log.error('control_plane.event_failed', { event: 'persisted', count: events.length, error: String(err), stack: (err as Error).stack });
    }
  }

  private answer(requestId: number, result: ApiResult, version: number): void {
    const r = this.requests.get(requestId);
    if (!r) return;
    this.requests.delete(requestId);
    const resolve = r.resolve;
    const changed = result === 'created' || result === 'updated' || result === 'deleted';
    if (!changed) return resolve(result);
    void this.routingApplied(version).then(() => resolve(result));
  }

  /**
   * Resolves once every connected DP applied routing `version`, or after routingAckWaitMsMax
   * (a slow DP must not block registration forever).
   */
  private routingApplied(version: number): Promise<void> {
    if (this.core.routingAppliedEverywhere(version)) return Promise.resolve();
    return new Promise((resolve) => {
      const w = { version, resolve: () => { clearTimeout(t); this.routingWaiters.delete(w); resolve(); } };
      const t = setTimeout(w.resolve, routingAckWaitMsMax);
      this.routingWaiters.add(w);
    });
  }

  /** Stop waiting on DPs: answer whatever waits now (shutdown). */
  close(): void {
    this.closed = true;
    for (const w of [...this.routingWaiters]) w.resolve();
  }
}

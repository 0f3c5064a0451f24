/**
 * @module data-plane/core/data-plane
 * The data-plane core: per-function routing tables (from the CP's versioned snapshot and
 * deltas), per-sandbox concurrency slots, per-function FIFO queues of requests waiting for a
 * slot, load balancing, draining, and the demand integral reported to the CP.
 *
 * Synchronous and clock-free: the shell passes `nowMs` and carries out what the core leaves in
 * its outboxes (`dispatched`, `failed`, `drained`, `retired`, `firstDemand`). The warm path
 * (`admit` finding a free slot) allocates nothing beyond the policy's result.
 *
 * Invariants: an endpoint's inflight never exceeds its slots (unless slots is 0); a function's
 * `queued` equals the queued, not-cancelled waiters in its FIFO.
 */
import type {
  Endpoint,
  FunctionDemand,
  FunctionSpec as WireSpec,
  RoutingDelta,
  RoutingSnapshot,
  RoutingUpdate,
} from '../../gen/dirigent/v1/cluster_pb.js';
import { pick, type LbPolicyName, type LbState } from '../../policy/load-balancing/lb.js';
import { assert } from '../../shared/assert.js';
import { Fifo } from '../../shared/fifo.js';
import type { Logger } from '../../shared/logger.js';
import type { Rng } from '../../shared/rng.js';

export interface DpEndpoint {
  id: string;
  fn: string;
  address: string;
  workerId: string;
  inflight: number;
  slots: number;
  draining: boolean;
  removed: boolean;
  addedAtMs: number;
}

export type WaiterState = 'queued' | 'dispatched' | 'done' | 'cancelled';

export interface Waiter {
  fn: string;
  arrivalMs: number;
  state: WaiterState;
  endpoint: DpEndpoint | null;
  /** The sandbox it got appeared after it arrived: it waited for a cold start. */
  cold: boolean;
  dispatchedAtMs: number;
  /** Optional key for consistent-hash load balancing. */
  key?: string;
}

export interface DpFunction {
  name: string;
  spec: WireSpec;
  endpoints: DpEndpoint[];
  queue: Fifo<Waiter>;
  queued: number;
  inflight: number;
  lb: LbState;
  /** Demand integral: (inflight + queued) over time since the last report. */
  level: number;
  levelSinceMs: number;
  integral: number;
  reportedSinceMs: number;
}

export type AdmitResult =
  | { kind: 'dispatched'; endpoint: DpEndpoint }
  | { kind: 'queued' }
  | { kind: 'not_found' }
  | { kind: 'queue_full'; depth: number };

export interface FailedWaiter {
  waiter: Waiter;
  status: number;
  code: string;
  message: string;
}

export interface DataPlaneCoreConfig {
  queueDepthMax: number;
  queueWaitMsMax: number;
  loadBalancing: LbPolicyName;
}

export class DataPlaneCore {
  readonly functions = new Map<string, DpFunction>();
  readonly endpoints = new Map<string, DpEndpoint>();
  version = 0;
  /** Outboxes, emptied by the shell after each call. */
  dispatched: Waiter[] = [];
  failed: FailedWaiter[] = [];
  drained: string[] = [];
  retired: DpEndpoint[] = [];
  /** Functions whose demand grew while they had no sandbox: reported at once (cold path). */
  firstDemand = new Set<string>();
  private readonly reporting = new Set<DpFunction>();
  private readonly queuedFns = new Set<DpFunction>();

  constructor(
    private readonly config: DataPlaneCoreConfig,
    private readonly rng: Rng,
    private readonly log: Logger,
  ) {}

  // ------------------------------------------------------------------ requests

  admit(name: string, waiter: Waiter, nowMs: number): AdmitResult {
    const fn = this.functions.get(name);
    if (!fn) return { kind: 'not_found' };
    const ep = fn.queued === 0 ? this.pickEndpoint(fn, waiter.key) : null;
    if (ep) {
      this.changeLevel(fn, 1, nowMs);
      this.startOn(fn, ep, waiter, nowMs);
      return { kind: 'dispatched', endpoint: ep };
    }
    if (fn.queued >= this.config.queueDepthMax) return { kind: 'queue_full', depth: fn.queued };
    this.changeLevel(fn, 1, nowMs);
    waiter.state = 'queued';
    fn.queue.push(waiter);
    fn.queued += 1;
    this.queuedFns.add(fn);
    return { kind: 'queued' };
  }

  /** The request finished (any outcome) after it was dispatched. */
  release(waiter: Waiter, nowMs: number): void {
    if (waiter.state !== 'dispatched') return;
    waiter.state = 'done';
    const ep = waiter.endpoint!;
    ep.inflight -= 1;
    assert(ep.inflight >= 0, `endpoint ${ep.id} inflight below zero`);
    const fn = this.functions.get(waiter.fn);
    if (fn) {
      fn.inflight -= 1;
      this.changeLevel(fn, -1, nowMs);
    }
    if (ep.draining || ep.removed) {
      if (ep.inflight === 0) this.retire(ep);
      return;
    }
    if (fn && fn.queued > 0) this.dispatchQueued(fn, nowMs);
  }

  /** The client went away while queued. */
  cancel(waiter: Waiter, nowMs: number): void {
    if (waiter.state !== 'queued') return;
    waiter.state = 'cancelled';
    const fn = this.functions.get(waiter.fn);
    if (!fn) return;
    fn.queued -= 1;
    this.changeLevel(fn, -1, nowMs);
  }

  /** Fail requests that waited longer than queueWaitMsMax. FIFO, so only heads are checked. */
  expire(nowMs: number): void {
    for (const fn of this.queuedFns) {
      let head = fn.queue.peek();
      while (head && (head.state !== 'queued' || nowMs - head.arrivalMs >= this.config.queueWaitMsMax)) {
        fn.queue.shift();
        if (head.state === 'queued') {
          this.unqueue(fn, head, nowMs);
          this.failed.push({
            waiter: head,
            status: 504,
            code: 'queue_timeout',
            message: `no sandbox for ${fn.name} within ${this.config.queueWaitMsMax} ms`,
          });
        }
        head = fn.queue.peek();
      }
      if (fn.queue.length === 0) this.queuedFns.delete(fn);
    }
  }

  // ------------------------------------------------------------------ routing

  /** Applies a CP update. Returns false when a delta does not follow: the caller resyncs. */
  applyRouting(update: RoutingUpdate, nowMs: number): boolean {
    const u = update.update;
    if (u.case === 'snapshot') {
      this.applySnapshot(u.value, nowMs);
      return true;
    }
    if (u.case !== 'delta') return true;
    const delta = u.value;
    if (delta.version <= this.version) return true; // already contained in a snapshot
    if (delta.version !== this.version + 1) return false;
    this.applyDelta(delta, nowMs);
    this.version = delta.version;
    return true;
  }

  private applyDelta(delta: RoutingDelta, nowMs: number): void {
    for (const spec of delta.upsertFunctions) this.upsertFunction(spec);
    for (const ref of delta.deleteFunctions) this.deleteFunction(ref.name, nowMs);
    for (const id of delta.removeEndpoints) this.removeEndpoint(id, false);
    for (const id of delta.drainEndpoints) {
      if (this.endpoints.has(id)) this.removeEndpoint(id, true);
      else this.drained.push(id); // never routed here: idle by definition
    }
    for (const ep of delta.addEndpoints) this.addEndpoint(ep, nowMs);
    for (const f of delta.failures) this.failQueued(f.function, 502, 'sandbox_failure', f.reason, nowMs);
    for (const ep of delta.addEndpoints) {
      const fn = this.functions.get(ep.function);
      if (fn && fn.queued > 0) this.dispatchQueued(fn, nowMs);
    }
  }

  private applySnapshot(snap: RoutingSnapshot, nowMs: number): void {
    const names = new Set(snap.functions.map((f) => f.name));
    for (const name of [...this.functions.keys()]) if (!names.has(name)) this.deleteFunction(name, nowMs);
    for (const spec of snap.functions) this.upsertFunction(spec);
    const ids = new Set(snap.endpoints.map((e) => e.sandboxId));
    for (const ep of [...this.endpoints.values()]) if (!ids.has(ep.id)) this.removeEndpoint(ep.id, false);
    for (const ep of snap.endpoints) this.addEndpoint(ep, nowMs);
    this.version = snap.version;
    for (const fn of this.functions.values()) if (fn.queued > 0) this.dispatchQueued(fn, nowMs);
    this.log.info('routing.snapshot_applied', { version: snap.version, functions: snap.functions.length, endpoints: snap.endpoints.length });
  }

  private upsertFunction(spec: WireSpec): void {
    const fn = this.functions.get(spec.name);
    if (fn) {
      fn.spec = spec;
      for (const ep of fn.endpoints) ep.slots = spec.concurrency;
      return;
    }
    this.functions.set(spec.name, {
      name: spec.name,
      spec,
      endpoints: [],
      queue: new Fifo(),
      queued: 0,
      inflight: 0,
      lb: { cursor: 0 },
      level: 0,
      levelSinceMs: 0,
      integral: 0,
      reportedSinceMs: 0,
    });
  }

  private deleteFunction(name: string, nowMs: number): void {
    const fn = this.functions.get(name);
    if (!fn) return;
    this.failQueued(name, 404, 'function_not_found', `function ${name} was deleted`, nowMs);
    for (const ep of [...fn.endpoints]) this.removeEndpoint(ep.id, false);
    this.functions.delete(name);
    this.reporting.delete(fn);
    this.queuedFns.delete(fn);
  }

  private addEndpoint(e: Endpoint, nowMs: number): void {
    if (this.endpoints.has(e.sandboxId)) return;
    const fn = this.functions.get(e.function);
    if (!fn) return;
    const ep: DpEndpoint = {
      id: e.sandboxId,
      fn: e.function,
      address: e.address,
      workerId: e.workerId,
      inflight: 0,
      slots: fn.spec.concurrency,
      draining: false,
      removed: false,
      addedAtMs: nowMs,
    };
    this.endpoints.set(ep.id, ep);
    fn.endpoints.push(ep);
  }

  private removeEndpoint(id: string, drain: boolean): void {
    const ep = this.endpoints.get(id);
    if (!ep) return;
    this.endpoints.delete(id);
    if (drain) ep.draining = true;
    else ep.removed = true;
    const fn = this.functions.get(ep.fn);
    if (fn) {
      const i = fn.endpoints.indexOf(ep);
      if (i >= 0) fn.endpoints.splice(i, 1);
    }
    if (ep.inflight === 0) this.retire(ep);
  }

  private retire(ep: DpEndpoint): void {
    if (ep.draining) this.drained.push(ep.id);
    this.retired.push(ep);
  }

  private failQueued(name: string, status: number, code: string, message: string, nowMs: number): void {
    const fn = this.functions.get(name);
    if (!fn) return;
    for (const w of fn.queue.drain()) {
      if (w.state !== 'queued') continue;
      this.unqueue(fn, w, nowMs);
      this.failed.push({ waiter: w, status, code, message });
    }
    this.queuedFns.delete(fn);
  }

  // ------------------------------------------------------------------ demand

  /**
   * Demand since the last report for every function that had any and whose report is due
   * (`periodMs` after its previous one; 0 = all), as time-weighted average
   * concurrency plus the instantaneous values. A function is reported once more at zero, then
   * dropped until demand returns.
   */
  takeDemand(nowMs: number, periodMs = 0): FunctionDemand[] {
    const out: FunctionDemand[] = [];
    for (const fn of this.reporting) {
      // Each function is due one period after its last report; callers poll often, so the
      // encoding work of thousands of functions is spread over the period, not one turn.
      if (nowMs - fn.reportedSinceMs < periodMs) continue;
      fn.integral += fn.level * (nowMs - fn.levelSinceMs);
      fn.levelSinceMs = nowMs;
      const spanMs = Math.max(1, nowMs - fn.reportedSinceMs);
      const avg = fn.integral / spanMs;
      out.push(demandOf(fn, avg));
      fn.integral = 0;
      fn.reportedSinceMs = nowMs;
      if (fn.level === 0 && avg === 0) this.reporting.delete(fn);
    }
    return out;
  }

  /** Instantaneous demand of the functions in `firstDemand`, for the immediate report. */
  firstDemandReport(): FunctionDemand[] {
    const out: FunctionDemand[] = [];
    for (const name of this.firstDemand) {
      const fn = this.functions.get(name);
      if (fn) out.push(demandOf(fn, fn.level));
    }
    this.firstDemand.clear();
    return out;
  }

  // ------------------------------------------------------------------ internals

  private pickEndpoint(fn: DpFunction, key: string | undefined): DpEndpoint | null {
    if (fn.endpoints.length === 0) return null;
    const r = pick(this.config.loadBalancing, fn.endpoints, fn.spec.concurrency, fn.lb, this.rng, key ?? fn.name);
    fn.lb = r.state;
    return r.index >= 0 ? fn.endpoints[r.index]! : null;
  }

  private startOn(fn: DpFunction, ep: DpEndpoint, w: Waiter, nowMs: number): void {
    assert(ep.slots === 0 || ep.inflight < ep.slots, `endpoint ${ep.id} has no free slot`);
    ep.inflight += 1;
    fn.inflight += 1;
    w.state = 'dispatched';
    w.endpoint = ep;
    w.dispatchedAtMs = nowMs;
    w.cold = ep.addedAtMs >= w.arrivalMs;
  }

  private dispatchQueued(fn: DpFunction, nowMs: number): void {
    while (fn.queued > 0) {
      const head = fn.queue.peek()!;
      if (head.state !== 'queued') {
        fn.queue.shift();
        continue;
      }
      const ep = this.pickEndpoint(fn, head.key);
      if (!ep) return;
      fn.queue.shift();
      fn.queued -= 1;
      this.startOn(fn, ep, head, nowMs);
      this.dispatched.push(head);
    }
    if (fn.queue.length === 0) this.queuedFns.delete(fn);
  }

  private unqueue(fn: DpFunction, w: Waiter, nowMs: number): void {
    w.state = 'cancelled';
    fn.queued -= 1;
    this.changeLevel(fn, -1, nowMs);
  }

  private changeLevel(fn: DpFunction, delta: 1 | -1, nowMs: number): void {
    if (!this.reporting.has(fn)) {
      this.reporting.add(fn);
      fn.integral = 0;
      fn.levelSinceMs = nowMs;
      fn.reportedSinceMs = nowMs;
    } else {
      fn.integral += fn.level * (nowMs - fn.levelSinceMs);
      fn.levelSinceMs = nowMs;
    }
    fn.level += delta;
    if (delta > 0 && fn.endpoints.length === 0) this.firstDemand.add(fn.name);
  }
}

function demandOf(fn: DpFunction, avg: number): FunctionDemand {
  const sandboxInflight: Record<string, number> = {};
  for (const ep of fn.endpoints) if (ep.inflight > 0) sandboxInflight[ep.id] = ep.inflight;
  return {
    $typeName: 'dirigent.v1.FunctionDemand',
    function: fn.name,
    concurrencyAvg: avg,
    inflight: fn.inflight,
    queued: fn.queued,
    sandboxInflight,
    functionUid: fn.spec.uid,
  };
}

/**
 * @module data-plane/core/data-plane
 * The data-plane core: per-function routing tables (from the CP's versioned snapshot and
 * deltas), per-sandbox concurrency slots, per-function FIFO queues of requests waiting for a
 * slot, load balancing, draining, and the demand integral reported to the CP.
 *
 * Sans-I/O: every call takes `nowMs` and returns the effects the shell carries out (dispatch,
 * fail, drained, close_pool, first_demand). Imports only plain message types, policies and
 * shared helpers.
 *
 * Invariants (asserted): levels, in-flight and queued counts never go below zero; an endpoint's
 * inflight never exceeds its slots (unless slots is 0); a function's `queued` equals the length
 * of its queue; a waiter settles on the function object it was admitted to.
 */
import type { FunctionDemandMsg, RoutingSnapshotMsg, RoutingUpdateMsg, TermVerdict } from '../../api/cluster.js';
import { dataPlaneDefaults } from '../../config/defaults.js';
import { assert } from '../../shared/assert.js';
import { LinkedList } from '../../shared/linked-list.js';
import type { Logger } from '../../shared/logger.js';
import type { Rng } from '../../shared/rng.js';
import { invokeVerdict, type InvokeVerdict, type PresentedToken } from './invoke-auth.js';
import { RoutingTable } from './routing.js';
import type { AdmitResult, DataPlaneCoreConfig, DpEffect, DpEndpoint, DpFunction, RetryCause, Waiter } from './types.js';

export type { AdmitResult, DataPlaneCoreConfig, DpEffect, DpEndpoint, DpFunction, RetryCause, Waiter } from './types.js';
export type { InvokeVerdict, PresentedToken } from './invoke-auth.js';

/** A waiter for `admit`, every field set from the start (one object shape); shells extend it with their own fields. */
export function newWaiter(fn: string, arrivalMs: number, key?: string): Waiter {
  return { fn, arrivalMs, state: 'new', owner: null, endpoint: null, cold: false, dispatchedAtMs: 0, retries: 0, key, queueNode: null, expiryNode: null };
}

export class DataPlaneCore {
  private readonly table: RoutingTable;
  /** Every queued waiter in arrival order: with one wait limit for all, that is deadline order. */
  private readonly expiry = new LinkedList<Waiter>();
  private readonly reporting = new Set<DpFunction>();
  /** Functions for the next urgent report: demand without a sandbox, or a queue behind busy ones. */
  private readonly firstDemand = new Set<DpFunction>();
  private readonly urgentReportMsMin: number;
  private readonly upstreamRetriesMax: number;
  /**
   * Functions that queued a request since the last `takeNewlyQueued`, kept only when the shell
   * asks (`trackQueued`): proxy processes holding idle slots of them are told to give them back.
   */
  private readonly newlyQueued = new Set<DpFunction>();
  /** Functions with a queue now (only with `trackQueued`): a queue that lasts is recalled again. */
  private readonly withQueue = new Set<DpFunction>();
  trackQueued = false;
  /** See `inflightTotal` and `queuedTotal`. */
  private inflightCount = 0;
  private queuedCount = 0;

  /** Requests on sandboxes now, over every function (a deleted one's still settling too). O(1). */
  get inflightTotal(): number {
    return this.inflightCount;
  }

  /** Requests waiting for a sandbox now, over every function. O(1). */
  get queuedTotal(): number {
    return this.queuedCount;
  }

  constructor(
    private readonly config: DataPlaneCoreConfig,
    private readonly rng: Rng,
    log: Logger,
  ) {
    this.urgentReportMsMin = config.urgentReportMsMin ?? dataPlaneDefaults.urgentReportMsMin;
    this.upstreamRetriesMax = config.upstreamRetriesMax ?? dataPlaneDefaults.upstreamRetriesMax;
    this.table = new RoutingTable(config.loadBalancing, log, {
      failQueued: (fn, status, code, message, nowMs, fx) => this.failQueued(fn, status, code, message, nowMs, fx),
      dispatchQueued: (fn, nowMs, fx) => this.dispatchQueued(fn, nowMs, fx),
      forget: (fn) => {
        this.reporting.delete(fn);
        this.firstDemand.delete(fn);
      },
    });
  }

  /** Current functions by name. */
  get functions(): ReadonlyMap<string, DpFunction> {
    return this.table.functions;
  }

  /** Routable endpoints by sandbox id. */
  get endpoints(): ReadonlyMap<string, DpEndpoint> {
    return this.table.endpoints;
  }

  get version(): number {
    return this.table.version;
  }

  /**
   * Whether it has applied a routing snapshot since it started. A front end sends invocations
   * only to a synced DP: a restarted one would answer 404 for every function it has not heard of.
   * It stays true while the CP is away (warm traffic flows on the cached table).
   */
  get synced(): boolean {
    return this.table.synced;
  }

  // ------------------------------------------------------------------ requests

  /**
   * May the holder of `presented` invoke function `fn` (one with `auth: token`)? Asked before
   * `admit`, so an unauthorized caller never queues nor causes a cold start.
   */
  invokeVerdict(fn: DpFunction, presented: PresentedToken | null): InvokeVerdict {
    return invokeVerdict(this.table.tokens, fn.name, presented);
  }

  /** Invoke tokens known now, by id (hashes only). */
  get tokens(): ReadonlyMap<string, { id: string; scope: string; namespace: string }> {
    return this.table.tokens;
  }

  /** Data planes the CP knows, id -> proxy address (async reads are forwarded only there). */
  get peers(): ReadonlyMap<string, string> {
    return this.table.peers;
  }

  get peersVersion(): number {
    return this.table.peersVersion;
  }

  admit(name: string, w: Waiter, nowMs: number): AdmitResult {
    const effects: DpEffect[] = [];
    const fn = this.table.functions.get(name);
    if (!fn) return { kind: this.table.synced ? 'not_found' : 'not_ready', effects };
    const ep = fn.queued === 0 ? fn.lb.pick(this.rng, w.key ?? fn.name) : null;
    if (ep) {
      w.owner = fn;
      this.changeLevel(fn, 1, nowMs, effects);
      this.startOn(ep, w, nowMs);
      effects.push({ kind: 'dispatch', waiter: w });
      return { kind: 'dispatched', effects };
    }
    if (fn.queued >= this.config.queueDepthMax) return { kind: 'queue_full', depth: fn.queued, effects };
    w.owner = fn;
    this.changeLevel(fn, 1, nowMs, effects);
    w.state = 'queued';
    w.queueNode = fn.queue.push(w);
    this.noteTimedWork(effects);
    w.expiryNode = this.expiry.push(w);
    fn.queued += 1;
    this.queuedCount += 1;
    if (this.trackQueued) this.queuedMore(fn);
    // Queued behind busy sandboxes (not for lack of any): the CP's queue floor adds sandboxes
    // only if it hears of the queue before the next periodic report.
    if (fn.endpoints.length > 0 && nowMs - fn.urgentAtMs >= this.urgentReportMsMin) {
      fn.urgentAtMs = nowMs;
      this.markUrgent(fn, effects);
    }
    return { kind: 'queued', effects };
  }

  /** The request finished (any outcome) after it was dispatched. Idempotent. */
  release(w: Waiter, nowMs: number): DpEffect[] {
    if (w.state !== 'dispatched') return [];
    const effects: DpEffect[] = [];
    w.state = 'done';
    const { ep, fn, before } = this.freeSlot(w);
    this.changeLevel(fn, -1, nowMs, effects);
    if (ep.state === 'routable') {
      fn.lb.update(ep, before);
      if (fn.queued > 0) this.dispatchQueued(fn, nowMs, effects);
    } else if (ep.inflight === 0) {
      this.table.retire(ep, effects);
    }
    return effects;
  }

  /**
   * A dispatched request got nothing back from its sandbox and may be tried again:
   * - `refused`: nothing listens at the sandbox's address (it died) and none of the request
   *   reached it. The sandbox, and every other sandbox of the function at that address, leave
   *   this DP's rotation now rather than when the CP's removal comes (the worker reports the
   *   death on its own; until then every request sent there fails).
   * - `reset`: the connection closed before any answer, and the shell found the request safe to
   *   repeat (idempotent, no body). The sandbox stays: a new connection tells whether it lives.
   * The request goes back to the head of its function's queue, keeping its arrival time and so its
   * wait limit, and is dispatched at once if a sandbox has a slot; with none left the CP hears of
   * it at once. After `upstreamRetriesMax` retries it fails: 502.
   */
  retry(w: Waiter, nowMs: number, cause: RetryCause): DpEffect[] {
    if (w.state !== 'dispatched') return [];
    const effects: DpEffect[] = [];
    const { ep, fn, before } = this.freeSlot(w);
    if (ep.state === 'routable' && cause === 'refused') {
      this.table.evict(ep, effects);
      // Nothing listens at that address, so no other sandbox of the function there answers either
      // (emulated sandboxes of one worker share its responder; a killed worker took them all).
      for (const other of fn.endpoints.filter((o) => o.address === ep.address)) this.table.evict(other, effects);
    } else if (ep.state === 'routable') fn.lb.update(ep, before);
    else if (ep.inflight === 0) this.table.retire(ep, effects);
    w.endpoint = null;
    w.retries = (w.retries ?? 0) + 1;
    if (w.retries > this.upstreamRetriesMax || fn.deleted) {
      w.state = 'done';
      this.changeLevel(fn, -1, nowMs, effects);
      const what = cause === 'refused' ? 'refused the connection' : 'closed the connection before answering';
      effects.push({ kind: 'fail', waiter: w, status: 502, code: 'sandbox_failure', message: `the sandbox of ${fn.name} ${what} (${w.retries} tries)` });
      return effects;
    }
    // Still waiting: its demand level is unchanged, it moves from in flight to queued. Everything
    // queued for this function arrived after it (dispatch is FIFO), but not every other function's.
    w.state = 'queued';
    w.queueNode = fn.queue.unshift(w);
    this.noteTimedWork(effects);
    w.expiryNode = this.expiry.insertBeforeFirst(w, (o) => o.arrivalMs > w.arrivalMs);
    fn.queued += 1;
    this.queuedCount += 1;
    if (this.trackQueued) this.queuedMore(fn);
    if (fn.endpoints.length === 0) this.markUrgent(fn, effects);
    else this.dispatchQueued(fn, nowMs, effects);
    return effects;
  }

  /** The client went away while queued: the waiter leaves its queue at once. */
  cancel(w: Waiter, nowMs: number): DpEffect[] {
    if (w.state === 'queued') this.unqueue(w, nowMs);
    return [];
  }

  /** Fails requests that waited `queueWaitMsMax`; only expired heads are visited. */
  expire(nowMs: number): DpEffect[] {
    const effects: DpEffect[] = [];
    for (let w = this.expiry.peek(); w && nowMs - w.arrivalMs >= this.config.queueWaitMsMax; w = this.expiry.peek()) {
      this.unqueue(w, nowMs);
      const message = `no sandbox for ${w.owner!.name} within ${this.config.queueWaitMsMax} ms`;
      effects.push({ kind: 'fail', waiter: w, status: 504, code: 'queue_timeout', message });
    }
    return effects;
  }

  /**
   * Fencing, asked once per routing batch before its updates are applied: 'stale' = a batch of a
   * leader older than one already seen, to be ignored whole (see routing.ts for a newer term).
   */
  admitTerm(term: number): TermVerdict {
    return this.table.admitTerm(term);
  }

  /** The highest leader term seen. */
  get term(): number {
    return this.table.term;
  }

  /** Applies a CP update; `ok: false` when a delta does not follow (the shell resyncs). */
  applyRouting(update: RoutingUpdateMsg, nowMs: number): { ok: boolean; effects: DpEffect[] } {
    const effects: DpEffect[] = [];
    const ok = this.table.apply(update, nowMs, effects);
    return { ok, effects };
  }

  /** The routing table as a snapshot of its current version (for proxy processes' replicas). */
  routingSnapshot(): RoutingSnapshotMsg {
    return this.table.snapshot();
  }

  // ------------------------------------------------------------------ demand

  /**
   * Demand since the last report for every function that had any and whose report is due
   * (`periodMs` after its previous one; 0 = all), as time-weighted average concurrency plus the
   * instantaneous values. A function is reported once more at zero, then dropped until demand
   * returns.
   */
  takeDemand(nowMs: number, periodMs = 0): FunctionDemandMsg[] {
    const out: FunctionDemandMsg[] = [];
    for (const fn of this.reporting) {
      // Each function is due one period after its last report; callers poll often, so the
      // encoding work of thousands of functions is spread over the period, not one turn.
      if (nowMs - fn.reportedSinceMs < periodMs) continue;
      fn.integral += fn.level * (nowMs - fn.levelSinceMs);
      fn.levelSinceMs = nowMs;
      const spanMs = Math.max(1, nowMs - fn.reportedSinceMs);
      const avg = fn.integral / spanMs;
      assert(avg >= 0, `negative demand ${avg} for ${fn.name}/${fn.uid}`);
      out.push(demandOf(fn, avg));
      fn.integral = 0;
      fn.reportedSinceMs = nowMs;
      if (fn.level === 0 && avg === 0) this.reporting.delete(fn);
    }
    return out;
  }

  /**
   * Whether `takeDemand` or `expire` has anything to do: a request waits, or a function has
   * demand to report (once more at zero). False: the shell may stop calling them until a
   * `timed_work` effect.
   */
  get hasTimedWork(): boolean {
    return this.reporting.size > 0 || this.expiry.length > 0;
  }

  /** Functions with queued requests now (only with `trackQueued`). */
  get functionsWithQueue(): ReadonlySet<DpFunction> {
    return this.withQueue;
  }

  /** Functions that queued a request since the last call (only with `trackQueued`). */
  takeNewlyQueued(): DpFunction[] {
    if (this.newlyQueued.size === 0) return [];
    const out = [...this.newlyQueued];
    this.newlyQueued.clear();
    return out;
  }

  /** Instantaneous demand of the functions that got demand without a sandbox or queued behind busy ones. */
  firstDemandReport(): FunctionDemandMsg[] {
    const out: FunctionDemandMsg[] = [];
    for (const fn of this.firstDemand) if (!fn.deleted) out.push(demandOf(fn, fn.level));
    this.firstDemand.clear();
    return out;
  }

  // ------------------------------------------------------------------ internals

  private queuedMore(fn: DpFunction): void {
    this.newlyQueued.add(fn);
    this.withQueue.add(fn);
  }

  /** The slot a dispatched waiter held on its endpoint is free (counts only; `before`: the endpoint's in-flight before). */
  private freeSlot(w: Waiter): { ep: DpEndpoint; fn: DpFunction; before: number } {
    const ep = w.endpoint!;
    const fn = w.owner!;
    const before = ep.inflight;
    ep.inflight -= 1;
    fn.inflight -= 1;
    this.inflightCount -= 1;
    assert(ep.inflight >= 0 && fn.inflight >= 0, `inflight below zero on ${ep.id} of ${fn.name}/${fn.uid}`);
    return { ep, fn, before };
  }

  private startOn(ep: DpEndpoint, w: Waiter, nowMs: number): void {
    assert(ep.slots === 0 || ep.inflight < ep.slots, `endpoint ${ep.id} has no free slot`);
    assert(ep.state === 'routable', `endpoint ${ep.id} is ${ep.state}`);
    const before = ep.inflight;
    ep.inflight += 1;
    ep.owner.inflight += 1;
    this.inflightCount += 1;
    ep.owner.lb.update(ep, before);
    w.state = 'dispatched';
    w.endpoint = ep;
    w.dispatchedAtMs = nowMs;
    w.cold = ep.addedAtMs >= w.arrivalMs;
  }

  private dispatchQueued(fn: DpFunction, nowMs: number, effects: DpEffect[]): void {
    for (let head = fn.queue.peek(); head; head = fn.queue.peek()) {
      const ep = fn.lb.pick(this.rng, head.key ?? fn.name);
      if (!ep) return;
      this.unlink(head);
      fn.queued -= 1;
      this.queuedCount -= 1;
      if (this.trackQueued && fn.queued === 0) this.withQueue.delete(fn);
      this.startOn(ep, head, nowMs);
      effects.push({ kind: 'dispatch', waiter: head });
    }
  }

  private failQueued(fn: DpFunction, status: number, code: string, message: string, nowMs: number, effects: DpEffect[]): void {
    for (let w = fn.queue.peek(); w; w = fn.queue.peek()) {
      this.unqueue(w, nowMs);
      effects.push({ kind: 'fail', waiter: w, status, code, message });
    }
  }

  private unlink(w: Waiter): void {
    if (w.queueNode) w.owner!.queue.remove(w.queueNode);
    if (w.expiryNode) this.expiry.remove(w.expiryNode);
    w.queueNode = null;
    w.expiryNode = null;
  }

  private unqueue(w: Waiter, nowMs: number): void {
    const fn = w.owner!;
    this.unlink(w);
    w.state = 'cancelled';
    fn.queued -= 1;
    this.queuedCount -= 1;
    if (this.trackQueued && fn.queued === 0) this.withQueue.delete(fn);
    assert(fn.queued === fn.queue.length, `queued ${fn.queued} != queue length ${fn.queue.length} of ${fn.name}`);
    this.changeLevel(fn, -1, nowMs, []);
  }

  private changeLevel(fn: DpFunction, delta: 1 | -1, nowMs: number, effects: DpEffect[]): void {
    fn.level += delta;
    assert(fn.level >= 0, `demand level of ${fn.name}/${fn.uid} below zero`);
    if (fn.deleted) return; // nobody reports a deleted function; its requests still settle here
    if (!this.reporting.has(fn)) {
      this.noteTimedWork(effects);
      this.reporting.add(fn);
      fn.integral = 0;
      fn.levelSinceMs = nowMs;
      fn.reportedSinceMs = nowMs;
    } else {
      fn.integral += (fn.level - delta) * (nowMs - fn.levelSinceMs);
      fn.levelSinceMs = nowMs;
    }
    if (delta > 0 && fn.endpoints.length === 0) this.markUrgent(fn, effects);
  }

  /** Called before a waiter joins `expiry` or a function joins `reporting`: the first wakes the shell's timers. */
  private noteTimedWork(effects: DpEffect[]): void {
    if (!this.hasTimedWork) effects.push({ kind: 'timed_work' });
  }

  /** The function goes in the next urgent report (`firstDemandReport`), sent at once. */
  private markUrgent(fn: DpFunction, effects: DpEffect[]): void {
    if (this.firstDemand.has(fn)) return;
    if (this.firstDemand.size === 0) effects.push({ kind: 'first_demand' });
    this.firstDemand.add(fn);
  }
}

/** The per-sandbox counts of a report with none in flight: one frozen object, read only. */
const noSandboxInflight: Readonly<Record<string, number>> = Object.freeze({});

function demandOf(fn: DpFunction, avg: number): FunctionDemandMsg {
  let sandboxInflight = noSandboxInflight as Record<string, number>;
  const endpoints = fn.endpoints;
  for (let i = 0; i < endpoints.length; i += 1) {
    const ep = endpoints[i]!;
    if (ep.inflight === 0) continue;
    if (sandboxInflight === noSandboxInflight) sandboxInflight = {};
    sandboxInflight[ep.id] = ep.inflight;
  }
  return { function: fn.name, functionUid: fn.uid, concurrencyAvg: avg, inflight: fn.inflight, queued: fn.queued, sandboxInflight };
}

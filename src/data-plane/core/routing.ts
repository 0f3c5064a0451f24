/**
 * @module data-plane/core/routing
 * The data plane's routing table: functions by name (each a `DpFunction` with its uid),
 * routable endpoints by sandbox id, and endpoints draining until their last request ends.
 * Applies the CP's snapshots and deltas.
 *
 * Identity rules: an upsert of a known name with another uid replaces the function (the old
 * one is deleted); a delete, endpoint or failure whose uid is not the current function's is
 * stale and ignored. Deletes drain: the function's queued requests get 404 at once, its
 * endpoints stop taking requests and report `drained` when idle. Within a delta, removals and
 * drains apply before function deletes, so a sandbox is never acknowledged while busy.
 *
 * Leader terms (fencing): the shell asks `admitTerm` for every batch before applying it. A batch
 * of a lower term than the highest seen is ignored whole. A higher term is a new leader whose
 * routing versions start afresh: the version baseline is dropped (version 0) and its deltas are
 * ignored until its snapshot arrives (it sends one on every hello), so the old leader's versions
 * never hide the new leader's changes. The table itself keeps serving meanwhile.
 */
import { fenceTerm, type TermVerdict } from '../../api/cluster.js';
import type {
  EndpointMsg, FunctionFailureCode, FunctionSpecMsg, InvokeTokenMsg, RoutingDeltaMsg, RoutingSnapshotMsg, RoutingUpdateMsg,
} from '../../api/cluster.js';
import { createLbIndex } from '../../policy/load-balancing/lb-index.js';
import type { LbPolicyName } from '../../policy/load-balancing/lb.js';
import { LinkedList } from '../../shared/linked-list.js';
import type { Logger } from '../../shared/logger.js';
import type { DpEffect, DpEndpoint, DpFunction } from './types.js';

/** What the table needs from the request side of the core. */
export interface QueueHooks {
  failQueued(fn: DpFunction, status: number, code: string, message: string, nowMs: number, effects: DpEffect[]): void;
  dispatchQueued(fn: DpFunction, nowMs: number, effects: DpEffect[]): void;
  /** The function is gone: stop reporting it. */
  forget(fn: DpFunction): void;
}

const failureStatus: Record<FunctionFailureCode, number> = { sandbox_failure: 502, unschedulable: 503, quota_exceeded: 429 };

export class RoutingTable {
  readonly functions = new Map<string, DpFunction>();
  /** Routable endpoints. */
  readonly endpoints = new Map<string, DpEndpoint>();
  /** Endpoints that take no new requests and report `drained` when idle. */
  readonly draining = new Map<string, DpEndpoint>();
  /**
   * Endpoints removed (worker lost, crash) while requests still ran on them, until the last one
   * ends. The CP may route such a sandbox again (a reconnecting worker's hello) or drain it; the
   * DP must then count the requests still on it, never take it for idle.
   */
  private readonly detached = new Map<string, DpEndpoint>();
  /** Tokens that may invoke `auth: token` functions, by id: replaced by snapshots, changed by deltas. */
  readonly tokens = new Map<string, InvokeTokenMsg>();
  /** Other data planes (and this one): id -> proxy address, only as the CP sent them. */
  readonly peers = new Map<string, string>();
  /** Bumped on every peer change, so a shell can cache what it derives from `peers`. */
  peersVersion = 0;
  /** A snapshot has been applied since the process started: the table is worth routing by. */
  synced = false;
  version = 0;
  /** The highest leader term seen (0: none yet). */
  term = 0;
  /** A newer leader spoke: its deltas wait for its snapshot. */
  private snapshotOwed = false;

  constructor(
    private readonly policy: LbPolicyName,
    private readonly log: Logger,
    private readonly hooks: QueueHooks,
  ) {}

  /** Fencing for one batch of `term`: 'stale' means ignore it whole. */
  admitTerm(term: number): TermVerdict {
    const verdict = fenceTerm(this.term, term);
    if (verdict !== 'newer') return verdict;
    this.log.info('routing.term_adopted', { term, previous: this.term, version: this.version });
    this.term = term;
    this.version = 0;
    this.snapshotOwed = true;
    return verdict;
  }

  apply(update: RoutingUpdateMsg, nowMs: number, effects: DpEffect[]): boolean {
    if (update.case === 'snapshot') {
      this.snapshotOwed = false;
      this.applySnapshot(update.value, nowMs, effects);
      return true;
    }
    const delta = update.value;
    if (this.snapshotOwed) return true; // relative to a table we do not have yet: the snapshot follows
    if (delta.version <= this.version) return true; // already contained in a snapshot
    if (delta.version !== this.version + 1) return false;
    this.applyDelta(delta, nowMs, effects);
    this.version = delta.version;
    return true;
  }

  /**
   * The table as a snapshot of its own version: functions, routable endpoints, tokens, peers.
   * Drains are left out: they are this DP's to acknowledge, not a replica's (proxy processes).
   */
  snapshot(): RoutingSnapshotMsg {
    const endpoints: EndpointMsg[] = [];
    for (const ep of this.endpoints.values()) {
      endpoints.push({ sandboxId: ep.id, function: ep.owner.name, functionUid: ep.owner.uid, address: ep.address, workerId: ep.workerId });
    }
    return {
      version: this.version,
      functions: [...this.functions.values()].map((fn) => fn.spec),
      endpoints,
      drainEndpoints: [],
      tokens: [...this.tokens.values()],
      peers: [...this.peers].map(([dataPlaneId, proxyAddress]) => ({ dataPlaneId, proxyAddress })),
    };
  }

  /** The endpoint's last request ended after it stopped being routable. */
  retire(ep: DpEndpoint, effects: DpEffect[]): void {
    this.detached.delete(ep.id);
    if (ep.state === 'draining') {
      this.draining.delete(ep.id);
      ep.state = 'removed';
      effects.push({ kind: 'drained', sandboxId: ep.id });
    }
    effects.push({ kind: 'close_pool', endpoint: ep });
  }

  /**
   * Out of rotation before the CP says so (it refused a connection: nothing listens). A later
   * removal or drain from the CP finds it gone or detached; a later add routes it again.
   */
  evict(ep: DpEndpoint, effects: DpEffect[]): void {
    this.removeEndpoint(ep.id, effects);
  }

  private applyDelta(delta: RoutingDeltaMsg, nowMs: number, effects: DpEffect[]): void {
    const grown = new Set<DpFunction>();
    for (const id of delta.revokeTokens) this.tokens.delete(id);
    for (const t of delta.upsertTokens) this.tokens.set(t.id, t);
    this.applyPeers(delta.removePeers ?? [], delta.upsertPeers ?? []);
    for (const id of delta.removeEndpoints) this.removeEndpoint(id, effects);
    for (const id of delta.drainEndpoints) this.drainEndpoint(id, effects);
    for (const ref of delta.deleteFunctions) {
      const fn = this.functions.get(ref.name);
      if (fn && fn.uid === ref.uid) this.deleteFunction(fn, nowMs, effects);
    }
    for (const spec of delta.upsertFunctions) grown.add(this.upsertFunction(spec, nowMs, effects));
    for (const e of delta.addEndpoints) {
      const ep = this.addEndpoint(e, nowMs);
      if (ep) grown.add(ep.owner);
    }
    for (const f of delta.failures) {
      const fn = this.functions.get(f.function);
      if (!fn || fn.uid !== f.functionUid) continue;
      this.hooks.failQueued(fn, failureStatus[f.code], f.code, f.reason, nowMs, effects);
    }
    for (const fn of grown) if (!fn.deleted && fn.queued > 0) this.hooks.dispatchQueued(fn, nowMs, effects);
  }

  private applyPeers(removed: readonly string[], upserted: readonly { dataPlaneId: string; proxyAddress: string }[]): void {
    for (const id of removed) this.peers.delete(id);
    for (const p of upserted) this.peers.set(p.dataPlaneId, p.proxyAddress);
    this.peersVersion += 1;
  }

  private applySnapshot(snap: RoutingSnapshotMsg, nowMs: number, effects: DpEffect[]): void {
    this.synced = true;
    this.tokens.clear();
    for (const t of snap.tokens) this.tokens.set(t.id, t);
    this.peers.clear();
    this.applyPeers([], snap.peers ?? []);
    const names = new Set(snap.functions.map((f) => f.name));
    for (const fn of [...this.functions.values()]) if (!names.has(fn.name)) this.deleteFunction(fn, nowMs, effects);
    for (const spec of snap.functions) this.upsertFunction(spec, nowMs, effects);
    const ids = new Set(snap.endpoints.map((e) => e.sandboxId));
    for (const ep of [...this.endpoints.values()]) if (!ids.has(ep.id)) this.removeEndpoint(ep.id, effects);
    for (const e of snap.endpoints) this.addEndpoint(e, nowMs);
    // Drains the CP still waits for (this DP reconnected): acknowledged when idle, or at once.
    for (const id of snap.drainEndpoints) this.drainEndpoint(id, effects);
    this.version = snap.version;
    for (const fn of this.functions.values()) if (fn.queued > 0) this.hooks.dispatchQueued(fn, nowMs, effects);
    this.log.info('routing.snapshot_applied', { version: snap.version, functions: snap.functions.length, endpoints: snap.endpoints.length });
  }

  private upsertFunction(spec: FunctionSpecMsg, nowMs: number, effects: DpEffect[]): DpFunction {
    const known = this.functions.get(spec.name);
    if (known && known.uid === spec.uid) {
      const slotsChanged = known.spec.concurrency !== spec.concurrency;
      known.spec = spec;
      if (slotsChanged) this.reindex(known);
      return known;
    }
    if (known) this.deleteFunction(known, nowMs, effects); // re-created under the same name
    const fn: DpFunction = {
      name: spec.name, uid: spec.uid, spec, endpoints: [], queue: new LinkedList(), queued: 0, inflight: 0,
      lb: createLbIndex(this.policy, spec.concurrency), deleted: false,
      level: 0, levelSinceMs: nowMs, integral: 0, reportedSinceMs: nowMs, urgentAtMs: -Infinity,
    };
    this.functions.set(spec.name, fn);
    return fn;
  }

  /** New slot counts: the load-balancing index is rebuilt (a rare update, not a request). */
  private reindex(fn: DpFunction): void {
    for (const ep of fn.endpoints) fn.lb.remove(ep); // an endpoint is in one index at a time
    fn.lb = createLbIndex(this.policy, fn.spec.concurrency);
    for (const ep of fn.endpoints) {
      ep.slots = fn.spec.concurrency;
      fn.lb.add(ep);
    }
  }

  private deleteFunction(fn: DpFunction, nowMs: number, effects: DpEffect[]): void {
    this.hooks.failQueued(fn, 404, 'function_not_found', `function ${fn.name} was deleted`, nowMs, effects);
    for (let ep = fn.endpoints.at(-1); ep; ep = fn.endpoints.at(-1)) this.drainEndpoint(ep.id, effects);
    if (this.functions.get(fn.name) === fn) this.functions.delete(fn.name);
    fn.deleted = true;
    this.hooks.forget(fn);
  }

  private addEndpoint(e: EndpointMsg, nowMs: number): DpEndpoint | null {
    if (this.endpoints.has(e.sandboxId)) return null;
    const fn = this.functions.get(e.function);
    if (!fn || fn.uid !== e.functionUid) return null; // stale: for a function that is gone
    const waking = this.draining.get(e.sandboxId) ?? this.detached.get(e.sandboxId);
    if (waking && waking.owner !== fn) return null;
    this.draining.delete(e.sandboxId);
    this.detached.delete(e.sandboxId);
    // A draining endpoint the CP routes again (e.g. a new CP adopted it) keeps its requests.
    const ep: DpEndpoint = waking ?? {
      id: e.sandboxId, fn: fn.name, owner: fn, address: e.address, workerId: e.workerId, inflight: 0,
      slots: fn.spec.concurrency, state: 'routable', addedAtMs: nowMs, index: -1, lbNode: null,
    };
    ep.state = 'routable';
    ep.index = fn.endpoints.length;
    // The first one in an array of its size: a push into the empty one grows it to 17 slots, and
    // most functions have one sandbox (136 bytes of heap per function in the data plane).
    if (fn.endpoints.length === 0) fn.endpoints = [ep];
    else fn.endpoints.push(ep);
    fn.lb.add(ep);
    this.endpoints.set(ep.id, ep);
    return ep;
  }

  /** Gone now (crash, worker lost): no drain acknowledgement is owed. */
  private removeEndpoint(id: string, effects: DpEffect[]): void {
    const ep = this.endpoints.get(id) ?? this.draining.get(id);
    if (!ep) return;
    if (ep.state === 'routable') this.unroute(ep);
    this.draining.delete(id);
    ep.state = 'removed';
    if (ep.inflight === 0) effects.push({ kind: 'close_pool', endpoint: ep });
    else this.detached.set(id, ep);
  }

  private drainEndpoint(id: string, effects: DpEffect[]): void {
    const busy = this.detached.get(id);
    if (busy) {
      // Removed while busy, now drained: acknowledged when its last request ends.
      this.detached.delete(id);
      busy.state = 'draining';
      this.draining.set(id, busy);
      return;
    }
    const ep = this.endpoints.get(id);
    if (!ep) {
      // Never routed here (or already acknowledged): idle by definition.
      if (!this.draining.has(id)) effects.push({ kind: 'drained', sandboxId: id });
      return;
    }
    this.unroute(ep);
    ep.state = 'draining';
    this.draining.set(id, ep);
    if (ep.inflight === 0) this.retire(ep, effects);
  }

  /** O(1): swap-remove from the function's endpoint array, out of the balancer's index. */
  private unroute(ep: DpEndpoint): void {
    const list = ep.owner.endpoints;
    const last = list.pop()!;
    if (last !== ep) {
      list[ep.index] = last;
      last.index = ep.index;
    }
    ep.index = -1;
    ep.owner.lb.remove(ep);
    this.endpoints.delete(ep.id);
  }
}

/**
 * @module control-plane/core/control-plane
 * The control-plane core: a synchronous state machine. `handle(event, nowMs)` and
 * `tick(nowMs)` return effects (commands to workers, routing updates to data planes, records
 * to store, API answers). It never awaits, never reads a clock and never touches a socket, so
 * the simulator runs it unchanged. The work is split by concern:
 *
 *   registry.ts   create/update/delete, serialized per name, through the store
 *   scaler.ts     demand, autoscaler, placement, scale-down, unschedulable
 *   sandboxes.ts  sandbox lifecycle: create, ready, fail, drain, delete, adopt
 *   health.ts     workers and data planes: hello, heartbeat, loss, forgetting
 *   routing.ts    the versioned routing table pushed to data planes
 *   deadlines.ts  the min-heap every timeout goes through (no scans per tick)
 *
 * Invariants (checked by `checkInvariants`):
 *  - a worker's `allocated` equals the sum of the resources of the sandboxes placed on it;
 *  - placement's node table says what the workers say (capacity, allocation, schedulable, runtimes);
 *  - a function's creating/ready/draining counters equal the states of its sandboxes;
 *  - the routing table holds exactly the ready sandboxes;
 *  - a namespace's sandbox usage equals the sum over its live sandboxes;
 *  - the deadline heap holds a creation or drain deadline for exactly the sandboxes waiting for
 *    one (creating, or draining on a DP that has not reported).
 */
import type { FunctionRecord, FunctionStatus } from '../../api/types.js';
import { namespaceOf } from '../../api/tenancy.js';
import type { NamespaceUsage } from './quotas.js';
import { assert } from '../../shared/assert.js';
import type { Logger } from '../../shared/logger.js';
import type { Rng } from '../../shared/rng.js';
import { fnStatus, type FnState } from './functions.js';
import * as health from './health.js';
import { applyDelete, applyUpsert, Registry } from './registry.js';
import type { RoutingTable } from './routing.js';
import * as sandboxes from './sandboxes.js';
import { logScaleSummary, maybeFailUnschedulable, onDemand, reconcileDirty, saveIdleHistories, tickFunction } from './scaler.js';
import { addResources, CoreState, type ControlPlaneCoreConfig, type PlacementRefusals, type ScaleDecisionCounts } from './state.js';
import type { CpEffect, CpEvent, DataPlaneRec, SandboxRec, WorkerRec } from './types.js';

export type { ControlPlaneCoreConfig } from './state.js';
export { requiredCapability } from './scaler.js';

export class ControlPlaneCore {
  private readonly s: CoreState;
  private readonly registry: Registry;
  private termNow = 0;
  /** Visits taken from the schedule and not made yet (from `pendingVisitsAt` on); see `tick`. */
  private readonly pendingVisits: FnState[] = [];
  private pendingVisitsAt = 0;

  constructor(config: ControlPlaneCoreConfig, rng: Rng, log: Logger) {
    this.s = new CoreState(config, rng, log);
    this.registry = new Registry(this.s);
  }

  get functions(): ReadonlyMap<string, FnState> { return this.s.functions; }
  get workers(): ReadonlyMap<string, WorkerRec> { return this.s.workers; }
  get dataPlanes(): ReadonlyMap<string, DataPlaneRec> { return this.s.dataPlanes; }
  get sandboxes(): ReadonlyMap<string, SandboxRec> { return this.s.sandboxes; }
  get routing(): RoutingTable { return this.s.routing; }
  /** Functions due for an autoscaler visit that a `tick` with a `visitsMax` left for the next. */
  get visitsPending(): number { return this.pendingVisits.length - this.pendingVisitsAt; }
  /** The autoscaler's scale decisions since this core started. */
  get scaleDecisions(): Readonly<ScaleDecisionCounts> { return this.s.scaleDecisions; }
  /** Placements that found no worker able to take the sandbox, since this core started. */
  get placementRefusals(): Readonly<PlacementRefusals> { return this.s.placementRefusals; }

  /**
   * The leader term this core acts under (0 until set: no election, old tests). The shell writes
   * it on every batch to workers and DPs, which refuse a batch of a term below one they have seen.
   */
  get term(): number {
    return this.termNow;
  }

  /** Set on winning an election (or on start in the single-CP layout); terms only grow. */
  setTerm(term: number): void {
    if (term < this.termNow) {
      this.s.log.warn('control_plane.term_regressed', { term, current: this.termNow });
      return;
    }
    this.termNow = term;
  }

  handle(event: CpEvent, nowMs: number): CpEffect[] {
    this.dispatch(event, nowMs);
    reconcileDirty(this.s, nowMs);
    return this.s.flush();
  }

  /**
   * Several events, one flush: the store completions of one group commit become one routing
   * delta (one message and one ack per DP) instead of one per registration.
   */
  handleAll(events: readonly CpEvent[], nowMs: number): CpEffect[] {
    for (const event of events) this.dispatch(event, nowMs);
    reconcileDirty(this.s, nowMs);
    return this.s.flush();
  }

  /**
   * Timeouts, then the autoscaler's visits to the functions due by `nowMs`: at most `visitsMax`
   * of them; the rest wait in `visitsPending` for the next call (the shell calls again at once,
   * after the I/O that waits, so that a tick of thousands of visits is not one long stall).
   */
  tick(nowMs: number, visitsMax = Number.POSITIVE_INFINITY): CpEffect[] {
    this.runDeadlines(nowMs);
    const due = this.s.takeDueInto(nowMs, this.pendingVisits);
    const n = Math.min(visitsMax, due.length - this.pendingVisitsAt);
    for (let i = 0; i < n; i += 1) tickFunction(this.s, due[this.pendingVisitsAt + i]!, nowMs);
    this.pendingVisitsAt += n;
    if (this.pendingVisitsAt === due.length) {
      due.length = 0;
      this.pendingVisitsAt = 0;
    }
    reconcileDirty(this.s, nowMs);
    logScaleSummary(this.s, nowMs);
    saveIdleHistories(this.s, nowMs);
    return this.s.flush();
  }

  /** Peers the store remembers (start-up): known, disconnected, forgotten if they stay away. */
  loadPeers(
    workers: { id: string; address: string }[],
    dataPlanes: { id: string; proxyAddress: string; internalAddress: string }[],
    nowMs: number,
  ): void {
    health.onPeersLoaded(this.s, workers, dataPlanes, nowMs);
  }

  /**
   * This CP loads its records before its peer port opens (a lone CP leads before it listens):
   * until `peersReachable`, no restored worker's or DP's grace can run out, whatever the ticks.
   */
  peersNotYetReachable(): void {
    health.onPeersNotYetReachable(this.s);
  }

  /** The peer port is open: restored workers and DPs get their grace from now. */
  peersReachable(nowMs: number): void {
    health.onPeersReachable(this.s, nowMs);
  }

  /** Whether every connected (or restored and expected back) DP has applied routing `version`. */
  routingAppliedEverywhere(version: number): boolean {
    for (const dp of this.s.dataPlanes.values()) {
      if ((dp.connected || dp.expectedBack) && dp.ackedVersion < version) return false;
    }
    return true;
  }

  status(name: string): FunctionStatus | null {
    const fn = this.s.functions.get(name);
    return fn ? fnStatus(fn) : null;
  }

  record(name: string): FunctionRecord | null {
    return this.s.functions.get(name)?.record ?? null;
  }

  records(): FunctionRecord[] {
    return [...this.s.functions.values()].map((f) => f.record);
  }

  /** Functions and live sandboxes (creating + ready + draining) of a namespace, kept incrementally. */
  namespaceUsage(namespace: string): NamespaceUsage {
    return this.s.quotas.usageOf(namespace);
  }

  pendingRegistryOps(): number {
    return this.registry.pendingCount();
  }

  private dispatch(event: CpEvent, nowMs: number): void {
    const s = this.s;
    switch (event.kind) {
      case 'api_create': case 'api_update': case 'api_delete': return this.registry.submit(event, nowMs);
      case 'persisted': return this.registry.onPersisted(event.opId, nowMs);
      case 'persist_failed': return this.registry.onPersistFailed(event.opId, event.error, nowMs);
      case 'function_upserted': return applyUpsert(s, event.record, nowMs, event.reconstructed === true, event.idleHistory);
      case 'function_deleted': return applyDelete(s, event.name, nowMs);
      case 'worker_connected': return health.onWorkerHello(s, event.hello, nowMs);
      case 'worker_disconnected': return health.onWorkerGone(s, event.workerId, 'stream closed', nowMs);
      case 'worker_heartbeat': return health.onHeartbeat(s, event.workerId, event.heartbeat, nowMs);
      case 'sandbox_ready':
        health.onWorkerAlive(s, event.workerId, nowMs);
        return sandboxes.onSandboxReady(s, event.workerId, event.sandbox, nowMs);
      case 'sandbox_failed':
        health.onWorkerAlive(s, event.workerId, nowMs);
        return sandboxes.onSandboxFailed(s, event.sandboxId, event.failure, event.reason, nowMs);
      case 'sandbox_deleted':
        health.onWorkerAlive(s, event.workerId, nowMs);
        return sandboxes.onSandboxDeleted(s, event.sandboxId);
      case 'dp_connected': return health.onDataPlaneHello(s, event.hello, (id) => this.sendSnapshot(id));
      case 'dp_disconnected': return health.onDataPlaneGone(s, event.dataPlaneId, nowMs);
      case 'dp_demand': return onDemand(s, event.dataPlaneId, event.report, nowMs);
      case 'dp_drained': return sandboxes.onDrained(s, event.dataPlaneId, event.sandboxIds);
      case 'dp_resync': return this.sendSnapshot(event.dataPlaneId);
      case 'tokens_set': return s.routing.setTokens(event.tokens);
      case 'quotas_set': {
        s.quotas.set(event.records, event.defaults);
        // A raised quota may unblock functions; a lowered one only blocks new sandboxes.
        s.capacityEpoch += 1;
        return s.markAllActiveDirty();
      }
      case 'dp_ack': {
        const dp = s.dataPlanes.get(event.dataPlaneId);
        if (dp) dp.ackedVersion = Math.max(dp.ackedVersion, event.version);
        return;
      }
    }
  }

  private runDeadlines(nowMs: number): void {
    const s = this.s;
    for (let d = s.deadlines.popDue(nowMs); d; d = s.deadlines.popDue(nowMs)) {
      switch (d.kind) {
        case 'creation': sandboxes.onCreationDeadline(s, d.key, nowMs); break;
        case 'drain': sandboxes.onDrainDeadline(s, d.key, nowMs); break;
        case 'heartbeat': health.onHeartbeatDeadline(s, d.key, nowMs); break;
        case 'forget_worker': health.onForgetWorkerDeadline(s, d.key, nowMs); break;
        case 'forget_dp': health.onForgetDataPlaneDeadline(s, d.key, nowMs); break;
        case 'dp_expected': health.onDataPlaneExpectedDeadline(s, d.key, nowMs); break;
        case 'worker_expected': health.onWorkerExpectedDeadline(s, d.key, nowMs); break;
        case 'unschedulable': {
          const fn = s.functions.get(d.key);
          if (fn) maybeFailUnschedulable(s, fn, nowMs);
          break;
        }
      }
    }
  }

  /** A (re)connecting or resyncing DP: pending changes go out first, then the full table. */
  private sendSnapshot(dataPlaneId: string): void {
    const delta = this.s.routing.seal();
    if (delta) this.s.effects.push({ kind: 'dp_broadcast', update: { case: 'delta', value: delta } });
    const draining: string[] = [];
    for (const sb of this.s.sandboxes.values()) if (sb.state === 'draining' && !sb.deleteSent) draining.push(sb.id);
    this.s.effects.push({ kind: 'dp_send', dataPlaneId, update: { case: 'snapshot', value: this.s.routing.snapshot(draining) } });
  }

  /** Invariants of the module header; the simulator calls this after every step. */
  checkInvariants(): void {
    const s = this.s;
    assert(s.workerList.length === s.workers.size, 'worker list out of step with the workers');
    s.workerList.forEach((w, i) => assert(s.nodeTable.matches(i, w), `placement table row of worker ${w.id} drifted`));
    for (const w of s.workers.values()) {
      const sum = { cpuMillis: 0, memoryMiB: 0 };
      for (const id of w.sandboxes) addResources(sum, s.sandboxes.get(id)!.resources, 1);
      assert(sum.cpuMillis === w.allocated.cpuMillis, `worker ${w.id} cpu allocation drifted`);
      assert(sum.memoryMiB === w.allocated.memoryMiB, `worker ${w.id} memory allocation drifted`);
    }
    let readyTotal = 0;
    const listed = new Map<FnState, number>();
    for (const sb of s.sandboxes.values()) {
      const fn = s.fnOf(sb);
      if (fn) listed.set(fn, (listed.get(fn) ?? 0) + 1);
    }
    for (const fn of s.functions.values()) {
      const n = { creating: 0, ready: 0, draining: 0 };
      for (const id of fn.sandboxIds) n[s.sandboxes.get(id)!.state] += 1;
      assert(n.creating === fn.creating && n.ready === fn.ready && n.draining === fn.draining, `counters of ${fn.record.spec.name}`);
      const name = fn.record.spec.name;
      const ids = [...fn.sandboxIds];
      assert(ids.length === (listed.get(fn) ?? 0) && new Set(ids).size === ids.length, `sandbox list of ${name}`);
      assert(new Set(fn.demand.map((d) => d.dataPlaneId)).size === fn.demand.length, `demand of ${name} listed twice for a DP`);
      readyTotal += n.ready;
    }
    assert(readyTotal === s.routing.endpointCount(), 'routing table differs from ready sandboxes');
    assert(s.routing.indexIsExact(), 'routing table: endpoints by function drifted');
    this.checkUsage();
    this.checkWaits();
  }

  private checkWaits(): void {
    let waits = 0;
    for (const sb of this.s.sandboxes.values()) {
      const waiting = sb.state === 'creating' || (sb.state === 'draining' && sb.drainPending !== null && !sb.deleteSent);
      const held = sb.deadline !== null && sb.deadline.at >= 0;
      assert(waiting === held, `sandbox ${sb.id} (${sb.state}) ${held ? 'holds a deadline it no longer waits for' : 'waits without a deadline'}`);
      if (held) waits += 1;
    }
    const inHeap = this.s.deadlines.countOf('creation') + this.s.deadlines.countOf('drain');
    assert(inHeap === waits, `${inHeap - waits} creation or drain deadlines of sandboxes that no longer wait`);
  }

  private checkUsage(): void {
    const sums = new Map<string, { sandboxes: number; cpuMillis: number; memoryMiB: number }>();
    for (const sb of this.s.sandboxes.values()) {
      const ns = namespaceOf(sb.fn);
      const u = sums.get(ns) ?? { sandboxes: 0, cpuMillis: 0, memoryMiB: 0 };
      u.sandboxes += 1;
      addResources(u, sb.resources, 1);
      sums.set(ns, u);
    }
    for (const [ns, u] of sums) {
      const kept = this.s.quotas.usageOf(ns);
      assert(kept.sandboxes === u.sandboxes && kept.cpuMillis === u.cpuMillis && kept.memoryMiB === u.memoryMiB, `usage of namespace ${ns} drifted`);
    }
  }
}

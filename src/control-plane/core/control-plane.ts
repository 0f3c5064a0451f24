/**
 * @module control-plane/core/control-plane
 * The control-plane core: function registry in memory, autoscaler driver, placer, health monitor
 * and routing-table owner. A synchronous state machine: `handle(event, nowMs)` and
 * `tick(nowMs)` return effects (commands to workers, routing updates to data planes, records to
 * persist). It never awaits, never reads a clock and never touches a socket, so the simulator
 * runs it unchanged.
 *
 * Invariants (checked by `checkInvariants`):
 *  - a worker's `allocated` equals the sum of the resources of the sandboxes placed on it;
 *  - a function's creating/ready/draining counters equal the states of its sandboxes;
 *  - the routing table holds exactly the ready sandboxes.
 */
import { create } from '@bufbuild/protobuf';
import type { FunctionStatus, Resources } from '../../api/types.js';
import {
  FailureKind,
  RoutingUpdateSchema,
  WorkerCommandSchema,
  type SandboxInfo,
  type WorkerHello,
} from '../../gen/dirigent/v1/cluster_pb.js';
import { kpaDecide, kpaRecord } from '../../policy/autoscaler/kpa.js';
import { chooseVictims } from '../../policy/eviction.js';
import { placeWith } from '../../policy/placement/placement.js';
import { assert } from '../../shared/assert.js';
import type { Logger } from '../../shared/logger.js';
import type { Rng } from '../../shared/rng.js';
import {
  demandTotals, fnStatus, newFnState, recordPeriodMs, sandboxInflight, sandboxSpecChanged, toWireSpec,
  type FnState,
} from './functions.js';
import { RoutingTable } from './routing.js';
import type { CpEffect, CpEvent, DataPlaneRec, SandboxRec, WorkerRec } from './types.js';

export interface ControlPlaneCoreConfig {
  placement: 'kubernetes' | 'random' | 'round-robin';
  heartbeatTimeoutMs: number;
  creationTimeoutMs: number;
  drainTimeoutMs: number;
  creatingPerFunctionMax: number;
  retryBackoffMs: number;
  /** Consecutive failed creations after which queued requests are failed fast. */
  failFastAfter: number;
}

/**
 * Runtime capability a function needs from a worker: 'process' for a command, 'image' for an
 * image. Workers advertise the capabilities of their runtime (the emulated one has both).
 */
export function requiredCapability(spec: { command: string[] }): string {
  return spec.command.length > 0 ? 'process' : 'image';
}

const retryBackoffMsMax = 10_000;

export class ControlPlaneCore {
  readonly functions = new Map<string, FnState>();
  readonly workers = new Map<string, WorkerRec>();
  readonly dataPlanes = new Map<string, DataPlaneRec>();
  readonly sandboxes = new Map<string, SandboxRec>();
  readonly routing = new RoutingTable();
  /** Functions that need a reconcile pass, and functions the ticker must look at. */
  private readonly dirty = new Set<string>();
  private readonly active = new Set<string>();
  private workerList: WorkerRec[] = [];
  private placementCursor = 0;
  /** Bumped whenever capacity may have appeared; blocked functions retry only then. */
  private capacityEpoch = 0;
  private sandboxSeq = 0;
  private readonly idPrefix: string;
  private effects: CpEffect[] = [];

  constructor(
    private readonly config: ControlPlaneCoreConfig,
    private readonly rng: Rng,
    private readonly log: Logger,
  ) {
    this.idPrefix = rng.int(0x100000000).toString(36).padStart(7, '0');
  }

  handle(event: CpEvent, nowMs: number): CpEffect[] {
    this.dispatch(event, nowMs);
    this.reconcileDirty(nowMs);
    return this.flush();
  }

  tick(nowMs: number): CpEffect[] {
    this.checkHeartbeats(nowMs);
    this.checkTimeouts(nowMs);
    for (const name of this.active) this.tickFunction(name, nowMs);
    this.reconcileDirty(nowMs);
    return this.flush();
  }

  /** Whether every connected data plane has applied routing version `version`. */
  routingAppliedEverywhere(version: number): boolean {
    for (const dp of this.dataPlanes.values()) if (dp.connected && dp.ackedVersion < version) return false;
    return true;
  }

  status(name: string): FunctionStatus | null {
    const fn = this.functions.get(name);
    return fn ? fnStatus(fn) : null;
  }

  // ------------------------------------------------------------------ events

  private dispatch(event: CpEvent, nowMs: number): void {
    switch (event.kind) {
      case 'function_upserted':
        return this.onFunctionUpserted(event.record, nowMs, event.reconstructed === true);
      case 'function_deleted': return this.onFunctionDeleted(event.name);
      case 'worker_connected': return this.onWorkerHello(event.hello, nowMs);
      case 'worker_disconnected': return this.onWorkerGone(event.workerId, 'stream closed', nowMs);
      case 'worker_heartbeat': return this.onHeartbeat(event.workerId, event.heartbeat, nowMs);
      case 'sandbox_ready': return this.onSandboxReady(event.workerId, event.sandbox, nowMs);
      case 'sandbox_failed':
        return this.onSandboxFailed(event.sandboxId, event.failure, event.reason, nowMs);
      case 'sandbox_deleted': return this.onSandboxDeleted(event.sandboxId);
      case 'dp_connected': return this.onDataPlaneHello(event.hello);
      case 'dp_disconnected': return this.onDataPlaneGone(event.dataPlaneId);
      case 'dp_demand': return this.onDemand(event.dataPlaneId, event.report, nowMs);
      case 'dp_drained': return this.onDrained(event.dataPlaneId, event.sandboxIds);
      case 'dp_resync': return this.sendSnapshot(event.dataPlaneId);
      case 'dp_ack': {
        const dp = this.dataPlanes.get(event.dataPlaneId);
        if (dp) dp.ackedVersion = Math.max(dp.ackedVersion, event.version);
        return;
      }
    }
  }

  private onFunctionUpserted(record: FnState['record'], nowMs: number, reconstructed: boolean): void {
    const existing = this.functions.get(record.spec.name);
    if (!existing) {
      const fn = newFnState(record, nowMs, reconstructed);
      this.functions.set(record.spec.name, fn);
      this.routing.upsertFunction(fn.wire);
      this.markActive(record.spec.name);
      this.log.info('function.registered', { fn: record.spec.name, desired: fn.desired });
      return;
    }
    const wire = toWireSpec(record);
    const restart = sandboxSpecChanged(existing.wire, wire);
    existing.record = record;
    existing.wire = wire;
    existing.failures = 0;
    existing.retryAtMs = 0;
    existing.blockedEpoch = -1;
    existing.desired = clamp(existing.desired, record.spec.scaling.min, record.spec.scaling.max);
    this.routing.upsertFunction(wire);
    if (restart) {
      // Running sandboxes run the old spec: drain them all; reconcile starts new ones.
      for (const id of [...existing.sandboxIds]) {
        const sb = this.sandboxes.get(id)!;
        if (sb.state === 'ready') this.drain(sb, nowMs);
        else if (sb.state === 'creating') this.deleteSandbox(sb, 'spec changed');
      }
    }
    this.markActive(record.spec.name);
    this.log.info('function.updated', { fn: record.spec.name, restart });
  }

  private onFunctionDeleted(name: string): void {
    const fn = this.functions.get(name);
    if (!fn) return;
    for (const id of [...fn.sandboxIds]) {
      const sb = this.sandboxes.get(id)!;
      if (sb.state === 'creating') this.deleteSandbox(sb, 'function deleted');
      else if (sb.state === 'ready') this.drain(sb, 0);
    }
    this.routing.deleteFunction(name);
    this.functions.delete(name);
    this.active.delete(name);
    this.dirty.delete(name);
    this.log.info('function.deleted', { fn: name });
  }

  private onWorkerHello(hello: WorkerHello, nowMs: number): void {
    let w = this.workers.get(hello.workerId);
    if (!w) {
      w = {
        id: hello.workerId,
        address: hello.address,
        connected: true,
        schedulable: true,
        capacity: fromWire(hello.capacity),
        allocated: { cpuMillis: 0, memoryMiB: 0 },
        runtimes: [...hello.runtimes],
        lastHeartbeatMs: nowMs,
        sandboxes: new Set(),
      };
      this.workers.set(w.id, w);
      this.workerList = [...this.workers.values()];
      this.effects.push({ kind: 'persist_worker', id: w.id, address: w.address });
    } else {
      // A reconnect: whatever the CP still attributes to it was lost with the old stream.
      this.dropWorkerSandboxes(w, 'worker reconnected', false);
      w.address = hello.address;
      w.capacity = fromWire(hello.capacity);
      w.runtimes = [...hello.runtimes];
    }
    w.connected = true;
    w.schedulable = true;
    w.lastHeartbeatMs = nowMs;
    this.capacityEpoch += 1;
    for (const info of hello.sandboxes) this.adoptOrDelete(w, info, nowMs);
    this.log.info('worker.registered', { workerId: w.id, adopted: w.sandboxes.size });
    this.markAllActiveDirty();
  }

  /** A sandbox the CP did not ask for (CP failover, or a creation that outlived its CP). */
  private adoptOrDelete(w: WorkerRec, info: SandboxInfo, nowMs: number): void {
    const fn = this.functions.get(info.function);
    if (this.sandboxes.has(info.sandboxId)) return;
    const resources = fromWire(info.resources);
    // A late report (a creation that outlived a stream) may not fit any more: the CP refilled
    // the worker meanwhile. Allocation must stay within capacity, so such a sandbox goes.
    const fits =
      w.allocated.cpuMillis + resources.cpuMillis <= w.capacity.cpuMillis &&
      w.allocated.memoryMiB + resources.memoryMiB <= w.capacity.memoryMiB;
    if (!fn || info.functionGeneration !== fn.record.generation || !fits) {
      this.sendWorker(w.id, { case: 'delete', value: { sandboxId: info.sandboxId } });
      return;
    }
    const sb: SandboxRec = {
      id: info.sandboxId,
      fn: info.function,
      workerId: w.id,
      address: info.address,
      state: 'ready',
      resources,
      requestedAtMs: nowMs,
      readyAtMs: nowMs,
      drainPending: new Set(),
      drainStartedAtMs: 0,
    };
    this.attach(sb, fn, w);
    this.routing.addEndpoint(endpointOf(sb, fn.record.uid));
    this.markActive(fn.record.spec.name);
  }

  private onWorkerGone(workerId: string, reason: string, nowMs: number): void {
    const w = this.workers.get(workerId);
    if (!w || !w.connected) return;
    w.connected = false;
    w.schedulable = false;
    this.dropWorkerSandboxes(w, reason, false);
    this.log.warn('worker.lost', { workerId, reason, atMs: nowMs });
  }

  private onHeartbeat(workerId: string, hb: CpEventOf<'worker_heartbeat'>['heartbeat'], nowMs: number): void {
    const w = this.workers.get(workerId);
    if (!w) return;
    w.lastHeartbeatMs = nowMs;
    const capacity = hb.capacity ? fromWire(hb.capacity) : w.capacity;
    if (capacity.cpuMillis !== w.capacity.cpuMillis || capacity.memoryMiB !== w.capacity.memoryMiB) {
      w.capacity = capacity;
      this.capacityEpoch += 1;
    }
    if (w.connected && !w.schedulable) {
      w.schedulable = true;
      this.capacityEpoch += 1;
      this.log.info('worker.recovered', { workerId });
      this.markAllActiveDirty();
    }
  }

  private onSandboxReady(workerId: string, info: SandboxInfo, nowMs: number): void {
    const sb = this.sandboxes.get(info.sandboxId);
    const w = this.workers.get(workerId);
    if (!sb) {
      if (w && w.connected) this.adoptOrDelete(w, info, nowMs);
      return;
    }
    if (sb.state !== 'creating') return; // duplicate report
    const fn = this.functions.get(sb.fn);
    assert(fn, `creating sandbox ${sb.id} without function ${sb.fn}`);
    sb.state = 'ready';
    sb.address = info.address;
    sb.readyAtMs = nowMs;
    fn.creating -= 1;
    fn.ready += 1;
    fn.failures = 0;
    this.routing.addEndpoint(endpointOf(sb, fn.record.uid));
    this.markDirty(sb.fn);
    if (this.log.isDebugEnabled()) {
      this.log.debug('sandbox.ready', { id: sb.id, fn: sb.fn, workerId, coldMs: nowMs - sb.requestedAtMs });
    }
  }

  private onSandboxFailed(sandboxId: string, kind: FailureKind, reason: string, nowMs: number): void {
    const sb = this.sandboxes.get(sandboxId);
    if (!sb) return;
    const fn = this.functions.get(sb.fn);
    const wasCreating = sb.state === 'creating';
    this.detach(sb);
    this.capacityEpoch += 1;
    this.log.warn('sandbox.failed', { id: sandboxId, fn: sb.fn, workerId: sb.workerId, kind, reason });
    if (!fn) return;
    if (wasCreating || kind === FailureKind.CREATE) {
      fn.failures += 1;
      const backoffMs = Math.min(retryBackoffMsMax, this.config.retryBackoffMs * 2 ** (fn.failures - 1));
      fn.retryAtMs = nowMs + backoffMs;
      if (fn.failures >= this.config.failFastAfter) {
        this.routing.failFunction(sb.fn, `sandbox failed to start: ${reason}`);
      }
    }
    this.markDirty(sb.fn);
  }

  private onSandboxDeleted(sandboxId: string): void {
    const sb = this.sandboxes.get(sandboxId);
    if (!sb) return;
    this.detach(sb);
    this.capacityEpoch += 1;
    this.markDirty(sb.fn);
  }

  private onDataPlaneHello(hello: CpEventOf<'dp_connected'>['hello']): void {
    const known = this.dataPlanes.get(hello.dataPlaneId);
    this.dataPlanes.set(hello.dataPlaneId, {
      id: hello.dataPlaneId,
      proxyAddress: hello.proxyAddress,
      internalAddress: hello.internalAddress,
      connected: true,
      ackedVersion: 0,
    });
    if (!known || known.proxyAddress !== hello.proxyAddress) {
      this.effects.push({
        kind: 'persist_data_plane',
        id: hello.dataPlaneId,
        proxyAddress: hello.proxyAddress,
        internalAddress: hello.internalAddress,
      });
    }
    this.sendSnapshot(hello.dataPlaneId);
    this.log.info('data_plane.registered', { dataPlaneId: hello.dataPlaneId });
  }

  private onDataPlaneGone(dataPlaneId: string): void {
    const dp = this.dataPlanes.get(dataPlaneId);
    if (!dp) return;
    dp.connected = false;
    for (const fn of this.functions.values()) fn.demandByDp.delete(dataPlaneId);
    for (const sb of this.sandboxes.values()) {
      if (sb.state === 'draining' && sb.drainPending.delete(dataPlaneId)) this.maybeFinishDrain(sb);
    }
    this.log.warn('data_plane.lost', { dataPlaneId });
  }

  private onDemand(dataPlaneId: string, report: CpEventOf<'dp_demand'>['report'], nowMs: number): void {
    for (const d of report.functions) {
      const fn = this.functions.get(d.function);
      if (!fn) continue;
      const instantaneous = d.inflight + d.queued;
      const value = report.firstDemand ? Math.max(instantaneous, d.concurrencyAvg) : d.concurrencyAvg;
      fn.demandByDp.set(dataPlaneId, { value, inflight: d.inflight, queued: d.queued, sandboxInflight: d.sandboxInflight });
      this.markActive(d.function);
      // Scale from zero at once: do not wait for the next autoscaler tick. While nothing is
      // ready, a growing burst is decided on as it is reported (cold path only).
      if (instantaneous > 0 && fn.ready === 0 && (report.firstDemand || fn.creating === 0)) {
        this.decide(fn, nowMs);
      }
    }
  }

  private onDrained(dataPlaneId: string, sandboxIds: string[]): void {
    for (const id of sandboxIds) {
      const sb = this.sandboxes.get(id);
      if (sb && sb.state === 'draining' && sb.drainPending.delete(dataPlaneId)) this.maybeFinishDrain(sb);
    }
  }

  // ------------------------------------------------------------------ scaling

  private tickFunction(name: string, nowMs: number): void {
    const fn = this.functions.get(name);
    if (!fn) {
      this.active.delete(name);
      return;
    }
    if (nowMs >= fn.nextRecordAtMs) {
      fn.kpa = kpaRecord(fn.kpa, fn.record.spec.scaling, demandTotals(fn).value, nowMs);
      fn.nextRecordAtMs = nowMs + recordPeriodMs;
    }
    if (nowMs >= fn.nextDecisionAtMs) this.decide(fn, nowMs);
    if (fn.retryAtMs > 0 && nowMs >= fn.retryAtMs) {
      fn.retryAtMs = 0;
      this.markDirty(name);
    }
    const idle = fn.desired === 0 && fn.sandboxIds.size === 0 && demandTotals(fn).value === 0;
    if (idle && fn.record.spec.scaling.min === 0) {
      // Nothing to watch until demand returns. The KPA state is kept: its windows treat the
      // silent gap as zeros, and a fresh state would re-apply the initial-scale hold.
      this.active.delete(name);
    }
  }

  private decide(fn: FnState, nowMs: number): void {
    const spec = fn.record.spec;
    fn.kpa = kpaRecord(fn.kpa, spec.scaling, demandTotals(fn).value, nowMs);
    const { decision, state } = kpaDecide(fn.kpa, {
      spec: spec.scaling,
      concurrency: spec.concurrency,
      readyCount: fn.ready,
      nowMs,
    });
    fn.kpa = state;
    fn.nextDecisionAtMs = nowMs + spec.scaling.tickS * 1000;
    if (decision.desired !== fn.desired) {
      this.log.info('function.scaled', {
        fn: spec.name,
        from: fn.desired,
        to: decision.desired,
        mode: decision.mode,
        reason: decision.reason,
      });
    }
    fn.desired = decision.desired;
    fn.lastDecision = decision;
    this.markDirty(spec.name);
  }

  private reconcileDirty(nowMs: number): void {
    for (const name of this.dirty) {
      const fn = this.functions.get(name);
      if (fn) this.reconcile(fn, nowMs);
    }
    this.dirty.clear();
  }

  private reconcile(fn: FnState, nowMs: number): void {
    const activeCount = fn.creating + fn.ready;
    if (fn.desired > activeCount) this.scaleUp(fn, fn.desired - activeCount, nowMs);
    else if (fn.desired < activeCount && fn.ready > 0 && nowMs >= fn.noScaleDownUntilMs) {
      this.scaleDown(fn, activeCount - fn.desired, nowMs);
    }
  }

  private scaleUp(fn: FnState, missing: number, nowMs: number): void {
    if (nowMs < fn.retryAtMs || fn.blockedEpoch === this.capacityEpoch) return;
    fn.blockedEpoch = -1;
    const n = Math.min(missing, this.config.creatingPerFunctionMax - fn.creating);
    const spec = fn.record.spec;
    for (let i = 0; i < n; i += 1) {
      const { result, cursor } = placeWith(
        this.config.placement,
        this.workerList,
        { resources: spec.resources, runtime: requiredCapability(spec) },
        { rng: this.rng, cursor: this.placementCursor },
      );
      this.placementCursor = cursor;
      if (result.kind === 'unschedulable') {
        fn.blockedEpoch = this.capacityEpoch;
        const why = result.reasons.map((r) => `${r.nodeId}: ${r.reason}`).join('; ');
        if (why !== fn.lastUnschedulable) {
          this.log.warn('function.unschedulable', { fn: spec.name, missing: n - i, reasons: why });
          fn.lastUnschedulable = why;
        }
        return;
      }
      fn.lastUnschedulable = '';
      this.createSandbox(fn, this.workers.get(result.nodeId)!, nowMs);
    }
  }

  private createSandbox(fn: FnState, w: WorkerRec, nowMs: number): void {
    this.sandboxSeq += 1;
    const sb: SandboxRec = {
      id: `sb-${this.idPrefix}-${this.sandboxSeq.toString(36)}`,
      fn: fn.record.spec.name,
      workerId: w.id,
      address: '',
      state: 'creating',
      resources: { ...fn.record.spec.resources },
      requestedAtMs: nowMs,
      readyAtMs: 0,
      drainPending: new Set(),
      drainStartedAtMs: 0,
    };
    this.attach(sb, fn, w);
    this.sendWorker(w.id, { case: 'create', value: { sandboxId: sb.id, function: fn.wire } });
  }

  private scaleDown(fn: FnState, excess: number, nowMs: number): void {
    const candidates = [];
    for (const id of fn.sandboxIds) {
      const sb = this.sandboxes.get(id)!;
      if (sb.state === 'ready') {
        candidates.push({ id, createdAtMs: sb.readyAtMs, inflight: sandboxInflight(fn, id), state: sb.state });
      }
    }
    for (const id of chooseVictims(candidates, Math.min(excess, candidates.length))) {
      this.drain(this.sandboxes.get(id)!, nowMs);
    }
  }

  // ------------------------------------------------------------------ sandbox lifecycle

  private attach(sb: SandboxRec, fn: FnState, w: WorkerRec): void {
    this.sandboxes.set(sb.id, sb);
    fn.sandboxIds.add(sb.id);
    if (sb.state === 'creating') fn.creating += 1;
    else fn.ready += 1;
    w.sandboxes.add(sb.id);
    addResources(w.allocated, sb.resources, 1);
  }

  /** Forget a sandbox entirely: counters, allocation, routing. */
  private detach(sb: SandboxRec): void {
    this.sandboxes.delete(sb.id);
    const fn = this.functions.get(sb.fn);
    if (fn) {
      fn.sandboxIds.delete(sb.id);
      if (sb.state === 'creating') fn.creating -= 1;
      else if (sb.state === 'ready') fn.ready -= 1;
      else fn.draining -= 1;
    }
    if (sb.state === 'ready') this.routing.removeEndpoint(sb.id);
    const w = this.workers.get(sb.workerId);
    if (w && w.sandboxes.delete(sb.id)) addResources(w.allocated, sb.resources, -1);
  }

  private drain(sb: SandboxRec, nowMs: number): void {
    assert(sb.state === 'ready', `drain of ${sb.id} in state ${sb.state}`);
    const fn = this.functions.get(sb.fn);
    if (fn) {
      fn.ready -= 1;
      fn.draining += 1;
    }
    sb.state = 'draining';
    sb.drainStartedAtMs = nowMs;
    this.routing.drainEndpoint(sb.id);
    for (const dp of this.dataPlanes.values()) if (dp.connected) sb.drainPending.add(dp.id);
    this.maybeFinishDrain(sb);
  }

  private maybeFinishDrain(sb: SandboxRec): void {
    if (sb.drainPending.size > 0) return;
    this.sendWorker(sb.workerId, { case: 'delete', value: { sandboxId: sb.id } });
  }

  /** Stop a creating sandbox (or one whose worker is gone) without draining. */
  private deleteSandbox(sb: SandboxRec, reason: string): void {
    this.detach(sb);
    this.sendWorker(sb.workerId, { case: 'delete', value: { sandboxId: sb.id } });
    this.log.info('sandbox.cancelled', { id: sb.id, fn: sb.fn, reason });
  }

  private dropWorkerSandboxes(w: WorkerRec, reason: string, tellWorker: boolean): void {
    const dropped = w.sandboxes.size;
    for (const id of [...w.sandboxes]) {
      const sb = this.sandboxes.get(id)!;
      this.detach(sb);
      if (tellWorker) this.sendWorker(w.id, { case: 'delete', value: { sandboxId: id } });
      this.markDirty(sb.fn);
    }
    if (dropped > 0) this.log.info('worker.sandboxes_dropped', { workerId: w.id, reason, dropped });
  }

  // ------------------------------------------------------------------ timers

  private checkHeartbeats(nowMs: number): void {
    for (const w of this.workerList) {
      if (!w.connected || !w.schedulable) continue;
      if (nowMs - w.lastHeartbeatMs <= this.config.heartbeatTimeoutMs) continue;
      // Silent but connected: treat as failed, replace its sandboxes, and tell it to stop them
      // in case it is alive (a partition), so nothing runs twice for long.
      w.schedulable = false;
      this.dropWorkerSandboxes(w, 'heartbeat timeout', true);
      this.log.warn('worker.lost', { workerId: w.id, reason: 'heartbeat timeout' });
    }
  }

  private checkTimeouts(nowMs: number): void {
    for (const sb of this.sandboxes.values()) {
      if (sb.state === 'creating' && nowMs - sb.requestedAtMs > this.config.creationTimeoutMs) {
        this.deleteSandbox(sb, 'creation timeout');
        this.onCreationTimeout(sb, nowMs);
      } else if (sb.state === 'draining' && sb.drainPending.size > 0) {
        if (nowMs - sb.drainStartedAtMs > this.config.drainTimeoutMs) {
          sb.drainPending.clear();
          this.maybeFinishDrain(sb);
        }
      }
    }
  }

  private onCreationTimeout(sb: SandboxRec, nowMs: number): void {
    const fn = this.functions.get(sb.fn);
    if (!fn) return;
    fn.failures += 1;
    fn.retryAtMs = nowMs + this.config.retryBackoffMs;
    this.markDirty(sb.fn);
  }

  // ------------------------------------------------------------------ helpers

  private sendSnapshot(dataPlaneId: string): void {
    const delta = this.routing.seal();
    if (delta) this.effects.push({ kind: 'dp_broadcast', update: create(RoutingUpdateSchema, { update: { case: 'delta', value: delta } }) });
    const snapshot = this.routing.snapshot();
    this.effects.push({
      kind: 'dp_send',
      dataPlaneId,
      update: create(RoutingUpdateSchema, { update: { case: 'snapshot', value: snapshot } }),
    });
  }

  private sendWorker(workerId: string, command: WorkerCommandInit): void {
    this.effects.push({ kind: 'worker_send', workerId, command: create(WorkerCommandSchema, { command }) });
  }

  private markDirty(name: string): void {
    this.dirty.add(name);
    this.active.add(name);
  }

  private markActive(name: string): void {
    this.active.add(name);
    this.dirty.add(name);
  }

  private markAllActiveDirty(): void {
    for (const name of this.active) this.dirty.add(name);
  }

  private flush(): CpEffect[] {
    const delta = this.routing.seal();
    if (delta) {
      this.effects.push({
        kind: 'dp_broadcast',
        update: create(RoutingUpdateSchema, { update: { case: 'delta', value: delta } }),
      });
    }
    const out = this.effects;
    this.effects = [];
    return out;
  }

  /** Invariants of the module header; the simulator calls this after every step. */
  checkInvariants(): void {
    for (const w of this.workers.values()) {
      const sum = { cpuMillis: 0, memoryMiB: 0 };
      for (const id of w.sandboxes) addResources(sum, this.sandboxes.get(id)!.resources, 1);
      assert(sum.cpuMillis === w.allocated.cpuMillis, `worker ${w.id} cpu allocation drifted`);
      assert(sum.memoryMiB === w.allocated.memoryMiB, `worker ${w.id} memory allocation drifted`);
    }
    let readyTotal = 0;
    for (const fn of this.functions.values()) {
      let c = 0;
      let r = 0;
      let d = 0;
      for (const id of fn.sandboxIds) {
        const s = this.sandboxes.get(id)!.state;
        if (s === 'creating') c += 1;
        else if (s === 'ready') r += 1;
        else d += 1;
      }
      assert(c === fn.creating && r === fn.ready && d === fn.draining, `counters of ${fn.record.spec.name}`);
      readyTotal += r;
    }
    assert(readyTotal === this.routing.endpointCount(), 'routing table differs from ready sandboxes');
  }
}

type CpEventOf<K extends CpEvent['kind']> = Extract<CpEvent, { kind: K }>;
type WorkerCommandInit =
  | { case: 'create'; value: { sandboxId: string; function: FnState['wire'] } }
  | { case: 'delete'; value: { sandboxId: string } };

function fromWire(r: { cpuMillis: number; memoryMib: number } | undefined): Resources {
  return { cpuMillis: r?.cpuMillis ?? 0, memoryMiB: r?.memoryMib ?? 0 };
}

function addResources(into: Resources, r: Resources, sign: 1 | -1): void {
  into.cpuMillis += sign * r.cpuMillis;
  into.memoryMiB += sign * r.memoryMiB;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

function endpointOf(sb: SandboxRec, functionUid: string) {
  return {
    $typeName: 'dirigent.v1.Endpoint' as const,
    sandboxId: sb.id,
    function: sb.fn,
    address: sb.address,
    workerId: sb.workerId,
    functionUid,
  };
}

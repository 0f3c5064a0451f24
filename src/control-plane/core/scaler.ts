/**
 * @module control-plane/core/scaler
 * Demand in, sandboxes out: records DP demand reports (matched by function uid), runs the KPA
 * on its schedule (and at once for a scale from zero or, with the queue floor, for a queue
 * behind busy sandboxes), raises its count to the keep-alive policy's floor where a function
 * asks for it (scaling.keepAliveWindowS), and reconciles desired against creating + ready by placing new
 * sandboxes or draining the cheapest victims. A function placement cannot serve is unschedulable: the
 * reason shows in its status. If no worker could host it even when empty (runtime missing,
 * request larger than any worker), once that has lasted `unschedulableFailAfterMs` the DPs are
 * told to fail its queued requests (503) instead of letting them wait for the queue limit.
 */
import type { DemandReportMsg } from '../../api/cluster.js';
import type { IdleHistoryRecord } from '../../api/types.js';
import { kpaDecide, kpaRecord, kpaRelease } from '../../policy/autoscaler/kpa.js';
import { keepAliveBinCount, keepAliveFloor, keepAliveInitialState, keepAliveObserve, keepAliveWindows } from '../../policy/autoscaler/keep-alive.js';
import { smallSetSize } from '../../shared/small-set.js';
import { chooseVictims } from '../../policy/eviction.js';
import { placeWith } from '../../policy/placement/placement.js';
import { demandInflight, demandQueued, demandValue, recordPeriodMs, sandboxInflight, setDemand, type FnState } from './functions.js';
import { isQuotaReason } from './quotas.js';
import { createSandbox, drain } from './sandboxes.js';
import { idleHistorySaveIntervalMs, scaleSummaryIntervalMs, type CoreState, type ScaleDecisionCounts } from './state.js';

/**
 * Runtime capability a function needs from a worker: 'process' for a command, 'image' for an
 * image. Workers advertise the capabilities of their runtime (the emulated one has both).
 */
export function requiredCapability(spec: { command: string[] }): string {
  return spec.command.length > 0 ? 'process' : 'image';
}

export function onDemand(s: CoreState, dataPlaneId: string, report: DemandReportMsg, nowMs: number): void {
  for (const d of report.functions) {
    const fn = s.functions.get(d.function);
    if (!fn || d.functionUid !== fn.record.uid) {
      // Deleted, or deleted and re-created: the DP still counts for an identity that is gone.
      s.log.debug('demand.ignored', { dataPlaneId, fn: d.function, uid: d.functionUid });
      continue;
    }
    const instantaneous = d.inflight + d.queued;
    const value = report.firstDemand ? Math.max(instantaneous, d.concurrencyAvg) : d.concurrencyAvg;
    setDemand(fn, { dataPlaneId, value, inflight: d.inflight, queued: d.queued, sandboxInflight: d.sandboxInflight });
    s.markDirty(fn);
    // Scale from zero at once: do not wait for the next autoscaler tick. While nothing is
    // ready, a growing burst is decided on as it is reported (cold path only).
    if (instantaneous > 0 && fn.ready === 0 && (report.firstDemand || fn.creating === 0)) decide(s, fn, nowMs);
    // A queue behind busy sandboxes, reported at once: with the queue floor, decide now rather
    // than at the next tick, if the requests outnumber the slots of ready and coming sandboxes.
    else if (report.firstDemand && d.queued > 0 && queueFloorOn(s) && needsMore(fn)) decide(s, fn, nowMs);
    if (d.queued > 0) maybeFailUnschedulable(s, fn, nowMs);
  }
}

function queueFloorOn(s: CoreState): boolean {
  return s.config.queueFloor !== false;
}

/** Requests in flight or queued now, summed over the DPs' latest reports. */
function requestsNow(fn: FnState): number {
  return demandInflight(fn) + demandQueued(fn);
}

/** More requests now than slots on the ready and creating sandboxes (concurrency-limited only). */
function needsMore(fn: FnState): boolean {
  const slots = fn.record.spec.concurrency;
  return slots > 0 && requestsNow(fn) > (fn.ready + fn.creating) * slots;
}

/** One visit of the ticker; a function deleted since the visit was planned is skipped. */
export function tickFunction(s: CoreState, fn: FnState, nowMs: number): void {
  if (fn.removed) return;
  if (nowMs >= fn.nextRecordAtMs) {
    const value = demandValue(fn);
    fn.kpa = kpaRecord(fn.kpa, fn.record.spec.scaling, value, nowMs);
    // A function idle for a whole stable window gives its window back (~1.6 KiB at 60 s).
    if (value === 0) fn.kpa = kpaRelease(fn.kpa);
    observeKeepAlive(s, fn, nowMs);
    fn.nextRecordAtMs = nowMs + recordPeriodMs;
  }
  if (nowMs >= fn.nextDecisionAtMs || (fn.keepAliveWakeAtMs > 0 && nowMs >= fn.keepAliveWakeAtMs)) decide(s, fn, nowMs);
  if (fn.retryAtMs > 0 && nowMs >= fn.retryAtMs) {
    fn.retryAtMs = 0;
    s.markDirty(fn);
  }
  if (atRest(fn)) {
    // Nothing to watch until demand returns or one of its sandboxes comes or goes (each marks
    // it again). The KPA state is kept: its windows treat the silent gap as zeros, and a fresh
    // state would re-apply the initial-scale hold. A keep-alive's pre-warm or release is the
    // one change planned ahead: a single visit then, not a visit every second until then.
    s.deactivate(fn);
    if (fn.keepAliveWakeAtMs > 0) s.visitAt(fn, fn.keepAliveWakeAtMs);
    return;
  }
  if (!fn.active) return;
  s.visitAt(fn, Math.min(fn.nextRecordAtMs, fn.nextDecisionAtMs, fn.retryAtMs > 0 ? fn.retryAtMs : Number.POSITIVE_INFINITY,
    fn.keepAliveWakeAtMs > 0 ? fn.keepAliveWakeAtMs : Number.POSITIVE_INFINITY));
}

/**
 * Feeds the keep-alive policy whether the function is busy: a request in flight or queued, or
 * any in the DPs' last report period (a 100 ms request between two records still counts).
 */
function observeKeepAlive(s: CoreState, fn: FnState, nowMs: number): void {
  const windowS = fn.record.spec.scaling.keepAliveWindowS;
  if (windowS === 0) return;
  const busy = demandValue(fn) > 0 || demandInflight(fn) > 0 || demandQueued(fn) > 0;
  if (fn.keepAlive === null) {
    if (!busy) return;
    fn.keepAlive = keepAliveInitialState();
  }
  const counted = fn.keepAlive.samples + fn.keepAlive.outOfRange;
  const bins = fn.keepAlive.bins;
  fn.keepAlive = keepAliveObserve(fn.keepAlive, busy, nowMs, windowS);
  const changed = fn.keepAlive.samples + fn.keepAlive.outOfRange !== counted || fn.keepAlive.bins !== bins;
  if (changed && fn.keepAliveSaved) {
    fn.keepAliveSaved = false;
    s.idleUnsaved.push(fn);
  }
}

/**
 * Stores the idle times that changed, at most once per `idleHistorySaveIntervalMs`: a new
 * leader starts from them, losing at most that interval's learning. One record per function
 * (its whole histogram: at most 240 counts), in one effect.
 */
export function saveIdleHistories(s: CoreState, nowMs: number): void {
  if (s.idleUnsaved.length === 0 || nowMs < s.idleSaveAtMs) return;
  const records: IdleHistoryRecord[] = [];
  for (const fn of s.idleUnsaved) {
    fn.keepAliveSaved = true;
    const ka = fn.keepAlive;
    if (fn.removed || ka === null || (ka.bins === null && ka.outOfRange === 0)) continue;
    const windowS = fn.record.spec.scaling.keepAliveWindowS;
    if (windowS === 0) continue;
    records.push({
      function: fn.record.spec.name, functionUid: fn.record.uid, windowS,
      bins: ka.bins ? [...ka.bins] : new Array<number>(keepAliveBinCount(windowS)).fill(0), samples: ka.samples, outOfRange: ka.outOfRange,
    });
  }
  s.idleUnsaved.length = 0;
  s.idleSaveAtMs = nowMs + idleHistorySaveIntervalMs;
  if (records.length > 0) s.effects.push({ kind: 'store_idle_histories', records });
}

/**
 * The KPA's count, raised to the keep-alive policy's floor (one sandbox in its window after a
 * busy spell; scaling.max permitting). Plans the visit at which that floor changes next.
 */
function withKeepAlive(fn: FnState, kpaDesired: number, nowMs: number): number {
  const windowS = fn.record.spec.scaling.keepAliveWindowS;
  if (windowS === 0 || fn.keepAlive === null) {
    fn.keepAliveWakeAtMs = 0;
    fn.keepAliveHeld = 0;
    fn.keepAliveNote = '';
    return kpaDesired;
  }
  const { floor, wakeAtMs } = keepAliveFloor(fn.keepAlive, nowMs, windowS);
  fn.keepAliveWakeAtMs = wakeAtMs;
  const held = Math.min(floor, fn.record.spec.scaling.max);
  if (held <= kpaDesired) {
    fn.keepAliveHeld = 0;
    fn.keepAliveNote = '';
    return kpaDesired;
  }
  fn.keepAliveHeld = held;
  fn.keepAliveNote = `keep-alive holds ${held} sandbox for ${Math.ceil((wakeAtMs - nowMs) / 1000)} s more ` +
    `(${keepAliveWindows(fn.keepAlive, windowS).basis} window; the KPA alone: ${kpaDesired})`;
  return held;
}

/**
 * No demand, and a count no decision would change before the keep-alive's next change (if one
 * is planned): scaled to zero; or held at its floor (`min` ready sandboxes, or the one the
 * keep-alive holds; none coming or going, no retry planned) with its window of zeros given
 * back, so what a tick would record is zeros and what it would decide is the floor again. At
 * 40,000 functions held at one sandbox each, visiting them anyway cost the leader about 12 % of
 * a core with no traffic at all (BENCHMARKS.md, "A function held at its floor is not ticked").
 */
function atRest(fn: FnState): boolean {
  if (demandValue(fn) !== 0) return false;
  const floor = Math.max(fn.record.spec.scaling.min, fn.keepAliveHeld);
  if (floor === 0) return fn.desired === 0 && smallSetSize(fn.sandboxIds) === 0;
  return fn.desired === floor && fn.ready === floor && fn.creating === 0 && smallSetSize(fn.sandboxIds) === floor &&
    fn.retryAtMs === 0 && fn.kpa.ring.bucketIds.length === 0;
}

export function decide(s: CoreState, fn: FnState, nowMs: number): void {
  const spec = fn.record.spec;
  fn.kpa = kpaRecord(fn.kpa, spec.scaling, demandValue(fn), nowMs);
  observeKeepAlive(s, fn, nowMs);
  const { decision, state } = kpaDecide(fn.kpa, {
    spec: spec.scaling,
    concurrency: spec.concurrency,
    readyCount: fn.ready,
    nowMs,
    queueFloor: queueFloorOn(s) ? requestsNow(fn) : undefined,
  });
  fn.kpa = state;
  fn.nextDecisionAtMs = nowMs + spec.scaling.tickS * 1000;
  const desired = withKeepAlive(fn, decision.desired, nowMs);
  if (desired !== fn.desired) {
    countDecision(s.scaleDecisions, fn.desired, desired);
    if (s.log.isDebugEnabled()) {
      s.log.debug('function.scaled', { fn: spec.name, from: fn.desired, to: desired, mode: decision.mode, reason: decision.reason, keepAlive: fn.keepAliveNote });
    }
  }
  // Kept when it changed what `fn get` shows (the count or the mode): kept at every decision,
  // each lived until the function's next one, long enough for young-generation GCs to copy it
  // (core microbenchmark, 20,000 active functions: ticks 191-271 ms against 231-282 ms).
  if (desired !== fn.desired || fn.lastDecision === null || fn.lastDecision.mode !== decision.mode) fn.lastDecision = decision;
  fn.desired = desired;
  s.markDirty(fn);
}

function countDecision(c: ScaleDecisionCounts, from: number, to: number): void {
  if (to > from) {
    c.up += 1;
    if (from === 0) c.fromZero += 1;
  } else {
    c.down += 1;
    if (to === 0) c.toZero += 1;
  }
}

/**
 * At most every `scaleSummaryIntervalMs`, one info line with the decisions since the last one.
 * A quiet spell logs nothing; the first decision after it is logged with the whole spell as
 * its window. The per-decision line is debug.
 */
export function logScaleSummary(s: CoreState, nowMs: number): void {
  const last = s.scaleSummary;
  if (last.atMs < 0) last.atMs = nowMs;
  const c = s.scaleDecisions;
  if (nowMs - last.atMs < scaleSummaryIntervalMs || (c.up === last.up && c.down === last.down)) return;
  s.log.info('autoscaler.decisions', {
    up: c.up - last.up,
    fromZero: c.fromZero - last.fromZero,
    down: c.down - last.down,
    toZero: c.toZero - last.toZero,
    windowMs: nowMs - last.atMs,
  });
  s.scaleSummary = { atMs: nowMs, up: c.up, down: c.down, fromZero: c.fromZero, toZero: c.toZero };
}

export function reconcileDirty(s: CoreState, nowMs: number): void {
  const list = s.dirtyList;
  // A function marked during the pass is appended and visited in it too; one marked again is
  // not (it is still flagged). One deleted meanwhile lost its flag and is skipped.
  for (let i = 0; i < list.length; i += 1) {
    const fn = list[i]!;
    if (fn.dirty) reconcile(s, fn, nowMs);
  }
  for (let i = 0; i < list.length; i += 1) list[i]!.dirty = false;
  list.length = 0;
}

function reconcile(s: CoreState, fn: FnState, nowMs: number): void {
  const activeCount = fn.creating + fn.ready;
  if (fn.desired > activeCount) scaleUp(s, fn, fn.desired - activeCount, nowMs);
  else {
    if (fn.unschedulableReason) setUnschedulable(s, fn, '', nowMs);
    if (fn.desired < activeCount && fn.ready > 0 && nowMs >= fn.noScaleDownUntilMs) {
      scaleDown(s, fn, activeCount - fn.desired, nowMs);
    }
  }
}

function scaleUp(s: CoreState, fn: FnState, missing: number, nowMs: number): void {
  if (nowMs < fn.retryAtMs || fn.blockedEpoch === s.capacityEpoch) return;
  // Restored after a CP restart: workers still reconnecting will report its sandboxes. Not tied
  // to the failover hold (one stable window, which a slow start can outlive).
  if (fn.restored && s.workersExpectedBack.size > 0) return;
  fn.blockedEpoch = -1;
  const n = Math.min(missing, s.config.creatingPerFunctionMax - fn.creating);
  const spec = fn.record.spec;
  const runtime = requiredCapability(spec);
  for (let i = 0; i < n; i += 1) {
    const refusal = s.quotas.refusal(spec.name, spec.resources);
    if (refusal) return blockOnQuota(s, fn, refusal, n - i, nowMs);
    const { result, cursor } = placeWith(
      s.config.placement,
      s.workerList,
      { resources: spec.resources, runtime },
      { rng: s.rng, cursor: s.placementCursor, table: s.nodeTable },
    );
    s.placementCursor = cursor;
    if (result.kind === 'unschedulable') {
      fn.blockedEpoch = s.capacityEpoch;
      const why = summarizeReasons(result.reasons, runtime);
      s.placementRefusals.total += 1;
      s.placementRefusals.lastReason = why;
      if (why !== fn.lastUnschedulable) {
        s.log.warn('function.unschedulable', { fn: spec.name, missing: n - i, reasons: why });
        fn.lastUnschedulable = why;
      }
      // Partly placed is not unschedulable: the function serves, only slower.
      if (fn.creating + fn.ready === 0) setUnschedulable(s, fn, why, nowMs);
      fn.unschedulableForGood = !fitsSomeWorker(s, spec.resources, runtime);
      return;
    }
    fn.lastUnschedulable = '';
    setUnschedulable(s, fn, '', nowMs);
    createSandbox(s, fn, s.workers.get(result.nodeId)!, nowMs);
  }
}

/**
 * Its namespace's quota has no room for one more sandbox. Like a function no worker can host,
 * it fails its queued requests after `unschedulableFailAfterMs` (429 quota_exceeded), and
 * unlike one short of capacity, also while it serves with some sandboxes: a quota is a limit
 * the tenant hit (as Lambda throttles past its concurrency limit), not a wait for room other
 * functions will free. Room appears when usage drops (capacity epoch) or a quota is raised
 * (every active function is reconciled).
 */
function blockOnQuota(s: CoreState, fn: FnState, reason: string, missing: number, nowMs: number): void {
  fn.blockedEpoch = s.capacityEpoch;
  if (reason !== fn.lastUnschedulable) {
    s.log.warn('function.quota_reached', { fn: fn.record.spec.name, missing, reason });
    fn.lastUnschedulable = reason;
  }
  setUnschedulable(s, fn, reason, nowMs);
  fn.unschedulableForGood = true;
}

/**
 * Whether some schedulable worker could host the function if it were empty. If so, the
 * function only waits for capacity other functions hold (they scale down); its requests keep
 * waiting. If not, nothing will change without an operator, and waiting only hides the reason.
 */
function fitsSomeWorker(s: CoreState, r: { cpuMillis: number; memoryMiB: number }, runtime: string): boolean {
  const up = s.workerList.filter((w) => w.connected && w.schedulable);
  // No worker at all (a CP restart before workers reconnect, a worker restart): that is
  // waiting, not a function no worker can run.
  if (up.length === 0) return true;
  return up.some((w) => w.runtimes.includes(runtime) && w.capacity.cpuMillis >= r.cpuMillis && w.capacity.memoryMiB >= r.memoryMiB);
}

function setUnschedulable(s: CoreState, fn: FnState, reason: string, nowMs: number): void {
  if (reason === fn.unschedulableReason) return;
  if (reason && !fn.unschedulableReason) {
    fn.unschedulableSinceMs = nowMs;
    s.deadlines.push(nowMs + s.unschedulableFailAfterMs, 'unschedulable', fn.record.spec.name);
  }
  if (!reason) {
    fn.unschedulableSinceMs = 0;
    fn.unschedulableForGood = false;
  }
  fn.unschedulableReason = reason;
}

/** Tell DPs to fail queued requests with 503 (429 for a quota) once placement has failed for long enough. */
export function maybeFailUnschedulable(s: CoreState, fn: FnState, nowMs: number): void {
  if (!fn.unschedulableReason || !fn.unschedulableForGood) return;
  if (nowMs - fn.unschedulableSinceMs < s.unschedulableFailAfterMs) return;
  if (fn.unschedulableFailedAtMs === nowMs || demandQueued(fn) === 0) return;
  fn.unschedulableFailedAtMs = nowMs;
  if (isQuotaReason(fn.unschedulableReason)) s.routing.failFunction(fn.record.spec.name, 'quota_exceeded', fn.unschedulableReason);
  else s.routing.failFunction(fn.record.spec.name, 'unschedulable', `unschedulable: ${fn.unschedulableReason}`);
  s.log.warn('function.failed_unschedulable', { fn: fn.record.spec.name, reason: fn.unschedulableReason });
}

/** What a worker must have for a capability, in words an operator can act on. */
function runtimeLabel(runtime: string): string {
  if (runtime === 'image') return 'an image runtime (start workers with --runtime oci or containerd, or emulated to benchmark)';
  if (runtime === 'process') return 'the process runtime (start workers with --runtime process)';
  return `runtime ${runtime}`;
}

/** "0/3 workers available: 2 insufficient cpu, 1 without an image runtime (...)", as kube says it. */
function summarizeReasons(reasons: { nodeId: string; reason: string }[], runtime: string): string {
  if (reasons.length === 1 && reasons[0]!.nodeId === '*') return 'no workers registered';
  const counts = new Map<string, number>();
  for (const r of reasons) {
    const text = r.reason === 'runtime not supported' ? `without ${runtimeLabel(runtime)}` : r.reason;
    counts.set(text, (counts.get(text) ?? 0) + 1);
  }
  const parts = [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([t, n]) => `${n} ${t}`);
  return `0/${reasons.length} workers available: ${parts.join(', ')}`;
}

function scaleDown(s: CoreState, fn: FnState, excess: number, nowMs: number): void {
  const candidates = [];
  for (const id of fn.sandboxIds) {
    const sb = s.sandboxes.get(id)!;
    if (sb.state === 'ready') {
      candidates.push({ id, createdAtMs: sb.readyAtMs, inflight: sandboxInflight(fn, id), state: sb.state });
    }
  }
  for (const id of chooseVictims(candidates, Math.min(excess, candidates.length))) {
    drain(s, s.sandboxes.get(id)!, fn, nowMs);
  }
}

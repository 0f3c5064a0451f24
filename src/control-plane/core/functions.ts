/**
 * @module control-plane/core/functions
 * Per-function scaling state held by the control-plane core, and the conversion of a stored
 * function to its wire form. Pure data plus small helpers; no I/O.
 */
import type { FunctionSpecMsg as WireSpec } from '../../api/cluster.js';
import type { FunctionRecord, FunctionStatus, IdleHistoryRecord } from '../../api/types.js';
import { kpaInitialState, type KpaState, type ScaleDecision } from '../../policy/autoscaler/kpa.js';
import { keepAliveRestoredState, type KeepAliveState } from '../../policy/autoscaler/keep-alive.js';
import { emptySmallSet, smallSetAdd, smallSetDelete, type SmallSet } from '../../shared/small-set.js';

export interface DpDemand {
  dataPlaneId: string;
  value: number;
  inflight: number;
  queued: number;
  /** Busy sandboxes as last reported by this DP. */
  sandboxInflight: Record<string, number>;
}

/** Width of a KPA bucket: demand is recorded at most once per bucket per function. */
export const recordPeriodMs = 1000;

export interface FnState {
  record: FunctionRecord;
  wire: WireSpec;
  kpa: KpaState;
  desired: number;
  lastDecision: ScaleDecision | null;
  nextDecisionAtMs: number;
  /** Demand is recorded once per 1 s bucket (Knative scrapes once a second), staggered. */
  nextRecordAtMs: number;
  /** The tick schedule's bucket this function's next visit is in (CoreState.visitAt); -1: none. */
  visitBucket: number;
  /** Waiting for a reconcile pass (in CoreState.dirtyList; see CoreState.markDirty). */
  dirty: boolean;
  /** Watched by the ticker (until it is idle; see CoreState.markDirty). */
  active: boolean;
  /** Deleted (or replaced under its name): a visit the schedule still holds for it is skipped. */
  removed: boolean;
  /** Its sandboxes, in the order they were added (change it only with addSandboxId / removeSandboxId). */
  sandboxIds: SmallSet;
  creating: number;
  ready: number;
  draining: number;
  /**
   * The latest report of each DP that counts anything for it (a report of all zeros is not
   * kept); the shared empty `noDemand` while none does. Change it only with setDemand /
   * dropDemand.
   */
  demand: readonly DpDemand[];
  /** Consecutive failed creations; drives back-off and fail-fast. */
  failures: number;
  retryAtMs: number;
  /** Capacity epoch at which placement last failed; -1 when not blocked. */
  blockedEpoch: number;
  lastUnschedulable: string;
  /** Why placement cannot place it ('' when it can), and since when (for status and fail-fast). */
  unschedulableReason: string;
  unschedulableSinceMs: number;
  /** No worker could host it even if empty: queued requests are failed fast (503). */
  unschedulableForGood: boolean;
  /** Last time DPs were told to fail its queued requests as unschedulable. */
  unschedulableFailedAtMs: number;
  /** Rebuilt after a CP failover: adopted sandboxes are kept for one stable window. */
  noScaleDownUntilMs: number;
  /**
   * Rebuilt from the store after a CP restart: it creates no sandbox while workers the store
   * knows are still expected back (they report its sandboxes; bounded by the heartbeat timeout).
   */
  restored: boolean;
  /**
   * The keep-alive policy's idle times (scaling.keepAliveWindowS > 0); null while it is off or
   * the function has not been busy yet (nor had a sandbox adopted, nor a history restored).
   */
  keepAlive: KeepAliveState | null;
  /** Whether the store has keepAlive's counts as they are now (else it waits in `idleUnsaved`). */
  keepAliveSaved: boolean;
  /** When the keep-alive floor changes next (a pre-warm or a release); 0: none planned. */
  keepAliveWakeAtMs: number;
  /** Sandboxes the keep-alive holds beyond what the KPA wants (its count then), else 0. */
  keepAliveHeld: number;
  /** What the keep-alive floor holds now, for `fn get` ('' when it holds nothing the KPA did not want). */
  keepAliveNote: string;
}

export function toWireSpec(record: FunctionRecord): WireSpec {
  const s = record.spec;
  return {
    name: s.name,
    image: s.image,
    // Shared with the record, which is never written after it is built (an update is a new one).
    command: s.command,
    port: s.port,
    env: s.env,
    resources: { cpuMillis: s.resources.cpuMillis, memoryMib: s.resources.memoryMiB },
    concurrency: s.concurrency,
    timeoutMs: s.timeoutMs,
    workingDir: s.workingDir,
    egress: s.egress,
    auth: s.auth,
    generation: record.generation,
    uid: record.uid,
    // Zero = the DP's default, so an unset key stays unset across the wire.
    ...(s.async ? {
      asyncSettings: { retryOn4xx: s.async.retryOn4xx ?? false, attemptsMax: s.async.attemptsMax ?? 0, eventAgeMsMax: s.async.eventAgeMsMax ?? 0 },
    } : {}),
  };
}

/** A stored idle history is this function's (not an older one under its name), counted against its window. */
export function idleHistoryFits(record: FunctionRecord, idleHistory: IdleHistoryRecord): boolean {
  return idleHistory.functionUid === record.uid && idleHistory.windowS === record.spec.scaling.keepAliveWindowS;
}

export function newFnState(record: FunctionRecord, nowMs: number, reconstructed: boolean, idleHistory?: IdleHistoryRecord): FnState {
  const scaling = record.spec.scaling;
  const history = idleHistory && idleHistoryFits(record, idleHistory) ? idleHistory : null;
  return {
    record,
    wire: toWireSpec(record),
    kpa: kpaInitialState(scaling, nowMs, { reconstructed }),
    desired: Math.max(scaling.min, scaling.initial),
    lastDecision: null,
    nextDecisionAtMs: nowMs + scaling.tickS * 1000,
    nextRecordAtMs: nowMs,
    visitBucket: -1,
    dirty: false,
    active: false,
    removed: false,
    sandboxIds: emptySmallSet,
    creating: 0,
    ready: 0,
    draining: 0,
    demand: noDemand,
    failures: 0,
    retryAtMs: 0,
    blockedEpoch: -1,
    lastUnschedulable: '',
    unschedulableReason: '',
    unschedulableSinceMs: 0,
    unschedulableForGood: false,
    unschedulableFailedAtMs: 0,
    noScaleDownUntilMs: reconstructed ? nowMs + scaling.stableWindowS * 1000 : 0,
    restored: reconstructed,
    keepAlive: history ? keepAliveRestoredState(history.bins, history.samples, history.outOfRange) : null,
    keepAliveSaved: true,
    keepAliveWakeAtMs: 0,
    keepAliveHeld: 0,
    keepAliveNote: '',
  };
}

/*
 * Most registered functions are idle: they hold shared empty containers rather than a Map and
 * a Set of their own (304 and 152 bytes of heap each while empty). An active function's sandbox
 * ids are a SmallSet (a list while few); its demand is a list with an entry per DP that counts
 * anything for it, and DPs are few.
 */
/** The demand list of a function no DP counts anything for (frozen: a write would throw). */
export const noDemand: readonly DpDemand[] = Object.freeze([]);

export function addSandboxId(fn: FnState, id: string): void {
  fn.sandboxIds = smallSetAdd(fn.sandboxIds, id);
}

export function removeSandboxId(fn: FnState, id: string): void {
  fn.sandboxIds = smallSetDelete(fn.sandboxIds, id);
}

/** Replaces a DP's report for the function; a report of all zeros removes it. */
export function setDemand(fn: FnState, d: DpDemand): void {
  const list = fn.demand as DpDemand[];
  let i = 0;
  while (i < list.length && list[i].dataPlaneId !== d.dataPlaneId) i += 1;
  const counts = d.value !== 0 || d.inflight !== 0 || d.queued !== 0 || hasKeys(d.sandboxInflight);
  if (i < list.length) {
    if (counts) list[i] = d;
    else dropAt(fn, i);
  } else if (counts) {
    if (list.length === 0) fn.demand = [d];
    else list.push(d);
  }
}

/** Forgets a DP's report for the function (the DP is gone). */
export function dropDemand(fn: FnState, dataPlaneId: string): void {
  const i = fn.demand.findIndex((d) => d.dataPlaneId === dataPlaneId);
  if (i >= 0) dropAt(fn, i);
}

function dropAt(fn: FnState, i: number): void {
  if (fn.demand.length === 1) fn.demand = noDemand;
  else (fn.demand as DpDemand[]).splice(i, 1);
}

function hasKeys(r: Record<string, number>): boolean {
  for (const _ in r) return true;
  return false;
}

export function demandTotals(fn: FnState): { value: number; inflight: number; queued: number } {
  return { value: demandValue(fn), inflight: demandInflight(fn), queued: demandQueued(fn) };
}

/*
 * The sums one at a time, with indexed loops: the autoscaler reads them several times per visit
 * of every active function, and a totals object (or a for-of over the shared frozen empty list,
 * which takes the iterator's slow path) per read was 11 % of what the CP allocated at 4,000
 * cold starts/s (sampling heap profile; BENCHMARKS.md, "Fewer bytes per cold start").
 */

/** The DPs' reported concurrency (their window averages), summed. */
export function demandValue(fn: FnState): number {
  const list = fn.demand;
  let n = 0;
  for (let i = 0; i < list.length; i += 1) n += list[i]!.value;
  return n;
}

/** Requests in flight, summed over the DPs' latest reports. */
export function demandInflight(fn: FnState): number {
  const list = fn.demand;
  let n = 0;
  for (let i = 0; i < list.length; i += 1) n += list[i]!.inflight;
  return n;
}

/** Requests queued, summed over the DPs' latest reports. */
export function demandQueued(fn: FnState): number {
  const list = fn.demand;
  let n = 0;
  for (let i = 0; i < list.length; i += 1) n += list[i]!.queued;
  return n;
}

/** Requests in flight on one sandbox, summed over data planes (as last reported). */
export function sandboxInflight(fn: FnState, sandboxId: string): number {
  const list = fn.demand;
  let n = 0;
  for (let i = 0; i < list.length; i += 1) n += list[i]!.sandboxInflight[sandboxId] ?? 0;
  return n;
}

export function fnStatus(fn: FnState): FunctionStatus {
  const totals = demandTotals(fn);
  return {
    desired: fn.desired,
    ready: fn.ready,
    creating: fn.creating,
    draining: fn.draining,
    queueDepth: totals.queued,
    inflight: totals.inflight,
    panicking: fn.lastDecision?.mode === 'panic',
    lastScaleReason: fn.keepAliveNote
      ? `${fn.lastDecision?.reason ?? ''}; ${fn.keepAliveNote}`
      : fn.lastDecision?.reason ?? '',
    ...(fn.unschedulableReason
      ? { unschedulableReason: fn.unschedulableReason, unschedulableSinceMs: fn.unschedulableSinceMs }
      : {}),
  };
}

/** Fields whose change means running sandboxes no longer match the spec. */
export function sandboxSpecChanged(a: WireSpec, b: WireSpec): boolean {
  return (
    a.image !== b.image ||
    a.command.join('\u0000') !== b.command.join('\u0000') ||
    a.port !== b.port ||
    a.workingDir !== b.workingDir ||
    a.egress !== b.egress ||
    JSON.stringify(a.env) !== JSON.stringify(b.env) ||
    a.resources?.cpuMillis !== b.resources?.cpuMillis ||
    a.resources?.memoryMib !== b.resources?.memoryMib
  );
}

/** The generation whose sandboxes run the current spec (see `FunctionRecord.specGeneration`). */
export function specGenerationOf(record: FunctionRecord): number {
  return record.specGeneration ?? record.generation;
}

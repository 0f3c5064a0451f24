/**
 * @module policy/autoscaler/kpa
 * Knative's pod autoscaler (KPA) as a pure state machine, one instance per function.
 *
 * Owns: the observed-concurrency windows (1 s buckets in one ring buffer sized from the stable
 * window; the panic window reads the newest buckets of the same ring), panic mode with its
 * high-water mark, the scale-down delay window, scale from zero, the scale-to-zero grace hold,
 * the initial-scale hold and the no-scale-down hold after a control-plane failover.
 *
 * Invariants: state is plain JSON-serializable data; the decision is always within
 * [spec.min, spec.max]; specs and inputs are never mutated, with one exception: `kpaRecord` and
 * `kpaDecide` consume the state they are given. They write into that state (its ring, its delay
 * window and its fields) in place and return it; the caller keeps only that one. (A copy of the
 * ring per record cost ~6 µs and ~1.5 KB that lived a second, so every young-generation GC
 * copied it: at 24,000 active functions, most of the control plane's GC time. A copy of the
 * state object and its delay window per decision, kept until the next decision, was 75 % of the
 * GC time of the CP core's ticks in a microbenchmark of 20,000 active functions.)
 * Formulas: reference/workload-and-policies.md §3, reference/dirigent.md §4 (Autoscaler).
 * Must not import anything but `api/` types and `shared/` helpers: no clock, no I/O.
 *
 * Call pattern (the control plane's shell):
 *   state = kpaInitialState(spec, nowMs)               at registration (or failover)
 *   state = kpaRecord(state, spec, inflight, nowMs)    on every demand report / tick (the old
 *                                                      state is consumed: its ring is reused)
 *   ({ decision, state } = kpaDecide(state, {...}))    every spec.tickS, and at once on the
 *                                                      first demand while no sandbox is ready
 *                                                      (the state is consumed, as by a record)
 *   state = kpaRelease(state)                          after a record of zero: drops a window
 *                                                      of zeros (changes no decision)
 */
import type { ScalingSpec } from '../../api/types.js';
import { assert } from '../../shared/assert.js';

/**
 * The observation ring. One slot per 1 s bucket; slot = bucket mod length. A slot whose
 * `bucketIds` entry is not the bucket being read is stale and reads as 0 (a gap).
 *
 *   slot       0    1    2    3    4    5        stable window 6 s → length 6
 *   bucketId  60   61   62   57   58   59       newest write: bucket 62 (t = 62.x s)
 *   sum        3    0    4    1    1    2       bucket 62 got two records, 1 and 3:
 *   count      1    1    2    1    1    1       its value is sum / count = 2
 */
export interface KpaRing {
  bucketIds: number[];
  sums: number[];
  counts: number[];
}

/**
 * The ring of a function never observed: empty and shared (frozen, so a write would throw). The
 * first record allocates the function's own (kpaRingFor), so a registered function that is never
 * invoked holds no window (three 60-slot arrays, ~1.5 KiB, and their allocation per registration).
 * Until then every average reads 0, as a ring of stale slots would.
 */
const unobservedRing: KpaRing = Object.freeze({
  bucketIds: Object.freeze([]) as unknown as number[],
  sums: Object.freeze([]) as unknown as number[],
  counts: Object.freeze([]) as unknown as number[],
}) as KpaRing;

export interface KpaState {
  /** When this autoscaler started (registration or failover); the no-demand clock starts here. */
  startedAtMs: number;
  /** `spec.initial` is a floor until then (one stable window after creation). */
  initialHoldUntilMs: number;
  /** After a failover: no scale-down below the ready count until then; null otherwise. */
  noScaleDownUntilMs: number | null;
  ring: KpaRing;
  /** Zero records in the newest bucket while `ring` is still the empty one (see kpaRecord). */
  unobservedZeros: number;
  /** Newest bucket written; null before the first record. */
  lastBucket: number | null;
  /** First bucket of the current stable / panic series; reset after a window with no record. */
  stableFirstBucket: number | null;
  panicFirstBucket: number | null;
  /** Newest bucket that received a value > 0; null if there was never demand. */
  lastDemandBucket: number | null;
  /** The most recent record in the newest bucket. */
  latestObserved: number;
  /** Time of the latest over-threshold tick while panicking; null in stable mode. */
  panicStartMs: number | null;
  /** High-water mark of desired while panicking; 0 in stable mode. */
  maxPanicPods: number;
  /** Pre-delay desired per 1 s bucket over the scale-down delay, oldest first. */
  delay: { bucket: number; desired: number }[];
  /** The last desired count returned (after every hold and clamp). */
  lastDesired: number;
}

export interface ScaleDecision {
  desired: number;
  mode: 'stable' | 'panic';
  stableAvg: number;
  panicAvg: number;
  /** Target concurrency per sandbox. */
  target: number;
  readonly bounds: { maxUp: number; maxDown: number };
  /** Short human explanation, for logs and `FunctionStatus.lastScaleReason` (built when read). */
  readonly reason: string;
}

export interface KpaDecideInput {
  spec: ScalingSpec;
  /** Per-sandbox containerConcurrency; 0 = unlimited. */
  concurrency: number;
  readyCount: number;
  nowMs: number;
  /**
   * Requests in flight or queued right now, summed over data planes (their latest reports), or
   * undefined for plain KPA. With it, the decision is never below ceil(queueFloor / concurrency)
   * (when concurrency limits a sandbox): a request queued behind busy sandboxes asks for one
   * more at once, as Lambda starts an environment for every request none is free for, instead of
   * waiting until the 60 s stable average has learned the load (Dirigent-TS extension).
   */
  queueFloor?: number;
}

/** Knative's `container-concurrency-target-default`: the per-sandbox total when unlimited. */
const kpaUnlimitedConcurrencyTotal = 100;
/** Knative's lower bound on the target (`ResolveMetricTarget`). */
const kpaTargetMin = 0.01;
const bucketMs = 1000;
/**
 * Float noise guard for ceil: 21 in flight at target 0.7 is 21 / 0.7 = 30.000000000000004,
 * which must mean 30 sandboxes, not 31 (Knative's Go code, using the same doubles, says 31).
 */
const ceilEpsilon = 1e-9;

export function kpaInitialState(
  spec: ScalingSpec,
  nowMs: number,
  opts: { reconstructed?: boolean } = {},
): KpaState {
  const reconstructed = opts.reconstructed === true;
  const stableMs = spec.stableWindowS * 1000;
  return {
    startedAtMs: nowMs,
    // A rebuilt function is not a new one: its initial scale was served long ago.
    initialHoldUntilMs: reconstructed ? nowMs : nowMs + stableMs,
    noScaleDownUntilMs: reconstructed ? nowMs + stableMs : null,
    ring: unobservedRing,
    unobservedZeros: 0,
    lastBucket: null,
    stableFirstBucket: null,
    panicFirstBucket: null,
    lastDemandBucket: null,
    latestObserved: 0,
    // Dirigent puts every reconstructed function in panic so that history lost in the failover
    // cannot scale it down before a stable window of fresh data exists.
    panicStartMs: reconstructed ? nowMs : null,
    maxPanicPods: 0,
    delay: [],
    lastDesired: reconstructed ? 0 : kpaClamp(spec.initial, spec.min, spec.max),
  };
}

/**
 * Records the total observed concurrency (in flight + queued, summed over data planes) at nowMs.
 * Several records in one 1 s bucket are averaged. A record older than the stable window behind
 * the newest one is ignored.
 */
export function kpaRecord(
  state: KpaState,
  spec: ScalingSpec,
  observedConcurrency: number,
  nowMs: number,
): KpaState {
  // Checked before a message is built: this runs for every active function every second.
  if (!(observedConcurrency >= 0 && Number.isFinite(observedConcurrency))) assert(false, `kpaRecord: observed ${observedConcurrency}`);
  const length = kpaStableBuckets(spec);
  const bucket = Math.floor(nowMs / bucketMs);
  const last = state.lastBucket;
  if (last !== null && bucket <= last - length) return state;
  const isNewest = last === null || bucket >= last;
  const unobserved = state.ring.bucketIds.length === 0;
  if (observedConcurrency === 0 && unobserved) {
    // A zero into a window never observed changes no average (an empty window reads 0, as a
    // window of zeros does), so the window is allocated by the first demand, not by the CP's
    // first tick of a function nobody has invoked. Only the zeros of the newest bucket are
    // counted: a demand recorded later in that bucket is averaged with them.
    if (last === null || bucket > last) state.unobservedZeros = 1;
    else if (bucket === last) state.unobservedZeros += 1;
  } else {
    const ring = kpaRingFor(state.ring, length, last);
    const slot = kpaSlot(bucket, length);
    if (ring.bucketIds[slot] !== bucket) {
      ring.bucketIds[slot] = bucket;
      ring.sums[slot] = 0;
      ring.counts[slot] = unobserved && bucket === last ? state.unobservedZeros : 0;
    }
    ring.sums[slot] += observedConcurrency;
    ring.counts[slot] += 1;
    state.ring = ring;
    state.unobservedZeros = 0;
  }
  // The state is consumed (module header): its fields are updated in place, no copy per record.
  state.stableFirstBucket = kpaFirstBucket(state.stableFirstBucket, last, bucket, length);
  state.panicFirstBucket = kpaFirstBucket(state.panicFirstBucket, last, bucket, kpaPanicBuckets(spec, length));
  if (observedConcurrency > 0) state.lastDemandBucket = Math.max(bucket, state.lastDemandBucket ?? bucket);
  if (isNewest) {
    state.lastBucket = bucket;
    state.latestObserved = observedConcurrency;
  }
  return state;
}

/** Sandboxes the requests in flight or queued now need; 0 without a floor or a concurrency limit. */
function kpaQueueFloor(input: KpaDecideInput): number {
  if (input.queueFloor === undefined || input.concurrency <= 0) return 0;
  if (!(Number.isFinite(input.queueFloor) && input.queueFloor >= 0)) assert(false, `kpaDecide: queueFloor ${input.queueFloor}`);
  return Math.ceil(input.queueFloor / input.concurrency - ceilEpsilon);
}

/**
 * Gives the window back once it holds nothing but zeros: when no bucket of the ring, which ends
 * at the newest bucket, got a value above 0, every average reads 0, as the shared empty ring's
 * do, so the ring is dropped for it and the zeros of the newest bucket are kept as
 * `unobservedZeros` (what the empty ring counts). The next demand allocates a window again.
 * O(1); the state is consumed, as by a record. Without it, a function invoked once keeps its
 * window (three arrays of stableWindowS slots, ~1.6 KiB at 60 s) for as long as it exists.
 *
 *   ring (length 6), newest bucket 20, last demand in bucket 14 (≤ 20 − 6): released
 *   last demand in bucket 15: kept (bucket 15 is still in the window)
 */
export function kpaRelease(state: KpaState): KpaState {
  const length = state.ring.bucketIds.length;
  const last = state.lastBucket;
  if (length === 0 || last === null) return state;
  if (state.lastDemandBucket !== null && state.lastDemandBucket > last - length) return state;
  const slot = kpaSlot(last, length);
  state.unobservedZeros = state.ring.bucketIds[slot] === last ? state.ring.counts[slot] : 0;
  state.ring = unobservedRing;
  return state;
}

/**
 * One KPA decision (workload-and-policies §3.4). Steps, in order:
 *   1. averages, bounds, dspc / dppc           5. scale from zero (readyCount 0, fresh demand)
 *   2. panic entry / extension / exit           6. queue floor (when given)
 *   3. stable or max(stable, panic)             7. scale-down delay (max over the delay window)
 *   4. failover floor, panic high-water mark    8. holds: grace at 1, initial scale; clamp
 */
export function kpaDecide(
  state: KpaState,
  input: KpaDecideInput,
): { decision: ScaleDecision; state: KpaState } {
  const { spec, readyCount, nowMs } = input;
  if (!(Number.isInteger(readyCount) && readyCount >= 0)) assert(false, `kpaDecide: readyCount ${readyCount}`);
  if (!(spec.min <= spec.max)) assert(false, `kpaDecide: min ${spec.min} > max ${spec.max}`);
  // The measurement and the panic step write into scratch records (this is synchronous and
  // pure); the decision copies what its reason names.
  const m = kpaMeasure(state, input, measureScratch);
  const panic = kpaPanicStep(state, spec, m, nowMs, panicScratch);
  const d = new KpaDecision(spec, m, panic.panicking);
  let desired = panic.panicking ? Math.max(m.stablePods, m.panicPods) : m.stablePods;
  if (state.noScaleDownUntilMs !== null && nowMs < state.noScaleDownUntilMs) {
    if (readyCount > desired) d.failoverReady = readyCount;
    desired = Math.max(desired, readyCount);
  }
  let maxPanicPods = panic.maxPanicPods;
  if (panic.panicking) {
    if (desired < maxPanicPods) d.highWater = maxPanicPods;
    maxPanicPods = Math.max(maxPanicPods, desired);
    desired = maxPanicPods;
  }
  const fromZero = kpaFromZero(state, m, readyCount);
  if (fromZero > desired) {
    d.observed = state.latestObserved;
    d.fromZero = fromZero;
    desired = fromZero;
  }
  const floor = kpaQueueFloor(input);
  if (floor > desired) {
    d.queueFloor = input.queueFloor!;
    d.floor = floor;
    desired = floor;
  }
  const delayed = kpaDelayStep(state.delay, spec, desired, m.nowBucket);
  if (delayed > desired) d.delayHolds = delayed;
  desired = delayed;
  d.idleMs = kpaGraceHold(state, spec, desired, readyCount, nowMs);
  if (d.idleMs !== null) desired = 1;
  if (nowMs < state.initialHoldUntilMs && desired < spec.initial) {
    d.initialHeld = true;
    desired = spec.initial;
  }
  const clamped = kpaClamp(desired, spec.min, spec.max);
  d.clamped = clamped !== desired;
  d.desired = clamped;

  // The state is consumed (module header): updated in place, no copy per decision.
  state.panicStartMs = panic.panicStartMs;
  state.maxPanicPods = panic.panicking ? maxPanicPods : 0;
  state.lastDesired = clamped;
  return { decision: d, state };
}

/** target = max(0.01, total × targetUtilization); total = concurrency, or 100 if unlimited. */
export function kpaTarget(targetUtilization: number, concurrency: number): number {
  const total = concurrency > 0 ? concurrency : kpaUnlimitedConcurrencyTotal;
  return Math.max(kpaTargetMin, total * targetUtilization);
}

/**
 * Linear window average (Knative's `WindowAverage`): the sum of the buckets in
 * (endBucket − window, endBucket] at or after `firstBucket`, divided by the number of buckets
 * since `firstBucket`, capped at the window. Missing buckets count as 0, including a trailing
 * gap: a data plane that stopped reporting reports no demand. (Knative's collector writes every
 * second, so it never sees a trailing gap; it shrinks the divisor there instead.)
 *
 * Example: window 6, first write at bucket 10, buckets 10..12 = 4, 0 (gap), 2; at bucket 12
 * the average is (4 + 0 + 2) / 3 = 2; at bucket 20 it is (0 + … + 0) / 6 = 0.
 */
export function kpaWindowAverage(
  ring: KpaRing,
  firstBucket: number | null,
  endBucket: number,
  windowBuckets: number,
): number {
  if (firstBucket === null) return 0;
  const length = ring.bucketIds.length;
  const window = Math.min(windowBuckets, length);
  const divisor = Math.min(endBucket - firstBucket + 1, window);
  if (divisor <= 0) return 0;
  let sum = 0;
  for (let bucket = Math.max(endBucket - window + 1, firstBucket); bucket <= endBucket; bucket++) {
    const slot = kpaSlot(bucket, length);
    if (ring.bucketIds[slot] === bucket && ring.counts[slot] > 0) {
      sum += ring.sums[slot] / ring.counts[slot];
    }
  }
  return sum / divisor;
}

interface KpaMeasurement {
  nowBucket: number;
  target: number;
  stableAvg: number;
  panicAvg: number;
  ready: number; // R = max(1, readyCount)
  maxUp: number;
  maxDown: number;
  dspc: number;
  dppc: number;
  stablePods: number;
  panicPods: number;
  panicWindowBuckets: number;
}

/**
 * Scratch records of kpaDecide's steps. A decision runs for every active function every tick
 * (about 12,000 a second at 3,000 cold starts/s); an object per step per decision was garbage
 * for the young generation to count against the next scavenge.
 */
const measureScratch: KpaMeasurement = {
  nowBucket: 0, target: 0, stableAvg: 0, panicAvg: 0, ready: 1, maxUp: 0, maxDown: 0, dspc: 0, dppc: 0, stablePods: 0, panicPods: 0, panicWindowBuckets: 1,
};
const panicScratch: KpaPanicOutcome = { panicking: false, panicStartMs: null, maxPanicPods: 0 };

/** Step 1: averages, rate bounds and the raw stable / panic pod counts, written into `m`. */
function kpaMeasure(state: KpaState, input: KpaDecideInput, m: KpaMeasurement): KpaMeasurement {
  const { spec } = input;
  const length = Math.min(kpaStableBuckets(spec), state.ring.bucketIds.length);
  const panicWindowBuckets = kpaPanicBuckets(spec, length);
  const nowBucket = Math.floor(input.nowMs / bucketMs);
  const endBucket = Math.max(nowBucket, state.lastBucket ?? nowBucket);
  const target = kpaTarget(spec.targetUtilization, input.concurrency);
  const stableAvg = kpaWindowAverage(state.ring, state.stableFirstBucket, endBucket, length);
  const panicAvg = kpaWindowAverage(
    state.ring,
    state.panicFirstBucket,
    endBucket,
    panicWindowBuckets,
  );
  const ready = Math.max(1, input.readyCount);
  // Rate bounds keep a bad sample from swinging the count; ceil lets a slow rate still add one.
  const maxUp = Math.ceil(spec.maxScaleUpRate * ready);
  const maxDown = Math.floor(ready / spec.maxScaleDownRate);
  const dspc = kpaCeil(stableAvg / target);
  const dppc = kpaCeil(panicAvg / target);
  m.nowBucket = endBucket;
  m.target = target;
  m.stableAvg = stableAvg;
  m.panicAvg = panicAvg;
  m.ready = ready;
  m.maxUp = maxUp;
  m.maxDown = maxDown;
  m.dspc = dspc;
  m.dppc = dppc;
  m.stablePods = kpaClamp(dspc, maxDown, maxUp);
  m.panicPods = kpaClamp(dppc, maxDown, maxUp);
  m.panicWindowBuckets = panicWindowBuckets;
  return m;
}

/** The panic step's outcome (written into one scratch record: no object per step). */
interface KpaPanicOutcome {
  panicking: boolean;
  panicStartMs: number | null;
  maxPanicPods: number;
}

/**
 * Step 2. Entering or staying over the threshold refreshes panicStartMs; panic ends only when
 * not over the threshold and a whole stable window has passed since the last over-threshold
 * tick (the surge has then reached the stable average). Written into `out`.
 */
function kpaPanicStep(
  state: KpaState,
  spec: ScalingSpec,
  m: KpaMeasurement,
  nowMs: number,
  out: KpaPanicOutcome,
): KpaPanicOutcome {
  const over = m.dppc / m.ready >= spec.panicThreshold;
  const start = state.panicStartMs;
  if (over) return kpaSetPanic(out, true, nowMs, state.maxPanicPods);
  if (start === null) return kpaSetPanic(out, false, null, 0);
  if (start + spec.stableWindowS * 1000 < nowMs) return kpaSetPanic(out, false, null, 0);
  return kpaSetPanic(out, true, start, state.maxPanicPods);
}

function kpaSetPanic(out: KpaPanicOutcome, panicking: boolean, panicStartMs: number | null, maxPanicPods: number): KpaPanicOutcome {
  out.panicking = panicking;
  out.panicStartMs = panicStartMs;
  out.maxPanicPods = maxPanicPods;
  return out;
}

/**
 * Step 5. With no ready sandbox and fresh demand (newest record within the panic window), want
 * at least ceil(observed / target), bounded: the first request must not wait for averages.
 * Returns 0 when the rule does not apply.
 */
function kpaFromZero(state: KpaState, m: KpaMeasurement, readyCount: number): number {
  if (readyCount > 0 || state.latestObserved <= 0 || state.lastBucket === null) return 0;
  if (m.nowBucket - state.lastBucket >= m.panicWindowBuckets) return 0;
  return kpaClamp(kpaCeil(state.latestObserved / m.target), Math.max(1, m.maxDown), m.maxUp);
}

/**
 * Step 6. Records the pre-delay desired in its 1 s bucket of `window` (in place: the window is
 * the consumed state's) and returns the maximum over the buckets in (now − delay, now]. With
 * delay 4 s and ticks every 2 s, a drop from 5 to 1 at t = 10 s is applied at t = 14 s.
 */
function kpaDelayStep(
  window: { bucket: number; desired: number }[],
  spec: ScalingSpec,
  desired: number,
  nowBucket: number,
): number {
  if (spec.scaleDownDelayS <= 0) {
    window.length = 0;
    return desired;
  }
  const delayBuckets = Math.max(1, Math.ceil(spec.scaleDownDelayS));
  let same = -1;
  let kept = 0;
  for (let i = 0; i < window.length; i += 1) {
    const e = window[i]!;
    if (e.bucket === nowBucket) {
      if (same < 0) same = e.desired;
    } else if (e.bucket > nowBucket - delayBuckets && e.bucket < nowBucket) {
      window[kept++] = e;
    }
  }
  window.length = kept;
  window.push({ bucket: nowBucket, desired: Math.max(desired, same < 0 ? 0 : same) });
  let max = 0;
  for (const e of window) max = Math.max(max, e.desired);
  return max;
}

/**
 * Step 7a. Scale to zero waits until there has been no demand for the grace period (the stable
 * average turned 0 when the last demand bucket left the window); until then one sandbox stays.
 * Nothing is held when nothing is up or wanted. Returns how long the function has been idle when
 * it is held at 1, else null. (Step 7b, in kpaDecide: the initial scale is a floor for one
 * stable window after creation.)
 */
function kpaGraceHold(state: KpaState, spec: ScalingSpec, desired: number, readyCount: number, nowMs: number): number | null {
  if (desired !== 0 || (state.lastDesired <= 0 && readyCount <= 0)) return null;
  const windowMs = kpaStableBuckets(spec) * bucketMs;
  const zeroSinceMs =
    state.lastDemandBucket === null
      ? state.startedAtMs
      : state.lastDemandBucket * bucketMs + windowMs;
  const idleMs = nowMs - zeroSinceMs;
  return idleMs < spec.scaleToZeroGraceS * 1000 ? idleMs : null;
}

/**
 * A decision and the figures its reason names. The reason is built when it is read (`fn get`,
 * the debug log), not at every decision: the CP decides for every active function every tick
 * (about 12,000 decisions a second at 3,000 cold starts/s), and almost no reason is read.
 * Built eagerly, the strings made the core's ticks 25-75 % slower (microbenchmark, 20,000
 * active functions: 922-961 ms of ticks against 540-750 ms).
 */
class KpaDecision implements ScaleDecision {
  desired = 0;
  readonly mode: 'stable' | 'panic';
  readonly stableAvg: number;
  readonly panicAvg: number;
  readonly target: number;
  private readonly maxUp: number;
  private readonly maxDown: number;
  private readonly dspc: number;
  private readonly dppc: number;
  private readonly stablePods: number;
  private readonly ready: number;
  /** What moved `desired` after the base step, in order; -1, null or false: that step did not. */
  failoverReady = -1;
  highWater = -1;
  observed = 0;
  fromZero = -1;
  queueFloor = 0;
  floor = -1;
  delayHolds = -1;
  idleMs: number | null = null;
  initialHeld = false;
  clamped = false;

  constructor(private readonly spec: ScalingSpec, m: KpaMeasurement, panicking: boolean) {
    this.mode = panicking ? 'panic' : 'stable';
    this.stableAvg = m.stableAvg;
    this.panicAvg = m.panicAvg;
    this.target = m.target;
    this.maxUp = m.maxUp;
    this.maxDown = m.maxDown;
    this.dspc = m.dspc;
    this.dppc = m.dppc;
    this.stablePods = m.stablePods;
    this.ready = m.ready;
  }

  get bounds(): { maxUp: number; maxDown: number } {
    return { maxUp: this.maxUp, maxDown: this.maxDown };
  }

  get reason(): string {
    const spec = this.spec;
    const reasons = [this.baseReason()];
    if (this.failoverReady >= 0) reasons.push(`no scale-down after failover: ready ${this.failoverReady}`);
    if (this.highWater >= 0) reasons.push(`panic holds high-water ${this.highWater}`);
    if (this.fromZero >= 0) reasons.push(`scale from zero: observed ${kpaFmt(this.observed)} → ${this.fromZero}`);
    if (this.floor >= 0) reasons.push(`queue floor: ${this.queueFloor} in flight or queued → ${this.floor}`);
    if (this.delayHolds >= 0) reasons.push(`scale-down delay ${spec.scaleDownDelayS} s holds ${this.delayHolds}`);
    if (this.idleMs !== null) {
      reasons.push(`held at 1: idle ${kpaFmt(Math.max(0, this.idleMs) / 1000)} s < grace ${spec.scaleToZeroGraceS} s`);
    }
    if (this.initialHeld) reasons.push(`initial scale ${spec.initial} held for a stable window after creation`);
    if (this.clamped) reasons.push(`clamped to [${spec.min}, ${spec.max}]`);
    return reasons.join('; ');
  }

  private baseReason(): string {
    const target = kpaFmt(this.target);
    if (this.mode === 'stable') {
      const bounded = this.stablePods !== this.dspc ? ` bounded by [${this.maxDown}, ${this.maxUp}]` : '';
      return `stable: stableAvg ${this.stableAvg.toFixed(1)} / target ${target} = ${this.dspc}${bounded}`;
    }
    const over = this.dppc / this.ready >= this.spec.panicThreshold;
    const relation = over ? '≥' : '<';
    return (
      `panic: panicAvg ${this.panicAvg.toFixed(1)} / target ${target} = ${this.dppc} ${relation} ` +
      `${this.spec.panicThreshold.toFixed(1)}×ready ${this.ready}` +
      (over ? '' : `, held ${this.spec.stableWindowS} s after the last surge`)
    );
  }
}

function kpaStableBuckets(spec: ScalingSpec): number {
  return Math.max(1, Math.ceil(spec.stableWindowS));
}

function kpaPanicBuckets(spec: ScalingSpec, stableBuckets: number): number {
  return Math.min(stableBuckets, Math.max(1, Math.ceil(spec.panicWindowS)));
}

/** A series restarts after a whole window without records (Knative resets `firstWrite`). */
function kpaFirstBucket(
  first: number | null,
  last: number | null,
  bucket: number,
  windowBuckets: number,
): number {
  if (first === null || last === null) return bucket;
  if (bucket - last >= windowBuckets) return bucket;
  return Math.min(first, bucket);
}

/**
 * The ring to write into: the state's own (the state is consumed, see the module header), or a
 * resized copy when the stable window changed (keeps the buckets still inside).
 */
function kpaRingFor(ring: KpaRing, length: number, lastBucket: number | null): KpaRing {
  if (ring.bucketIds.length === length) return ring;
  const out: KpaRing = {
    bucketIds: new Array<number>(length).fill(-1),
    sums: new Array<number>(length).fill(0),
    counts: new Array<number>(length).fill(0),
  };
  for (let slot = 0; slot < ring.bucketIds.length; slot++) {
    const bucket = ring.bucketIds[slot];
    if (bucket < 0 || lastBucket === null || bucket <= lastBucket - length) continue;
    const to = kpaSlot(bucket, length);
    out.bucketIds[to] = bucket;
    out.sums[to] = ring.sums[slot];
    out.counts[to] = ring.counts[slot];
  }
  return out;
}

function kpaSlot(bucket: number, length: number): number {
  return ((bucket % length) + length) % length;
}

/** ceil with the float guard; never −0 (strict asserts tell −0 from 0). */
function kpaCeil(x: number): number {
  return Math.max(0, Math.ceil(x - ceilEpsilon));
}

function kpaClamp(x: number, lo: number, hi: number): number {
  return Math.min(Math.max(x, lo), hi);
}

/** 1 → "1", 0.7 → "0.7", 2.25 → "2.25": short numbers for reasons. */
function kpaFmt(x: number): string {
  return String(Math.round(x * 100) / 100);
}

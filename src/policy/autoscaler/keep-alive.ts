/**
 * @module policy/autoscaler/keep-alive
 * The hybrid histogram keep-alive policy of Shahrad et al., "Serverless in the Wild" (ATC'20),
 * as a pure state machine per function. It never removes a sandbox: it is a floor of one ready
 * sandbox beside the KPA, held in a window after the function goes idle, so that a function
 * invoked every few minutes finds a sandbox instead of cold-starting each time. The KPA alone
 * scales such a function to zero a stable window after each invocation (as the reference does).
 *
 * Per function it keeps a histogram of idle times (from the end of one busy spell, no request
 * in flight or queued, to the next request) in 1-minute bins over `keepAliveWindowS`. From it:
 *
 *   idle since ──── pre-warm ────┬──────── keep-alive ────────┬──▶ time
 *   (last request done)   nothing kept    one sandbox held      nothing kept
 *
 *   - histogram representative (enough idle times, concentrated: coefficient of variation of
 *     the bin counts at least `representativeCvMin`): pre-warm = the 5th percentile of idle
 *     times less 10 %, keep-alive = the 99th percentile plus 10 %, less the pre-warm;
 *   - not representative (few idle times, or spread flat): pre-warm 0, keep-alive the whole
 *     window (the paper's "standard keep-alive");
 *   - most idle times longer than the window: nothing is held (the paper predicts these with
 *     ARIMA; not built here, so such a function scales to zero as without the policy).
 *
 * Across a CP failover: the leader stores each function's bins (not when it went idle: that is
 * its own monotonic time) a few seconds after they change, and a new leader starts from them
 * (`keepAliveRestoredState`). A sandbox the new leader adopts starts an idle spell at the
 * adoption (`keepAliveAdopt`): the spell's true start is unknown but earlier, so the sandbox is
 * held from the adoption, without a pre-warm gap, to where the windows end at the latest, and
 * the spell's idle time is not recorded. Without that, the KPA would scale the sandbox the old
 * leader held to zero one stable window after the takeover.
 *
 * Invariants: plain data; `keepAliveObserve` consumes the state it is given (writes in place);
 * `keepAliveFloor` is a pure read. No clock, no I/O: callers pass `nowMs`.
 *
 * Call pattern (the control plane's scaler):
 *   state = keepAliveObserve(state, busy, nowMs, windowS)   on every record and decision
 *   { floor, wakeAtMs } = keepAliveFloor(state, nowMs, windowS)   at each decision
 *   state = keepAliveAdopt(state, nowMs)   when it adopts a sandbox of the function
 *   state = keepAliveRestoredState(bins, samples, outOfRange)   from a stored history
 */

/** Width of one histogram bin (the paper's). */
export const keepAliveBinMs = 60_000;
/** Idle times to see before the histogram's percentiles are trusted over the whole window. */
export const keepAliveSamplesMin = 5;
/**
 * Coefficient of variation of the bin counts at and above which the histogram is trusted: all
 * idle times in one bin of 20 give 4.4, spread evenly 0.
 */
export const representativeCvMin = 2;
/** Percentiles of idle times that set the pre-warm and the end of the keep-alive (the paper's). */
const headPercentile = 0.05;
const tailPercentile = 0.99;
/** Margin taken off the head and added to the tail (the paper's 10 %). */
const marginFraction = 0.1;
/** A bin reaching this halves every bin: the shape is kept and older idle times weigh less. */
const binCountMax = 0xffff;

export interface KeepAliveState {
  /** Idle times per 1-minute bin, bins = ceil(window / 1 min); null until the first idle time. */
  bins: number[] | null;
  /** Idle times recorded in the bins, and idle times longer than the window. */
  samples: number;
  outOfRange: number;
  /** Whether the function has a request in flight or queued (or had one in the last report). */
  busy: boolean;
  /** When the latest busy spell ended; -1 before the first one. */
  idleSinceMs: number;
  /** Whether idleSinceMs is when the function went idle (not when its sandbox was adopted). */
  idleStartKnown: boolean;
}

export interface KeepAliveWindows {
  prewarmMs: number;
  keepAliveMs: number;
  /** How the windows were chosen, for `fn get` and logs. */
  basis: 'histogram' | 'standard' | 'out-of-range';
}

export function keepAliveInitialState(): KeepAliveState {
  return { bins: null, samples: 0, outOfRange: 0, busy: false, idleSinceMs: -1, idleStartKnown: false };
}

/** The idle times a previous leader stored (counts checked by the store's reader). */
export function keepAliveRestoredState(bins: readonly number[], samples: number, outOfRange: number): KeepAliveState {
  return { bins: [...bins], samples, outOfRange, busy: false, idleSinceMs: -1, idleStartKnown: false };
}

/**
 * A sandbox of the function was adopted at nowMs (a new leader after a CP failover): with no
 * idle spell under way, one starts at nowMs whose true start is unknown, so the floor holds the
 * sandbox from nowMs and the next busy spell records no idle time. `state` null: no history.
 */
export function keepAliveAdopt(state: KeepAliveState | null, nowMs: number): KeepAliveState {
  const s = state ?? keepAliveInitialState();
  if (!s.busy && s.idleSinceMs < 0) s.idleSinceMs = nowMs;
  return s;
}

/** Bins of a window: one per started minute. */
export function keepAliveBinCount(windowS: number): number {
  return Math.max(1, Math.ceil((windowS * 1000) / keepAliveBinMs));
}

/**
 * Records whether the function is busy at nowMs. A busy spell that starts after an idle one
 * records the idle time; the first busy spell records none (nothing was idle before it), nor
 * the first after an adoption (the idle spell's start is unknown).
 */
export function keepAliveObserve(state: KeepAliveState, busy: boolean, nowMs: number, windowS: number): KeepAliveState {
  if (busy === state.busy) return state;
  state.busy = busy;
  if (!busy) {
    state.idleSinceMs = nowMs;
    state.idleStartKnown = true;
    return state;
  }
  if (!state.idleStartKnown) return state;
  const idleMs = Math.max(0, nowMs - state.idleSinceMs);
  const n = keepAliveBinCount(windowS);
  // The window changed since the bins were made: what was counted was counted against another
  // range, so the histogram starts again.
  if (state.bins !== null && state.bins.length !== n) {
    state.bins = null;
    state.samples = 0;
    state.outOfRange = 0;
  }
  const bin = Math.floor(idleMs / keepAliveBinMs);
  if (bin >= n) {
    state.outOfRange += 1;
    return state;
  }
  if (state.bins === null) state.bins = new Array<number>(n).fill(0);
  const bins = state.bins;
  if (bins[bin]! >= binCountMax) {
    let sum = 0;
    for (let i = 0; i < bins.length; i += 1) {
      bins[i] = bins[i]! >> 1;
      sum += bins[i]!;
    }
    state.samples = sum;
  }
  bins[bin]! += 1;
  state.samples += 1;
  return state;
}

/** Coefficient of variation (population standard deviation over mean) of the bin counts. */
export function binCv(bins: readonly number[]): number {
  let sum = 0;
  for (const c of bins) sum += c;
  if (sum === 0) return 0;
  const mean = sum / bins.length;
  let sq = 0;
  for (const c of bins) sq += (c - mean) * (c - mean);
  return Math.sqrt(sq / bins.length) / mean;
}

/** The bin holding the p-th fraction of the recorded idle times (p in (0, 1]). */
function percentileBin(bins: readonly number[], samples: number, p: number): number {
  const rank = Math.max(1, Math.ceil(p * samples));
  let seen = 0;
  for (let i = 0; i < bins.length; i += 1) {
    seen += bins[i]!;
    if (seen >= rank) return i;
  }
  return bins.length - 1;
}

/** The pre-warm and keep-alive windows the function's idle times call for now. */
export function keepAliveWindows(state: KeepAliveState, windowS: number): KeepAliveWindows {
  const windowMs = windowS * 1000;
  if (state.outOfRange > state.samples) return { prewarmMs: 0, keepAliveMs: 0, basis: 'out-of-range' };
  const bins = state.bins;
  if (bins === null || state.samples < keepAliveSamplesMin || binCv(bins) < representativeCvMin) {
    return { prewarmMs: 0, keepAliveMs: windowMs, basis: 'standard' };
  }
  // The head is a bin's lower edge and the tail its upper edge: an idle time in bin i lasted
  // between i and i + 1 minutes.
  const headMs = percentileBin(bins, state.samples, headPercentile) * keepAliveBinMs;
  const tailMs = Math.min(windowMs, (percentileBin(bins, state.samples, tailPercentile) + 1) * keepAliveBinMs);
  const prewarmMs = Math.floor(headMs * (1 - marginFraction));
  const endMs = Math.min(windowMs, Math.ceil(tailMs * (1 + marginFraction)));
  return { prewarmMs, keepAliveMs: Math.max(0, endMs - prewarmMs), basis: 'histogram' };
}

/**
 * The sandboxes the policy holds at nowMs (0 or 1) and when that changes next (0: not before
 * the function's next busy spell). Busy, or never busy: 0 (the KPA serves demand).
 */
export function keepAliveFloor(state: KeepAliveState, nowMs: number, windowS: number): { floor: 0 | 1; wakeAtMs: number } {
  if (state.busy || state.idleSinceMs < 0 || windowS <= 0) return { floor: 0, wakeAtMs: 0 };
  const w = keepAliveWindows(state, windowS);
  if (w.keepAliveMs === 0) return { floor: 0, wakeAtMs: 0 };
  const endMs = state.idleSinceMs + w.prewarmMs + w.keepAliveMs;
  // An adopted sandbox's spell began before idleSinceMs: it may be past its pre-warm already.
  const startMs = state.idleStartKnown ? state.idleSinceMs + w.prewarmMs : state.idleSinceMs;
  if (nowMs < startMs) return { floor: 0, wakeAtMs: startMs };
  if (nowMs < endMs) return { floor: 1, wakeAtMs: endMs };
  return { floor: 0, wakeAtMs: 0 };
}

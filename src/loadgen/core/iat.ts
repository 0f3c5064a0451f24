/**
 * @module loadgen/core/iat
 * Per-minute invocation counts -> arrival times, exactly as InVitro's
 * `pkg/generator/specification.go` (workload-and-policies §1.2). Pure: the Rng is passed in.
 *
 * One minute with n invocations becomes a gap array of n + 1 entries:
 *
 *   minute start                                        minute end
 *   |--g0--*--g1--*--g2-- ... --*--gn--------------------|
 *          ^ first invocation        ^ last      gn runs to the minute end
 *
 * Without `_shift`, g0 = 0: the first invocation fires exactly on the minute boundary. With
 * `_shift`, the points are rotated by a random split s in [0, 60 s) so the per-minute burst
 * disappears. Either way the n + 1 gaps sum to 60 s, so minutes stay aligned.
 * Must not import anything that does I/O.
 */
import type { Rng } from '../../shared/rng.js';

export type IatDistribution = 'equidistant' | 'uniform' | 'exponential';

export interface IatMode {
  distribution: IatDistribution;
  /** InVitro's `_shift` variants: rotate each minute by a random split point. */
  shift: boolean;
}

/** One trace column = one minute (InVitro's default `minute` granularity). */
export const minuteUs = 60_000_000;

const distributions: readonly IatDistribution[] = ['equidistant', 'uniform', 'exponential'];
const shiftSuffix = '_shift';

/** Parses `exponential`, `uniform_shift`, ...; null when the name is not one of them. */
export function parseIatMode(name: string): IatMode | null {
  const shift = name.endsWith(shiftSuffix);
  const base = shift ? name.slice(0, -shiftSuffix.length) : name;
  const distribution = distributions.find((d) => d === base);
  return distribution === undefined ? null : { distribution, shift };
}

export function iatModeName(mode: IatMode): string {
  return mode.shift ? `${mode.distribution}${shiftSuffix}` : mode.distribution;
}

/**
 * The gap array of one minute in µs: [g0, g1, ..., gn] summing to 60 s (n = 0 gives [60 s]).
 * Draw order follows InVitro: n IAT draws, then (with shift) one split draw.
 */
export function minuteGapsUs(n: number, mode: IatMode, rng: Rng): number[] {
  if (n === 0) return [minuteUs];
  const raw = drawRawIats(n, mode.distribution, rng);
  if (!mode.shift) return [0, ...raw];
  const splitUs = rng.next() * minuteUs;
  return rotateAtSplit(raw, splitUs);
}

/**
 * Absolute arrival offsets in µs from the start of the trace for one function, one entry per
 * invocation, ascending. Minute m's invocations lie in [m·60 s, (m+1)·60 s).
 * InVitro sums the gaps over the whole trace; we restart the sum at every minute boundary,
 * which is the same value without accumulating float rounding over hours of trace.
 */
export function functionArrivalsUs(
  countsPerMinute: readonly number[],
  mode: IatMode,
  rng: Rng,
): { timesUs: Float64Array; minute: Uint32Array } {
  const total = countsPerMinute.reduce((a, b) => a + b, 0);
  const timesUs = new Float64Array(total);
  const minute = new Uint32Array(total);
  let j = 0;
  for (let m = 0; m < countsPerMinute.length; m++) {
    const n = countsPerMinute[m];
    const gaps = minuteGapsUs(n, mode, rng);
    let t = m * minuteUs;
    for (let k = 0; k < n; k++) {
      t += gaps[k];
      timesUs[j] = t;
      minute[j] = m;
      j++;
    }
  }
  return { timesUs, minute };
}

/** n gaps from the distribution, scaled to sum to one minute (equidistant is already exact). */
function drawRawIats(n: number, distribution: IatDistribution, rng: Rng): number[] {
  const iats = new Array<number>(n);
  if (distribution === 'equidistant') {
    iats.fill(minuteUs / n);
    return iats;
  }
  let sum = 0;
  for (let i = 0; i < n; i++) {
    // Exp(1) by inversion; 1 - u is in (0, 1] so the log is finite.
    const x = distribution === 'exponential' ? -Math.log(1 - rng.next()) : rng.next();
    iats[i] = x;
    sum += x;
  }
  // InVitro guards an all-zero draw the same way: avoid dividing by zero.
  const scale = minuteUs / (sum === 0 ? 1 : sum);
  for (let i = 0; i < n; i++) iats[i] *= scale;
  return iats;
}

/**
 * InVitro's rotation: find the first cumulative sum past the split, start the minute with the
 * remainder of that gap, wrap the gaps before it to the end, and close with what is left.
 * Worked example: gaps [20, 20, 20] s, split 30 s -> [10, 20, 20, 10]: points at 10, 30, 50 s.
 */
function rotateAtSplit(iats: number[], splitUs: number): number[] {
  let sum = 0;
  let i = 0;
  for (; i < iats.length; i++) {
    sum += iats[i];
    if (sum > splitUs) break;
  }
  // Float rounding can leave the sum a hair under the split at the last gap; clamp to it.
  if (i === iats.length) i = iats.length - 1;
  const beginningUs = Math.max(0, sum - splitUs);
  const endUs = iats[i] - beginningUs;
  return [beginningUs, ...iats.slice(i + 1), ...iats.slice(0, i), endUs];
}

/**
 * @module loadgen/core/trace-plan
 * Turns parsed trace functions into one time-sorted invocation plan (the precomputed arrival
 * schedule the open-loop sender walks). Column-oriented typed arrays: a 171k-invocation plan
 * costs a few MB and no per-invocation objects.
 *
 * Randomness mirrors InVitro: one IAT generator and one spec generator, both seeded with the
 * same seed, walked function by function in invocations.csv row order. Pure.
 */
import { seededRng } from '../../shared/rng.js';
import { drawExecSpec } from './exec-spec.js';
import { functionArrivalsUs, type IatMode } from './iat.js';
import type { TraceFunction } from './trace-csv.js';

export interface TracePlanOptions {
  warmupMinutes: number;
  experimentMinutes: number;
  iat: IatMode;
  seed: number;
}

/** Invocation i (in send order) is described by entry i of every array. */
export interface TracePlan {
  count: number;
  minutes: number;
  warmupMinutes: number;
  /** Offset from the trace start, µs, ascending. */
  timeUs: Float64Array;
  /** Index into the functions array given to `buildTracePlan`. */
  functionIndex: Uint32Array;
  minute: Uint32Array;
  /** k in InVitro's invocation id `min<m>.inv<k>`: the index within the function's minute. */
  indexInMinute: Uint32Array;
  runtimeMs: Uint32Array;
  memoryMiB: Uint32Array;
}

export function buildTracePlan(
  functions: readonly TraceFunction[],
  o: TracePlanOptions,
): TracePlan {
  const minutes = o.warmupMinutes + o.experimentMinutes;
  const iatRng = seededRng(o.seed);
  const specRng = seededRng(o.seed);
  const perFunction = functions.map((f) => {
    const counts = f.invocationsPerMinute.slice(0, minutes);
    return functionArrivalsUs(counts, o.iat, iatRng);
  });
  const count = perFunction.reduce((a, p) => a + p.timesUs.length, 0);
  const unsorted = emptyColumns(count);
  let j = 0;
  functions.forEach((f, fi) => {
    const { timesUs, minute } = perFunction[fi];
    for (let i = 0; i < timesUs.length; i++, j++) {
      const spec = drawExecSpec(f.runtimeMs, f.memoryMiB, specRng);
      const first = i === 0 || minute[i] !== minute[i - 1];
      unsorted.timeUs[j] = timesUs[i];
      unsorted.functionIndex[j] = fi;
      unsorted.minute[j] = minute[i];
      unsorted.indexInMinute[j] = first ? 0 : unsorted.indexInMinute[j - 1] + 1;
      unsorted.runtimeMs[j] = spec.runtimeMs;
      unsorted.memoryMiB[j] = spec.memoryMiB;
    }
  });
  return { count, minutes, warmupMinutes: o.warmupMinutes, ...sortByTime(unsorted) };
}

/** Phase as InVitro records it: 1 = warm-up minute, 2 = experiment minute. */
export function tracePhase(minute: number, warmupMinutes: number): 1 | 2 {
  return minute < warmupMinutes ? 1 : 2;
}

/** InVitro's invocation id. */
export function invocationId(minute: number, indexInMinute: number): string {
  return `min${minute}.inv${indexInMinute}`;
}

type Columns = Pick<
  TracePlan,
  'timeUs' | 'functionIndex' | 'minute' | 'indexInMinute' | 'runtimeMs' | 'memoryMiB'
>;

function emptyColumns(count: number): Columns {
  return {
    timeUs: new Float64Array(count),
    functionIndex: new Uint32Array(count),
    minute: new Uint32Array(count),
    indexInMinute: new Uint32Array(count),
    runtimeMs: new Uint32Array(count),
    memoryMiB: new Uint32Array(count),
  };
}

/** Stable by time, then function row, then position: simultaneous sends keep trace order. */
function sortByTime(c: Columns): Columns {
  const order = Array.from({ length: c.timeUs.length }, (_, i) => i);
  order.sort((a, b) =>
    c.timeUs[a] - c.timeUs[b] || c.functionIndex[a] - c.functionIndex[b] || a - b);
  const out = emptyColumns(order.length);
  order.forEach((from, to) => {
    out.timeUs[to] = c.timeUs[from];
    out.functionIndex[to] = c.functionIndex[from];
    out.minute[to] = c.minute[from];
    out.indexInMinute[to] = c.indexInMinute[from];
    out.runtimeMs[to] = c.runtimeMs[from];
    out.memoryMiB[to] = c.memoryMiB[from];
  });
  return out;
}

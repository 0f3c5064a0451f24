/**
 * @module loadgen/core/exec-spec
 * Per-invocation runtime and memory, drawn piecewise-uniform between adjacent percentile
 * columns exactly as InVitro's `specification.go::generateExecutionSpecs`, and the
 * deployment-time resource requests of `trace_profiler.go::ApplyResourceLimits`
 * (workload-and-policies §1.3). Pure: the Rng is passed in.
 *
 * Runtime quantile q -> bin:            Memory quantile q -> bin:
 *   q = 0          p0                     q <= 0.01      pct1 exactly
 *   (0, .01]       [p0, p1)               (.01, .05]     [pct1, pct5)
 *   (.01, .25]     [p1, p25)              (.05, .25]     [pct5, pct25)
 *   (.25, .50]     [p25, p50)             (.25, .50]     [pct25, pct50)
 *   (.50, .75]     [p50, p75)             (.50, .75]     [pct50, pct75)
 *   (.75, .99]     [p75, p99)             (.75, .95]     [pct75, pct95)
 *   (.99, 1)       [p99, p100)            (.95, .99]     [pct95, pct99)
 *                                         (.99, 1)       [pct99, pct100)
 * Bounds are truncated to integers first (Go's `int(x)`); equal bounds give that value.
 */
import { sandboxBounds } from '../../config/defaults.js';
import type { Rng } from '../../shared/rng.js';

/** `durations.csv` percentile columns, ms. */
export interface RuntimePercentilesMs {
  p0: number;
  p1: number;
  p25: number;
  p50: number;
  p75: number;
  p99: number;
  p100: number;
}

/** `memory.csv` percentile columns, MB (there is no pct0). */
export interface MemoryPercentilesMiB {
  p1: number;
  p5: number;
  p25: number;
  p50: number;
  p75: number;
  p95: number;
  p99: number;
  p100: number;
}

export interface ExecSpec {
  runtimeMs: number;
  memoryMiB: number;
}

/** InVitro's clamps: `MinExecTimeMilli`, `MaxExecTimeMilli` ("avg. p96 from Wild"), mem quota. */
const execLimits = Object.freeze({
  runtimeMsMin: 1,
  runtimeMsMax: 60_000,
  memoryMiBMin: 1,
  memoryMiBMax: 10_240,
});

/** `ApplyResourceLimits` with `CPULimit=1vCPU` and `OvercommitmentRatio=10`. */
const traceResourceDefaults = Object.freeze({
  cpuLimitMillis: 1000,
  overcommitmentRatio: 10,
});

/** Uniform integer in [trunc(lo), trunc(hi)), or trunc(lo) when the bounds are equal. */
export function randIntBetween(rng: Rng, lo: number, hi: number): number {
  const intLo = Math.trunc(lo);
  const intHi = Math.trunc(hi);
  if (intHi < intLo) throw new RangeError(`percentiles not ascending: ${lo} > ${hi}`);
  return intHi === intLo ? intLo : intLo + rng.int(intHi - intLo);
}

/** The unclamped runtime for quantile q in [0, 1). */
export function drawRuntimeMs(q: number, p: RuntimePercentilesMs, rng: Rng): number {
  if (q === 0) return Math.trunc(p.p0);
  if (q <= 0.01) return randIntBetween(rng, p.p0, p.p1);
  if (q <= 0.25) return randIntBetween(rng, p.p1, p.p25);
  if (q <= 0.5) return randIntBetween(rng, p.p25, p.p50);
  if (q <= 0.75) return randIntBetween(rng, p.p50, p.p75);
  if (q <= 0.99) return randIntBetween(rng, p.p75, p.p99);
  return randIntBetween(rng, p.p99, p.p100);
}

/** The unclamped memory for quantile q in [0, 1). */
export function drawMemoryMiB(q: number, p: MemoryPercentilesMiB, rng: Rng): number {
  if (q <= 0.01) return Math.trunc(p.p1);
  if (q <= 0.05) return randIntBetween(rng, p.p1, p.p5);
  if (q <= 0.25) return randIntBetween(rng, p.p5, p.p25);
  if (q <= 0.5) return randIntBetween(rng, p.p25, p.p50);
  if (q <= 0.75) return randIntBetween(rng, p.p50, p.p75);
  if (q <= 0.95) return randIntBetween(rng, p.p75, p.p95);
  if (q <= 0.99) return randIntBetween(rng, p.p95, p.p99);
  return randIntBetween(rng, p.p99, p.p100);
}

/**
 * One invocation's spec. Draw order is InVitro's: q_run, q_mem, then the runtime bin draw,
 * then the memory bin draw, all from the one spec Rng.
 */
export function drawExecSpec(
  runtime: RuntimePercentilesMs,
  memory: MemoryPercentilesMiB,
  rng: Rng,
): ExecSpec {
  const qRun = rng.next();
  const qMem = rng.next();
  const runtimeMs = clamp(drawRuntimeMs(qRun, runtime, rng), execLimits.runtimeMsMin,
    execLimits.runtimeMsMax);
  const memoryMiB = clamp(drawMemoryMiB(qMem, memory, rng), execLimits.memoryMiBMin,
    execLimits.memoryMiBMax);
  return { runtimeMs, memoryMiB };
}

/**
 * Registration requests: CPU = 1000m / 10 = 100m; memory = trunc(pct100) / 10 in integer
 * division (Go), raised to 1 MiB because our API needs a positive value.
 * Example: pct100 = 670.4 MB -> 670 / 10 = 67 MiB; pct100 = 9.9 -> 0 -> 1 MiB.
 */
export function traceResourceRequests(
  memoryPct100: number,
): { cpuMillis: number; memoryMiB: number } {
  const ratio = traceResourceDefaults.overcommitmentRatio;
  const memoryMiB = Math.trunc(Math.trunc(memoryPct100) / ratio);
  return {
    cpuMillis: clamp(Math.trunc(traceResourceDefaults.cpuLimitMillis / ratio), sandboxBounds.cpuMillisMin, sandboxBounds.cpuMillisMax),
    // InVitro sends 0-7 MiB for small functions; our API refuses less than memoryMiBMin
    // (a sandbox's runtime needs more), so the request is raised, as the InVitro form does.
    memoryMiB: clamp(memoryMiB, sandboxBounds.memoryMiBMin, sandboxBounds.memoryMiBMax),
  };
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

/**
 * @module loadgen/core/trace-metrics
 * Trace-replay metrics as Dirigent's `artifact_evaluation/plot_azure_500.py` computes them
 * (workload-and-policies §1.7), over our per-invocation rows:
 * - scheduling latency = responseTime − actualDuration, µs -> ms, over ALL rows (the script
 *   does not filter failures). actualDuration is the duration the function reported
 *   (`durationMs` in its JSON reply); rows without one fall back to the requested duration for
 *   successes (the emulated runtime sleeps exactly that) and to 0 for failures (InVitro
 *   records 0 when nothing came back).
 * - per-function slowdown: drop warm-up minutes, slowdown = responseTime / requestedDuration,
 *   drop rows with slowdown < 1, geometric mean per function NAME (the script's
 *   `instance.split('-')[0]` key would merge all `trace-func-*` functions; §1.7 says group by
 *   name). The script hard-codes "drop minutes 0-9"; here the warm-up length is a parameter.
 * - failure rate: failed rows / all rows.
 * Percentiles use linear interpolation between order statistics (numpy's default). Pure.
 */

export interface InvocationRow {
  functionName: string;
  invocationId: string;
  phase: 1 | 2;
  minute: number;
  startUnixUs: number;
  responseTimeUs: number;
  requestedDurationUs: number;
  /** From the function's reply; NaN when it reported none. */
  measuredDurationUs: number;
  /** x-dirigent-cold-start; null when the header was absent. */
  coldStart: boolean | null;
  /** x-dirigent-queue-ms; NaN when absent. */
  queueMs: number;
  /** HTTP status, or 0 when no response arrived (then `error` holds the code). */
  status: number;
  error: string;
}

export interface TraceSummary {
  count: number;
  failures: number;
  failureRate: number;
  /** Rows with x-dirigent-cold-start: true, i.e. sandboxes created for a waiting request. */
  sandboxesCreated: number;
  schedulingLatencyMs: { p50: number; p99: number };
  /** Rows whose actual duration came from the function's reply (the rest: fallback). */
  measuredDurationRows: number;
  slowdown: { functions: number; p50: number; p99: number };
  responseTimeMs: { p50: number; p99: number };
  errors: Record<string, number>;
}

function isFailure(row: InvocationRow): boolean {
  return !(row.status >= 200 && row.status < 300);
}

/** The actual duration the script subtracts, µs (see the module comment for fallbacks). */
function actualDurationUs(row: InvocationRow): number {
  if (!Number.isNaN(row.measuredDurationUs)) return row.measuredDurationUs;
  return isFailure(row) ? 0 : row.requestedDurationUs;
}

export function schedulingLatencyMs(row: InvocationRow): number {
  return (row.responseTimeUs - actualDurationUs(row)) / 1000;
}

/** Geometric-mean slowdown per function name, over experiment-phase rows with slowdown >= 1. */
export function slowdownByFunction(rows: readonly InvocationRow[]): Map<string, number> {
  const logSum = new Map<string, { sum: number; n: number }>();
  for (const row of rows) {
    if (row.phase !== 2 || !(row.requestedDurationUs > 0)) continue;
    const slowdown = row.responseTimeUs / row.requestedDurationUs;
    if (!(slowdown >= 1)) continue;
    const acc = logSum.get(row.functionName) ?? { sum: 0, n: 0 };
    acc.sum += Math.log(slowdown);
    acc.n += 1;
    logSum.set(row.functionName, acc);
  }
  const out = new Map<string, number>();
  for (const [name, { sum, n }] of logSum) out.set(name, Math.exp(sum / n));
  return out;
}

/** Linear-interpolation quantile of an ascending array, q in [0, 1]; NaN when empty. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const pos = (n - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function summarizeTrace(rows: readonly InvocationRow[]): TraceSummary {
  const failures = rows.filter(isFailure).length;
  const sched = Float64Array.from(rows, schedulingLatencyMs).sort();
  const response = Float64Array.from(rows, (r) => r.responseTimeUs / 1000).sort();
  const slowdowns = Float64Array.from(slowdownByFunction(rows).values()).sort();
  const errors = new Map<string, number>();
  for (const row of rows) {
    if (!isFailure(row)) continue;
    const key = row.status === 0 ? row.error : String(row.status);
    errors.set(key, (errors.get(key) ?? 0) + 1);
  }
  return {
    count: rows.length,
    failures,
    failureRate: rows.length === 0 ? 0 : failures / rows.length,
    sandboxesCreated: rows.filter((r) => r.coldStart === true).length,
    schedulingLatencyMs: { p50: quantileSorted(sched, 0.5), p99: quantileSorted(sched, 0.99) },
    measuredDurationRows: rows.filter((r) => !Number.isNaN(r.measuredDurationUs)).length,
    slowdown: {
      functions: slowdowns.length,
      p50: quantileSorted(slowdowns, 0.5),
      p99: quantileSorted(slowdowns, 0.99),
    },
    responseTimeMs: { p50: quantileSorted(response, 0.5), p99: quantileSorted(response, 0.99) },
    errors: Object.fromEntries([...errors.entries()].sort(([a], [b]) => a.localeCompare(b))),
  };
}

/** Ascending scheduling latencies (ms), for the CDF plot. */
export function schedulingLatenciesSortedMs(rows: readonly InvocationRow[]): Float64Array {
  return Float64Array.from(rows, schedulingLatencyMs).sort();
}

/**
 * @module loadgen/core/stats
 * Latency recording and the summary every bench prints. Latencies are recorded in integer
 * microseconds into HDR histograms (3 significant digits: constant memory, O(1) record, no
 * per-request allocation) and reported in milliseconds. Pure: times are passed in.
 */
import hdr from 'hdr-histogram-js';
import type { Histogram } from 'hdr-histogram-js';

export type { Histogram };

const histogramLimits = Object.freeze({
  /** One hour in µs: anything slower is clamped (a 504 arrives long before). */
  valueUsMax: 3_600_000_000,
  significantDigits: 3,
});

export interface LatencySummaryMs {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Per-component CPU seconds over the run; null when the PID was unknown or vanished. */
export interface CpuSeconds {
  controlPlane: number | null;
  dataPlane: number | null;
  workers: number | null;
  loadgen: number;
}

/** The one JSON object a single bench run prints (`--json`). */
export interface BenchSummary {
  bench: 'cold' | 'warm' | 'register' | 'generator';
  /** null for closed loops: they have no offered rate. */
  offeredRps: number | null;
  achievedRps: number;
  latencyMs: LatencySummaryMs;
  /** Non-2xx statuses by number, transport failures by error code. */
  errors: Record<string, number>;
  /** For each kind of error that came with a body, the message of the first one. */
  errorMessages?: Record<string, string>;
  /** Requests counted (sent in the measured window). */
  count: number;
  ok: number;
  durationS: number;
  cpuSeconds: CpuSeconds;
  [extra: string]: unknown;
}

export function newHistogram(): Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: histogramLimits.valueUsMax,
    numberOfSignificantValueDigits: histogramLimits.significantDigits,
    useWebAssembly: false,
  });
}

/** Records a latency given in ms (fractional) as integer µs, clamped to the histogram range. */
export function recordMs(h: Histogram, ms: number): void {
  const us = Math.round(ms * 1000);
  h.recordValue(Math.min(histogramLimits.valueUsMax, Math.max(0, us)));
}

/** p50/p90/p99/max in ms, rounded to µs. All zero for an empty histogram. */
export function summarizeMs(h: Histogram): LatencySummaryMs {
  if (h.totalCount === 0) return { p50: 0, p90: 0, p99: 0, max: 0 };
  const ms = (us: number): number => Math.round(us) / 1000;
  return {
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    max: ms(h.maxValue),
  };
}

/** CDF points (latency ms, cumulative fraction) at fixed percentiles, for plots. */
export function histogramCdfMs(h: Histogram): Array<{ x: number; y: number }> {
  if (h.totalCount === 0) return [];
  return cdfPercentiles.map((p) => ({ x: h.getValueAtPercentile(p) / 1000, y: p / 100 }));
}

/** Denser towards the tail, where latency plots are read. */
const cdfPercentiles = [
  0.1, 1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 97.5, 99, 99.5, 99.9, 99.99, 100,
];

/** Counts outcomes by key; the key is the status ("503") or an error code ("ECONNREFUSED"). */
export function tally(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

export function tallyToObject(counts: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...counts.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

export function errorCount(errors: Record<string, number>): number {
  return Object.values(errors).reduce((a, b) => a + b, 0);
}

/**
 * Achieved throughput of an open loop, from completion times of successful requests:
 * (ok − 1) / (lastDone − firstDone). With a constant latency the completions are spaced like
 * the sends, so a healthy run reports the offered rate even when the run is short; a saturated
 * system spreads completions out and the rate falls. Example: 101 completions from t = 43 ms
 * to t = 1043 ms -> 100 / 1.0 s = 100 rps. With fewer than 2 completions: ok / fallbackS.
 */
export function completionRateRps(ok: number, firstDoneMs: number, lastDoneMs: number,
  fallbackS: number): number {
  const spanMs = lastDoneMs - firstDoneMs;
  if (ok < 2 || !(spanMs > 0)) return fallbackS > 0 ? ok / fallbackS : 0;
  return ((ok - 1) * 1000) / spanMs;
}

/** An error message is cut to this many characters: enough for a reason, not for a page. */
export const errorMessageCharsMax = 300;

/**
 * What an error body says, in one line: the `message` of Dirigent's `{"error": {...}}` (or of
 * `{"error": "..."}` / `{"message": "..."}`), else the text itself; '' for an empty body.
 */
export function errorBodyMessage(text: string): string {
  const trimmed = text.trim();
  if (trimmed === '') return '';
  let message = trimmed;
  try {
    const body = JSON.parse(trimmed) as unknown;
    const found = messageIn(body) ?? messageIn((body as { error?: unknown } | null)?.error);
    if (found !== null) message = found;
  } catch {
    // Not JSON: the text is the message.
  }
  const oneLine = message.replace(/\s+/g, ' ');
  return oneLine.length <= errorMessageCharsMax ? oneLine : `${oneLine.slice(0, errorMessageCharsMax - 1)}…`;
}

function messageIn(v: unknown): string | null {
  if (typeof v === 'string' && v !== '') return v;
  if (v === null || typeof v !== 'object') return null;
  const m = (v as { message?: unknown }).message;
  return typeof m === 'string' && m !== '' ? m : null;
}

/** Whether an HTTP status counts as a success. */
export function isOkStatus(status: number): boolean {
  return status >= 200 && status < 300;
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/**
 * @module loadgen/core/summaries
 * Builds the JSON summaries the benches print from what the recorder and the pacer measured.
 * Pure.
 */
import type { RunRecorder } from './recorder.js';
import { saturationReasons, type SaturationRule } from './saturation.js';
import {
  completionRateRps,
  errorCount,
  histogramCdfMs,
  round,
  summarizeMs,
  tallyToObject,
  type BenchSummary,
  type CpuSeconds,
  type Histogram,
} from './stats.js';

/**
 * A bench whose failed requests pass this fraction of those counted measured a broken cluster,
 * not its speed: it says why and exits non-zero.
 */
export const benchErrorRateMax = 0.01;

/** Why a bench's numbers cannot stand (too many errors, or nothing counted); null when they can. */
export function errorRateVerdict(
  s: { count: number; errors: Record<string, number>; errorMessages?: Record<string, string> },
  errorRateMax = benchErrorRateMax): string | null {
  const failed = errorCount(s.errors);
  if (s.count === 0) return 'no request was counted in the measured window';
  const rate = failed / s.count;
  if (rate <= errorRateMax) return null;
  const kinds = Object.entries(s.errors).map(([k, n]) => {
    const message = s.errorMessages?.[k];
    return message === undefined ? `${k} x${n}` : `${k} x${n} (${message})`;
  }).join(', ');
  return `${failed} of ${s.count} requests failed (${round(rate * 100, 2)} %, limit ` +
    `${round(errorRateMax * 100, 2)} %): ${kinds}`;
}

/** What a bench returns: the summary to print and every run behind it (one unless a sweep). */
export interface BenchRuns {
  summary: BenchSummary;
  runs: BenchSummary[];
}

export interface RunWindow {
  /** Clock reading of the first send and of the last outcome, ms. */
  startMs: number;
  endMs: number;
}

/** Shared fields of every request bench from its recorder. */
function requestSummary(
  bench: BenchSummary['bench'],
  offeredRps: number | null,
  achievedRps: number,
  rec: RunRecorder,
  window: RunWindow,
  cpu: CpuSeconds,
): BenchSummary {
  const summary: BenchSummary = {
    bench,
    offeredRps: offeredRps === null ? null : round(offeredRps, 3),
    achievedRps: round(achievedRps, 2),
    latencyMs: summarizeMs(rec.latency),
    errors: tallyToObject(rec.errors),
    count: rec.counted,
    ok: rec.ok,
    durationS: round((window.endMs - window.startMs) / 1000, 3),
    cpuSeconds: cpu,
    cpuMsPerRequest: cpuPerRequestMs(cpu, rec.counted),
  };
  if (rec.errorMessages.size > 0) summary.errorMessages = Object.fromEntries(rec.errorMessages);
  if (rec.coldStartHeader > 0) {
    summary.coldStarts = rec.coldStartTrue;
    summary.coldStartRatio = round(rec.coldStartTrue / rec.ok, 4);
  }
  if (rec.ok > 0) summary.clientWaitMs = summarizeMs(rec.clientWait);
  if (rec.dpQueue.totalCount > 0) {
    summary.dpQueueMs = summarizeMs(rec.dpQueue);
    summary.beyondQueuesMs = summarizeMs(rec.beyondQueues);
  }
  return attachCdf(summary, rec.latency);
}

/**
 * Achieved rate of an open loop: the spacing of successful completions (see
 * `completionRateRps`), capped by the offered rate times the share that succeeded, since
 * spacing alone overstates a run whose failures cluster (successes early, errors late).
 */
export function openLoopAchievedRps(rec: RunRecorder, offeredRps: number, windowS: number): number {
  const spacingRps = completionRateRps(rec.ok, rec.firstOkDoneMs, rec.lastOkDoneMs, windowS);
  const servedShareRps = rec.counted > 0 ? (offeredRps * rec.ok) / rec.counted : 0;
  return Math.min(spacingRps, servedShareRps);
}

/** Open loop summary; achieved as in `openLoopAchievedRps`. */
export function openLoopSummary(
  bench: BenchSummary['bench'],
  offeredRps: number,
  rec: RunRecorder,
  run: RunWindow & { lateness: Histogram; undrained: number; inflightMax: number },
  cpu: CpuSeconds,
): BenchSummary {
  const achieved = openLoopAchievedRps(rec, offeredRps, (run.endMs - run.startMs) / 1000);
  const summary = requestSummary(bench, offeredRps, achieved, rec, run, cpu);
  summary.sendLatenessMs = summarizeMs(run.lateness);
  summary.inflightMax = run.inflightMax;
  summary.undrained = run.undrained;
  return summary;
}

/** Closed loop: successes started in the measured window divided by its length. */
export function closedLoopSummary(
  bench: BenchSummary['bench'],
  rec: RunRecorder,
  window: RunWindow,
  measuredS: number,
  cpu: CpuSeconds,
): BenchSummary {
  return requestSummary(bench, null, measuredS > 0 ? rec.ok / measuredS : 0, rec, window, cpu);
}

/** Saturation verdict of one open-loop summary. */
export function summaryReasons(s: BenchSummary, rule: SaturationRule): string[] {
  return saturationReasons({
    offeredRps: s.offeredRps ?? 0,
    achievedRps: s.achievedRps,
    p99Ms: s.latencyMs.p99,
    count: s.count,
    errors: errorCount(s.errors),
  }, rule);
}

/**
 * The one JSON object of a sweep: the fields of the highest rate that was NOT saturated (or of
 * the first run if all were), plus every run and where saturation began.
 */
export function sweepSummary(runs: BenchSummary[], saturatedAtRps: number | null,
  reasons: string[]): BenchSummary {
  const sustained = runs.filter((r) => r.offeredRps !== saturatedAtRps);
  const best = sustained.length > 0 ? sustained[sustained.length - 1] : runs[0];
  return { ...best, sweep: true, maxSustainedRps: sustained.length > 0 ? best.offeredRps : null,
    saturatedAtRps, saturationReasons: reasons, runs };
}

function cpuPerRequestMs(cpu: CpuSeconds, count: number) {
  const per = (v: number | null): number | null => (v === null || count === 0 ? null
    : round((v * 1000) / count, 4));
  return {
    controlPlane: per(cpu.controlPlane),
    dataPlane: per(cpu.dataPlane),
    workers: per(cpu.workers),
    loadgen: per(cpu.loadgen),
  };
}

/**
 * Latency CDF points of a run, kept beside the summary (not in its JSON) for `--plot`.
 * A WeakMap so summaries stay plain data.
 */
const cdfBySummary = new WeakMap<BenchSummary, Array<{ x: number; y: number }>>();

function attachCdf(s: BenchSummary, h: Histogram): BenchSummary {
  cdfBySummary.set(s, histogramCdfMs(h));
  return s;
}

export function cdfOf(s: BenchSummary): Array<{ x: number; y: number }> {
  return cdfBySummary.get(s) ?? [];
}

/**
 * @module loadgen/core/format
 * Text output: the per-invocation CSV of a trace replay and the human summaries. Pure.
 */
import { formatLoopDelay, type EventLoopDelayMs } from './loop-delay.js';
import type { BenchSummary, CpuSeconds, LatencySummaryMs } from './stats.js';
import type { InvocationRow, TraceSummary } from './trace-metrics.js';

export const traceCsvHeader = [
  'function', 'invocationId', 'phase', 'startUnixUs', 'responseTimeUs', 'requestedDurationUs',
  'measuredDurationUs', 'coldStart', 'queueMs', 'status', 'error',
].join(',');

/** One CSV line (no newline). Unknown values are empty cells. */
export function traceCsvLine(r: InvocationRow): string {
  return [
    r.functionName,
    r.invocationId,
    r.phase,
    Math.round(r.startUnixUs),
    Math.round(r.responseTimeUs),
    Math.round(r.requestedDurationUs),
    Number.isNaN(r.measuredDurationUs) ? '' : Math.round(r.measuredDurationUs),
    r.coldStart === null ? '' : r.coldStart,
    Number.isNaN(r.queueMs) ? '' : r.queueMs,
    r.status,
    csvCell(r.error),
  ].join(',');
}

function csvCell(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function formatCpu(cpu: CpuSeconds): string {
  const f = (v: number | null): string => (v === null ? 'n/a' : v.toFixed(2));
  return `cpu s: control-plane ${f(cpu.controlPlane)}, data-plane ${f(cpu.dataPlane)}, ` +
    `workers ${f(cpu.workers)}, loadgen ${f(cpu.loadgen)}`;
}

function formatErrors(errors: Record<string, number>, messages: Record<string, string> = {}): string {
  const entries = Object.entries(errors);
  if (entries.length === 0) return 'errors: none';
  const lines = [`errors: ${entries.map(([k, n]) => `${k}×${n}`).join(', ')}`];
  for (const [k] of entries) {
    if (messages[k] !== undefined) lines.push(`  first ${k}: ${messages[k]}`);
  }
  return lines.join('\n');
}

/** A few lines describing one bench run. */
export function formatBench(s: BenchSummary): string {
  const lines = [
    s.bench === 'register' ? registerHeadline(s) : requestHeadline(s),
    `latency ms: p50 ${s.latencyMs.p50}  p90 ${s.latencyMs.p90}  p99 ${s.latencyMs.p99}  ` +
      `max ${s.latencyMs.max}`,
  ];
  const parts: [string, LatencySummaryMs | undefined][] = [
    ['waiting for a connection here', s.clientWaitMs as LatencySummaryMs | undefined],
    ['in the DP\'s queue', s.dpQueueMs as LatencySummaryMs | undefined],
    ['the rest', s.beyondQueuesMs as LatencySummaryMs | undefined],
  ];
  for (const [what, ms] of parts) {
    if (ms !== undefined) lines.push(`  of it ${what}: p50 ${ms.p50}  p99 ${ms.p99}  max ${ms.max}`);
  }
  lines.push(formatErrors(s.errors, s.errorMessages));
  const warmup = s.warmup as { seconds: number; count: number; ok: number; latencyMs: LatencySummaryMs } | undefined;
  if (warmup !== undefined) {
    lines.push(`warm-up (${warmup.seconds} s first, not counted): ${warmup.ok} of ${warmup.count} ok, ` +
      `latency ms p50 ${warmup.latencyMs.p50}  p99 ${warmup.latencyMs.p99}`);
  }
  if (typeof s.coldStartRatio === 'number') {
    lines.push(`cold-start header true: ${(100 * s.coldStartRatio).toFixed(1)}% of responses`);
  }
  const late = s.sendLatenessMs as { p50: number; p99: number; max: number } | undefined;
  if (late !== undefined) {
    lines.push(`send lateness ms: p50 ${late.p50}  p99 ${late.p99}  max ${late.max}`);
  }
  const inflight = s.inflightMax as number | undefined;
  const connections = s.connections as number | undefined;
  if (inflight !== undefined && connections !== undefined && inflight > connections) {
    lines.push(`note: up to ${inflight} requests outstanding on ${connections} connections; ` +
      'the excess waited in the client (raise --connections)');
  }
  lines.push(formatCpu(s.cpuSeconds));
  const loopDelay = s.eventLoopDelayMs as EventLoopDelayMs | undefined;
  if (loopDelay !== undefined) lines.push(formatLoopDelay(loopDelay));
  return lines.join('\n');
}

function requestHeadline(s: BenchSummary): string {
  const offered = s.offeredRps === null
    ? `closed loop, ${s.connections ?? '?'} connections`
    : `offered ${s.offeredRps.toFixed(1)} rps`;
  return `bench ${s.bench}: ${offered}, achieved ${s.achievedRps.toFixed(1)} rps ` +
    `(${s.count} sent, ${s.ok} ok, ${s.durationS.toFixed(2)} s)`;
}

function registerHeadline(s: BenchSummary): string {
  const deletes = typeof s.deletesPerSecond === 'number'
    ? `; deleted at ${s.deletesPerSecond.toFixed(1)}/s` : '';
  return `bench register: ${s.achievedRps.toFixed(1)} registrations/s with ` +
    `${s.concurrency ?? '?'} clients (${s.ok} of ${s.count} ok in ${s.durationS.toFixed(2)} s)` +
    deletes;
}

/** A table: one row per swept rate, then the verdict. */
export function formatSweep(runs: readonly BenchSummary[], verdict: string): string {
  const header = 'offered  achieved     p50      p90      p99      max   errors  cold%  late-p99';
  const rows = runs.map((r) => {
    const late = r.sendLatenessMs as { p99: number } | undefined;
    return [
      pad((r.offeredRps ?? 0).toFixed(0), 7),
      pad(r.achievedRps.toFixed(1), 9),
      pad(r.latencyMs.p50.toFixed(2), 7),
      pad(r.latencyMs.p90.toFixed(2), 8),
      pad(r.latencyMs.p99.toFixed(2), 8),
      pad(r.latencyMs.max.toFixed(1), 8),
      pad(String(Object.values(r.errors).reduce((a, b) => a + b, 0)), 8),
      pad(typeof r.coldStartRatio === 'number' ? (100 * r.coldStartRatio).toFixed(1) : '-', 6),
      pad(late === undefined ? '-' : late.p99.toFixed(2), 9),
    ].join(' ');
  });
  return [header, ...rows, verdict].join('\n');
}

export function formatTrace(t: TraceSummary, cpu: CpuSeconds, loopDelay?: EventLoopDelayMs): string {
  const f = (v: number, d = 2): string => (Number.isNaN(v) ? 'n/a' : v.toFixed(d));
  return [
    `trace: ${t.count} invocations, ${t.failures} failed (${(100 * t.failureRate).toFixed(2)}%)`,
    `scheduling latency ms (response − duration): p50 ${f(t.schedulingLatencyMs.p50)}  ` +
      `p99 ${f(t.schedulingLatencyMs.p99)}`,
    `per-function geomean slowdown over ${t.slowdown.functions} functions: ` +
      `p50 ${f(t.slowdown.p50, 3)}  p99 ${f(t.slowdown.p99, 3)}`,
    `response time ms: p50 ${f(t.responseTimeMs.p50)}  p99 ${f(t.responseTimeMs.p99)}`,
    `sandboxes created (cold-start: true): ${t.sandboxesCreated}`,
    formatErrors(t.errors),
    formatCpu(cpu),
    ...(loopDelay === undefined ? [] : [formatLoopDelay(loopDelay)]),
  ].join('\n');
}

function pad(s: string, width: number): string {
  return s.padStart(width);
}

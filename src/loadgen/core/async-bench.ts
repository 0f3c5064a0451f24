/**
 * @module loadgen/core/async-bench
 * The arithmetic of `dirigent bench async` (issue #11 part 7): accepts and completions are
 * recorded as they come in, then summarized. An accept is a 202 with an id: anything else is an
 * error and never counts towards the achieved accept rate. Pure: times are passed in (ms on one
 * monotonic clock).
 */
import {
  newHistogram,
  recordMs,
  round,
  summarizeMs,
  tally,
  tallyToObject,
  type CpuSeconds,
  type Histogram,
  type LatencySummaryMs,
} from './stats.js';
import { formatLoopDelay, type EventLoopDelayMs } from './loop-delay.js';

export interface AsyncBenchSummary {
  bench: 'async';
  offeredRps: number;
  /** 202s per second over the send window (first send to the last accept answered). */
  acceptedRps: number;
  sent: number;
  accepted: number;
  /** Non-202 statuses by number, transport failures by error code. */
  errors: Record<string, number>;
  acceptLatencyMs: LatencySummaryMs;
  /** Send to the result arriving (callback); only invocations that completed in time. */
  completionLatencyMs: LatencySummaryMs;
  completed: number;
  /** Completions whose function answer was not 2xx. */
  completedFailed: number;
  /** Accepted but not completed when the bench stopped waiting. */
  notCompleted: number;
  durationS: number;
  /** Seconds of unmeasured submits before the measured ones (set by the shell). */
  warmupS?: number;
  cpuSeconds: CpuSeconds;
  /** (data plane + workers) CPU ms per accepted invocation; null when unknown. */
  cpuMsPerInvocation: number | null;
  note: string;
  /** Per component kind over the measured period; null = unknown (loadgen/core/loop-delay). */
  eventLoopDelayMs?: EventLoopDelayMs;
  eventLoopDelayNote?: string;
}

/** Records one async run: send times, accept answers, completions. */
export class AsyncBenchRecorder {
  readonly acceptLatency: Histogram = newHistogram();
  readonly completionLatency: Histogram = newHistogram();
  private readonly errors = new Map<string, number>();
  private readonly sentAtMs = new Map<number, number>();
  sent = 0;
  accepted = 0;
  completed = 0;
  completedFailed = 0;
  firstSendMs = Number.NaN;
  lastAcceptMs = Number.NaN;

  onSend(seq: number, nowMs: number): void {
    this.sent++;
    if (Number.isNaN(this.firstSendMs)) this.firstSendMs = nowMs;
    this.sentAtMs.set(seq, nowMs);
  }

  /** The submit's answer: `status` 0 with `error` for a transport failure. */
  onAnswer(seq: number, status: number, error: string, hasId: boolean, nowMs: number): void {
    const sentMs = this.sentAtMs.get(seq);
    if (sentMs === undefined) return;
    if (status === 202 && hasId) {
      this.accepted++;
      this.lastAcceptMs = Number.isNaN(this.lastAcceptMs) ? nowMs : Math.max(this.lastAcceptMs, nowMs);
      recordMs(this.acceptLatency, nowMs - sentMs);
      return;
    }
    this.sentAtMs.delete(seq);
    tally(this.errors, status === 0 ? error || 'transport' : status === 202 ? 'no_id' : String(status));
  }

  /** A result arrived for `seq` (once; repeats of a retried callback are ignored). */
  onCompleted(seq: number, functionStatus: number, nowMs: number): void {
    const sentMs = this.sentAtMs.get(seq);
    if (sentMs === undefined) return;
    this.sentAtMs.delete(seq);
    this.completed++;
    if (functionStatus < 200 || functionStatus > 299) this.completedFailed++;
    recordMs(this.completionLatency, nowMs - sentMs);
  }

  /** Every accepted invocation has its result. */
  allCompleted(): boolean {
    return this.completed >= this.accepted;
  }

  summarize(offeredRps: number, durationS: number, cpu: CpuSeconds, note: string): AsyncBenchSummary {
    return {
      bench: 'async',
      offeredRps,
      acceptedRps: round(acceptRateRps(this.accepted, this.firstSendMs, this.lastAcceptMs, durationS), 1),
      sent: this.sent,
      accepted: this.accepted,
      errors: tallyToObject(this.errors),
      acceptLatencyMs: summarizeMs(this.acceptLatency),
      completionLatencyMs: summarizeMs(this.completionLatency),
      completed: this.completed,
      completedFailed: this.completedFailed,
      notCompleted: Math.max(0, this.accepted - this.completed),
      durationS,
      cpuSeconds: cpu,
      cpuMsPerInvocation: cpuMsPerInvocation(cpu, this.accepted),
      note,
    };
  }
}

/**
 * Accepts per second actually achieved: accepted / max(the scheduled duration, first send to
 * last accept). A DP that falls behind stretches the window and the rate drops below the
 * offered one; it can never exceed the sends. Example: 1,000 accepts, sends over 1 s, last
 * accept at 2 s -> 500/s.
 */
export function acceptRateRps(accepted: number, firstSendMs: number, lastAcceptMs: number, durationS: number): number {
  if (accepted === 0) return 0;
  const spanS = Number.isNaN(firstSendMs) || Number.isNaN(lastAcceptMs) ? 0 : (lastAcceptMs - firstSendMs) / 1000;
  const windowS = Math.max(durationS, spanS);
  return windowS > 0 ? accepted / windowS : 0;
}

/** CPU of the cluster side (DP and workers) per accepted invocation, in ms. */
export function cpuMsPerInvocation(cpu: CpuSeconds, accepted: number): number | null {
  if (accepted === 0 || cpu.dataPlane === null) return null;
  return round(((cpu.dataPlane + (cpu.workers ?? 0)) * 1000) / accepted, 3);
}

/** The human-readable lines. */
export function formatAsyncBench(s: AsyncBenchSummary): string {
  const lat = (l: LatencySummaryMs): string => `p50 ${l.p50} ms, p99 ${l.p99} ms, max ${l.max} ms`;
  const errors = Object.entries(s.errors).map(([k, n]) => `${k}: ${n}`).join(', ');
  return [
    `bench async: offered ${s.offeredRps}/s for ${s.durationS} s${s.warmupS ? ` after ${s.warmupS} s of warm-up` : ''}, sent ${s.sent}`,
    `  accepted: ${s.accepted} (${s.acceptedRps}/s durable)${errors ? `, errors: ${errors}` : ''}`,
    `  accept latency: ${lat(s.acceptLatencyMs)}`,
    `  completed: ${s.completed} (${s.completedFailed} non-2xx), not completed: ${s.notCompleted}`,
    `  completion latency: ${lat(s.completionLatencyMs)}`,
    `  CPU per invocation (DP + workers): ${s.cpuMsPerInvocation === null ? 'unknown' : `${s.cpuMsPerInvocation} ms`}`,
    ...(s.eventLoopDelayMs ? [`  ${formatLoopDelay(s.eventLoopDelayMs)}`] : []),
    ...(s.note ? [`  note: ${s.note}`] : []),
  ].join('\n');
}

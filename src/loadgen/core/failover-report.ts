/**
 * @module loadgen/core/failover-report
 * The JSON summary, human text and over-time plot of `bench failover`. Pure.
 */
import {
  bucketize,
  causes,
  failedInFlightAtKill,
  firstColdOkAfterMs,
  isOk,
  leaderBefore,
  newLeaderMs,
  recoveryMs,
  warmServedAgain,
  type Bucket,
  type HealthPoll,
  type RequestRecord,
} from './failover.js';
import { formatLoopDelay, type EventLoopDelayMs } from './loop-delay.js';
import type { PlotSpec } from './plot.js';
import { round } from './stats.js';

export type KillTarget = 'cp-leader' | 'dp' | 'worker';

export interface FailoverRun {
  target: KillTarget;
  /** What was killed, e.g. "cp-1 pid 123" (and why that one). */
  killed: string;
  killPids: number[];
  killMs: number;
  rateRps: number;
  coldRateRps: number;
  durationS: number;
  bucketMs: number;
  stableMs: number;
  records: readonly RequestRecord[];
  polls: readonly HealthPoll[];
  notes: string[];
}

export interface FailoverSummary {
  bench: 'failover';
  target: KillTarget;
  killed: string;
  killPids: number[];
  killAtS: number;
  rateRps: number;
  coldRateRps: number;
  durationS: number;
  requests: { warm: KindCounts; cold: KindCounts };
  failedInFlightAtKill: number;
  failuresByCause: Record<'warm' | 'cold', Record<string, number>>;
  /** ms after the kill; null = did not happen within the run. */
  recoveryMs: { all: number | null; warm: number | null; cold: number | null };
  firstColdOkAfterKillMs: number | null;
  /** Per warm function, kill -> first success of a request sent after it: max and median. */
  warmServedAgainMs: { max: number | null; median: number | null; neverServed: number };
  newLeaderAfterKillMs: number | null;
  oldLeader: { id: string; term: number } | null;
  stableMs: number;
  bucketMs: number;
  buckets: Bucket[];
  notes: string[];
  /** Per component kind over the measured period; null = unknown (loadgen/core/loop-delay). */
  eventLoopDelayMs?: EventLoopDelayMs;
  eventLoopDelayNote?: string;
}

interface KindCounts {
  sent: number;
  ok: number;
  failed: number;
  failedBeforeKill: number;
}

function kindCounts(records: readonly RequestRecord[], kind: 'warm' | 'cold', killMs: number):
  KindCounts {
  const mine = records.filter((r) => r.kind === kind);
  const ok = mine.filter(isOk).length;
  const failedBeforeKill = mine.filter((r) => !isOk(r) && r.doneMs < killMs).length;
  return { sent: mine.length, ok, failed: mine.length - ok, failedBeforeKill };
}

export function failoverSummary(run: FailoverRun): FailoverSummary {
  const { records, killMs, stableMs } = run;
  const oldLeader = run.target === 'cp-leader' ? leaderBefore(run.polls, killMs) : null;
  return {
    bench: 'failover',
    target: run.target,
    killed: run.killed,
    killPids: run.killPids,
    killAtS: round(killMs / 1000, 3),
    rateRps: run.rateRps,
    coldRateRps: run.coldRateRps,
    durationS: run.durationS,
    requests: { warm: kindCounts(records, 'warm', killMs), cold: kindCounts(records, 'cold', killMs) },
    failedInFlightAtKill: failedInFlightAtKill(records, killMs),
    failuresByCause: causes(records),
    recoveryMs: {
      all: roundOrNull(recoveryMs(records, killMs, stableMs)),
      warm: roundOrNull(recoveryMs(records, killMs, stableMs, 'warm')),
      cold: roundOrNull(recoveryMs(records, killMs, stableMs, 'cold')),
    },
    firstColdOkAfterKillMs: roundOrNull(firstColdOkAfterMs(records, killMs)),
    warmServedAgainMs: servedAgain(records, killMs),
    newLeaderAfterKillMs: run.target === 'cp-leader'
      ? roundOrNull(newLeaderMs(run.polls, killMs, oldLeader)) : null,
    oldLeader: oldLeader === null ? null : { id: oldLeader.id, term: oldLeader.term },
    stableMs,
    bucketMs: run.bucketMs,
    buckets: bucketize(records, run.bucketMs),
    notes: run.notes,
  };
}

function servedAgain(records: readonly RequestRecord[], killMs: number):
  FailoverSummary['warmServedAgainMs'] {
  const w = warmServedAgain(records, killMs);
  return { max: roundOrNull(w.maxMs), median: roundOrNull(w.medianMs), neverServed: w.never.length };
}

function roundOrNull(ms: number | null): number | null {
  return ms === null ? null : round(ms, 1);
}

function ms(v: number | null): string {
  return v === null ? 'never (within the run)' : `${v} ms`;
}

export function formatFailover(s: FailoverSummary): string {
  const line = (k: 'warm' | 'cold'): string => {
    const c = s.requests[k];
    const why = Object.entries(s.failuresByCause[k]).map(([cause, n]) => `${cause} ${n}`);
    return `  ${k}: ${c.sent} sent, ${c.ok} ok, ${c.failed} failed` +
      (why.length > 0 ? ` (${why.join(', ')})` : '');
  };
  const lines = [
    `failover: killed ${s.killed} at ${s.killAtS} s (${s.rateRps} warm rps + ${s.coldRateRps} ` +
      `cold rps for ${s.durationS} s)`,
    line('warm'),
    line('cold'),
    `  failed while in flight at the kill: ${s.failedInFlightAtKill}`,
    `  failure rate back at zero (for ${s.stableMs} ms): ${ms(s.recoveryMs.all)} after the kill ` +
      `(warm ${ms(s.recoveryMs.warm)}, cold ${ms(s.recoveryMs.cold)})`,
    `  first successful cold start after the kill: ${ms(s.firstColdOkAfterKillMs)}`,
    `  warm functions served again after the kill: max ${ms(s.warmServedAgainMs.max)}, median ` +
      `${ms(s.warmServedAgainMs.median)}` + (s.warmServedAgainMs.neverServed > 0
      ? `, ${s.warmServedAgainMs.neverServed} never` : ''),
  ];
  if (s.target === 'cp-leader') {
    lines.push(`  new leader answering /health: ${ms(s.newLeaderAfterKillMs)} (old: ` +
      `${s.oldLeader === null ? 'unknown' : `${s.oldLeader.id} term ${s.oldLeader.term}`})`);
  }
  if (s.eventLoopDelayMs !== undefined) lines.push(`  ${formatLoopDelay(s.eventLoopDelayMs)}`);
  for (const n of s.notes) lines.push(`  note: ${n}`);
  return lines.join('\n');
}

/** Requests per bucket over time (x: seconds since the kill), ok and failed. */
export function failoverPlot(s: FailoverSummary): PlotSpec {
  const x = (b: Bucket): number => round((b.startMs / 1000) - s.killAtS, 3);
  const peak = s.buckets.reduce((m, b) => Math.max(m, b.ok, b.failed), 1);
  return {
    title: `failover: kill ${s.target} (${s.bucketMs} ms buckets by send time)`,
    xLabel: 's since the kill',
    yLabel: `requests per ${s.bucketMs} ms`,
    xLog: false,
    yLog: false,
    series: [
      { name: 'ok', points: s.buckets.map((b) => ({ x: x(b), y: b.ok })) },
      { name: 'failed', points: s.buckets.map((b) => ({ x: x(b), y: b.failed })) },
      { name: 'kill', points: [{ x: 0, y: 0 }, { x: 0, y: peak }] },
    ],
  };
}

export function bucketTable(s: FailoverSummary): { header: string[]; rows: string[][] } {
  return {
    header: ['t since kill (s)', 'ok', 'failed', 'warm failed', 'cold failed',
      'warm latency max ms', 'cold latency max ms'],
    rows: s.buckets.map((b) => [String(round(b.startMs / 1000 - s.killAtS, 3)), String(b.ok),
      String(b.failed), String(b.warmFailed), String(b.coldFailed), String(b.warmLatencyMaxMs), String(b.coldLatencyMaxMs)]),
  };
}

/**
 * @module loadgen/shell/bench-generator
 * `bench generator`: the load generator against a no-op HTTP server in a child process, to
 * show the generator is not the bottleneck. It reports the achieved rate, the latency through
 * loopback, the lateness of sends (actual − scheduled) and the CPU both sides used.
 */
import type { Dispatcher } from 'undici';
import { seededRng } from '../../shared/rng.js';
import { RunRecorder } from '../core/recorder.js';
import { sweepOrder, type SaturationRule } from '../core/saturation.js';
import { arrivalScheduleMs, sendCount, type ArrivalProcess } from '../core/schedule.js';
import {
  openLoopSummary,
  summaryReasons,
  sweepSummary,
  type BenchRuns,
} from '../core/summaries.js';
import { round, type BenchSummary } from '../core/stats.js';
import { createSenderPool, prewarmPool } from './http-sender.js';
import { startNoopServer } from './noop-server.js';
import { loopDelayFields } from './loop-delay.js';
import { runOpenMeasurement } from './open-run.js';
import type { CommandIo } from './output.js';

export const generatorDefaults = Object.freeze({
  /** Unrecorded sending at the rate first: warms the server child's and our JIT. */
  warmupS: 1,
  /** A sweep step also fails when sends are this late at p99: the pacer fell behind. */
  latenessP99MsMax: 5,
  drainSlackMs: 5_000,
});

export interface GeneratorBenchOptions {
  rateRps: number;
  durationS: number;
  warmupS: number;
  connections: number;
  timeoutMs: number;
  arrivals: ArrivalProcess;
  seed: number;
  stateDir: string;
  io: CommandIo;
}

const requestOptions: Dispatcher.DispatchOptions = {
  path: '/',
  method: 'GET',
  headers: ['host', 'noop'],
};

/** Runs one rate, or a sweep when `rates` is given, against one no-op server. */
export async function runGeneratorBench(
  o: GeneratorBenchOptions,
  rates: number[] | null,
  rule: SaturationRule,
): Promise<BenchRuns> {
  const server = await startNoopServer();
  const pool = createSenderPool({ origin: server.url, connections: o.connections,
    timeoutMs: o.timeoutMs });
  try {
    await prewarmPool(pool, o.connections);
    if (rates === null) {
      const run = await measureRate(o, o.rateRps, pool, server.pid);
      return { summary: run, runs: [run] };
    }
    const runs: BenchSummary[] = [];
    for (const rate of sweepOrder(rates)) {
      const run = await measureRate(o, rate, pool, server.pid);
      runs.push(run);
      const reasons = generatorReasons(run, rule);
      if (reasons.length > 0) return { summary: sweepSummary(runs, rate, reasons), runs };
    }
    return { summary: sweepSummary(runs, null, []), runs };
  } finally {
    await pool.close();
    await server.stop();
  }
}

/** The request-bench saturation rule plus "the pacer itself fell behind". */
function generatorReasons(run: BenchSummary, rule: SaturationRule): string[] {
  const reasons = summaryReasons(run, rule);
  const late = run.sendLatenessMs as { p99: number };
  if (late.p99 > generatorDefaults.latenessP99MsMax) {
    reasons.push(`send lateness p99 ${late.p99} ms > ${generatorDefaults.latenessP99MsMax} ms`);
  }
  return reasons;
}

async function measureRate(o: GeneratorBenchOptions, rateRps: number, pool: Dispatcher,
  serverPid: number): Promise<BenchSummary> {
  const rng = seededRng(o.seed);
  const phase = async (seconds: number, label: string) => {
    const count = sendCount(rateRps, seconds);
    const recorder = new RunRecorder();
    const run = await runOpenMeasurement({
      pool,
      scheduleMs: arrivalScheduleMs(o.arrivals, rateRps, count, rng),
      optionsFor: () => requestOptions,
      recorder,
      drainTimeoutMs: o.timeoutMs + generatorDefaults.drainSlackMs,
      captureBody: false,
      stateDir: o.stateDir,
      extraCpuPids: [serverPid],
      io: o.io,
      label,
    });
    return { count, recorder, run };
  };
  if (o.warmupS > 0) await phase(o.warmupS, `warm-up ${rateRps} rps`);
  const { count, recorder, run } = await phase(o.durationS, `generator ${rateRps} rps`);
  const summary = openLoopSummary('generator', rateRps, recorder, run, run.cpu.cpu);
  summary.connections = o.connections;
  summary.noopServerCpuSeconds = run.cpu.extraSeconds;
  Object.assign(summary, loopDelayFields(run.cpu.loopDelay));
  summary.loadgenCpuUsPerRequest = count === 0 ? null
    : round((run.cpu.cpu.loadgen * 1e6) / count, 2);
  return summary;
}

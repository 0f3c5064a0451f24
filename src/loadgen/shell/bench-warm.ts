/**
 * @module loadgen/shell/bench-warm
 * `bench warm`: one function kept warm (min scale 1), measured either closed loop (C loops,
 * each sending its next request as soon as the previous one finishes) or open loop (fixed or
 * Poisson rate). A warm-up period runs first and is not counted; measuring starts only after
 * the function reports a ready sandbox.
 */
import type { Dispatcher } from 'undici';
import { Header } from '../../api/types.js';
import { seededRng } from '../../shared/rng.js';
import {
  benchFunctionName,
  runPrefix,
  warmFunctionBody,
  type FunctionRuntime,
  type Resources,
} from '../core/functions.js';
import { RunRecorder, type Outcome } from '../core/recorder.js';
import { arrivalScheduleMs, sendCount, type ArrivalProcess } from '../core/schedule.js';
import type { BenchSummary } from '../core/stats.js';
import { closedLoopSummary, openLoopSummary } from '../core/summaries.js';
import { startCpuSampler, type CpuSampler } from './cpu.js';
import { loopDelayFields, primeLoopDelayScrapes } from './loop-delay.js';
import { createBodilessSenderPool, prewarmPool, send, type SenderPool } from './http-sender.js';
import { BenchSetupError, deleteQuietly, registerOrThrow } from './lifecycle.js';
import { benchToken, createManagementClient, waitReady, type ManagementClient } from './management.js';
import { runOpenMeasurement, withTimeout } from './open-run.js';
import type { CommandIo } from './output.js';
import { startProgress } from './progress.js';

export const warmDefaults = Object.freeze({
  connections: 1,
  warmupS: 1,
  concurrency: 0,
  maxScale: 1,
  drainSlackMs: 5_000,
});

export interface WarmBenchOptions {
  apiUrl: string;
  proxyUrl: string;
  stateDir: string;
  /** Closed loop: number of loops. Open loop: pool connections. */
  connections: number;
  /** null = closed loop. */
  rateRps: number | null;
  arrivals: ArrivalProcess;
  seed: number;
  durationS: number;
  warmupS: number;
  concurrency: number;
  maxScale: number;
  resources: Resources;
  /** Use this existing function instead of registering one. */
  functionName: string | null;
  functionDurationMs: number;
  runtime: FunctionRuntime;
  keep: boolean;
  timeoutMs: number;
  entropy: number;
  io: CommandIo;
}

export async function runWarmBench(o: WarmBenchOptions): Promise<BenchSummary> {
  const mgmt = createManagementClient(o.apiUrl, 1, benchToken(o.stateDir));
  const name = o.functionName ?? benchFunctionName(runPrefix('warm', o.entropy), 0);
  const pool = createBodilessSenderPool({ origin: o.proxyUrl, connections: o.connections,
    timeoutMs: o.timeoutMs });
  try {
    if (o.functionName === null) await registerWarm(o, mgmt, name);
    if (!(await waitReady(mgmt, name, 1))) {
      throw new BenchSetupError(`function ${name} has no ready sandbox after waiting`);
    }
    await prewarmPool(pool, o.connections);
    const options: Dispatcher.DispatchOptions = {
      path: '/',
      method: 'GET',
      headers: ['host', name, Header.emulatedDurationMs, String(o.functionDurationMs)],
    };
    const summary = o.rateRps === null
      ? await closedLoop(o, pool, options)
      : await openLoop(o, o.rateRps, pool, options);
    summary.function = name;
    return summary;
  } finally {
    await pool.close();
    if (o.functionName === null && !o.keep) {
      await deleteQuietly({ registerConcurrency: 1, io: o.io }, mgmt, [name]);
    }
    await mgmt.close();
  }
}

async function registerWarm(o: WarmBenchOptions, mgmt: ManagementClient, name: string) {
  const body = warmFunctionBody(name, o.runtime,
    { concurrency: o.concurrency, maxScale: o.maxScale, resources: o.resources });
  await registerOrThrow({ registerConcurrency: 1, io: o.io }, mgmt, [body]);
}

/** C loops back to back; outcomes count when their request started inside the window. */
async function closedLoop(o: WarmBenchOptions, pool: SenderPool,
  options: Dispatcher.DispatchOptions): Promise<BenchSummary> {
  await primeLoopDelayScrapes(o.stateDir);
  const t0 = performance.now();
  const warmEndMs = t0 + o.warmupS * 1000;
  const endMs = warmEndMs + o.durationS * 1000;
  let stopped = 0;
  let allStopped: () => void = () => {};
  const finished = new Promise<void>((r) => (allStopped = r));
  const recorder: RunRecorder = new RunRecorder(
    (x: Outcome) => x.startMs >= warmEndMs && x.startMs < endMs,
    (x: Outcome) => {
      const now = performance.now();
      if (now < endMs) send(pool, options, x.tag, now, recorder);
      else if (++stopped === o.connections) allStopped();
    },
  );
  let cpu: Promise<CpuSampler> | null = null;
  const cpuTimer = setTimeout(() => (cpu = startCpuSampler(o.stateDir)), o.warmupS * 1000);
  const totalS = Math.ceil(o.warmupS + o.durationS);
  const progress = startProgress('warm closed loop (s)', totalS,
    () => Math.floor((performance.now() - t0) / 1000), o.io.progressStream);
  for (let c = 0; c < o.connections; c++) send(pool, options, c, performance.now(), recorder);
  await withTimeout(finished, (o.warmupS + o.durationS) * 1000 + o.timeoutMs);
  progress.stop();
  clearTimeout(cpuTimer);
  const sample = await ((cpu ?? startCpuSampler(o.stateDir)) as Promise<CpuSampler>);
  const { cpu: cpuSeconds, note, loopDelay } = await sample.finish();
  const summary = closedLoopSummary('warm', recorder, { startMs: warmEndMs, endMs }, o.durationS,
    cpuSeconds);
  summary.connections = o.connections;
  if (note !== '') summary.cpuNote = note;
  Object.assign(summary, loopDelayFields(loopDelay));
  return summary;
}

/** Warm-up at the same rate (discarded), then the measured run. */
async function openLoop(o: WarmBenchOptions, rateRps: number, pool: SenderPool,
  options: Dispatcher.DispatchOptions): Promise<BenchSummary> {
  const rng = seededRng(o.seed);
  const phase = async (seconds: number, label: string) => {
    const scheduleMs = arrivalScheduleMs(o.arrivals, rateRps, sendCount(rateRps, seconds), rng);
    const recorder = new RunRecorder();
    const run = await runOpenMeasurement({
      pool, scheduleMs, recorder, optionsFor: () => options,
      drainTimeoutMs: o.timeoutMs + warmDefaults.drainSlackMs, captureBody: false,
      stateDir: o.stateDir, io: o.io, label,
    });
    return { recorder, run };
  };
  if (o.warmupS > 0) await phase(o.warmupS, 'warm-up');
  const { recorder, run } = await phase(o.durationS, `warm ${rateRps} rps`);
  const summary = openLoopSummary('warm', rateRps, recorder, run, run.cpu.cpu);
  summary.connections = o.connections;
  if (run.cpu.note !== '') summary.cpuNote = run.cpu.note;
  Object.assign(summary, loopDelayFields(run.cpu.loopDelay));
  return summary;
}

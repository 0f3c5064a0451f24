/**
 * @module loadgen/shell/bench-cold
 * `bench cold`: the cold-start sweep of InVitro's RPS mode with a 100 % cold ratio. Before a
 * rate runs, ceil(R·W/2) + ceil(R·S) fresh functions (scale 0..1, coldStartSweep preset) are
 * registered; then send i goes to function i, so every request needs a new sandbox. The first
 * W seconds (--warmup) ramp from 0 to R and warm the cluster up, reported apart; the measured
 * S seconds at R follow without a pause (see `coldStartPlan`). Afterwards the functions are
 * deleted (unless --keep). A sweep runs rates in ascending order and stops at the first
 * saturated one.
 */
import type { Dispatcher } from 'undici';
import { capacityBinding, refusalsBetween } from '../../api/capacity.js';
import { Header } from '../../api/types.js';
import {
  benchFunctionName,
  coldFunctionBody,
  runPrefix,
  type FunctionRuntime,
  type Resources,
} from '../core/functions.js';
import { RunRecorder } from '../core/recorder.js';
import { sweepOrder, type SaturationRule } from '../core/saturation.js';
import { coldPoolConnections, coldStartPlan } from '../core/schedule.js';
import {
  openLoopSummary,
  summaryReasons,
  sweepSummary,
  type BenchRuns,
} from '../core/summaries.js';
import { round, summarizeMs, type BenchSummary } from '../core/stats.js';
import { createBodilessSenderPool, prewarmPool, senderDefaults, type SenderPool } from './http-sender.js';
import { deleteQuietly, registerOrThrow } from './lifecycle.js';
import { benchToken, createManagementClient, type ManagementClient } from './management.js';
import { loopDelayFields } from './loop-delay.js';
import { runOpenMeasurement } from './open-run.js';
import type { CommandIo } from './output.js';

export const coldDefaults = Object.freeze({
  registerConcurrency: 16,
  /** Pause between sweep steps so the previous rate's sandboxes are gone. */
  cooldownS: 2,
  drainSlackMs: 5_000,
  /**
   * Seconds of cold starts ramping up to the run's rate before the measured window. The first
   * cold starts after a cluster starts run code not yet optimized, on heaps not yet grown: at
   * 3,000/s at once on a fresh `up` the DP queue's p50 was 130-260 ms for the first 1.5-3.5 s
   * (the machine's two cores 88-96 % busy, the bench's own share 2-3x its later one), 45-60 ms
   * after.
   */
  warmupS: 2,
  /** Seconds each request may hold a connection at the highest rate before the client binds. */
  connectionHoldS: 0.5,
});

export interface ColdBenchOptions {
  apiUrl: string;
  proxyUrl: string;
  stateDir: string;
  durationS: number;
  registerConcurrency: number;
  /** null: sized for the highest rate (see `coldPoolConnections`). */
  connections: number | null;
  warmupS: number;
  timeoutMs: number;
  /** x-emulated-duration-ms sent with every request (0 = answer at once). */
  functionDurationMs: number;
  runtime: FunctionRuntime;
  resources: Resources;
  keep: boolean;
  cooldownS: number;
  /** Makes function names unique per run (clock and pid, from the entry point). */
  entropy: number;
  io: CommandIo;
}

/** One rate, or a sweep over `rates` that stops at the first saturated rate. */
export async function runColdBench(
  o: ColdBenchOptions,
  rates: number[],
  rule: SaturationRule,
): Promise<BenchRuns> {
  const mgmt = createManagementClient(o.apiUrl, o.registerConcurrency, benchToken(o.stateDir));
  const connections = o.connections
    ?? coldPoolConnections(Math.max(...rates), coldDefaults.connectionHoldS, senderDefaults.connections);
  const pool = createBodilessSenderPool({ origin: o.proxyUrl, connections, timeoutMs: o.timeoutMs });
  const runs: BenchSummary[] = [];
  try {
    // Opens the connections a warm run uses; the rest open only if requests wait for them.
    await prewarmPool(pool, Math.min(connections, senderDefaults.connections));
    const ordered = sweepOrder(rates);
    for (const [step, rate] of ordered.entries()) {
      if (step > 0) await new Promise((r) => setTimeout(r, o.cooldownS * 1000));
      const run = await coldRate(o, rate, step, mgmt, pool, connections);
      runs.push(run);
      const reasons = summaryReasons(run, rule);
      if (ordered.length > 1 && reasons.length > 0) {
        return { summary: sweepSummary(runs, rate, reasons), runs };
      }
    }
    const summary = ordered.length > 1 ? sweepSummary(runs, null, []) : runs[0];
    return { summary, runs };
  } finally {
    await pool.close();
    await mgmt.close();
  }
}

async function coldRate(o: ColdBenchOptions, rateRps: number, step: number,
  mgmt: ManagementClient, pool: SenderPool, connections: number): Promise<BenchSummary> {
  const plan = coldStartPlan(rateRps, o.durationS, o.warmupS);
  const warmupSends = plan.measuredFrom;
  const prefix = runPrefix('cold', o.entropy + step);
  const names = Array.from({ length: plan.functionCount }, (_, i) => benchFunctionName(prefix, i));
  const registered = await registerOrThrow(o, mgmt,
    names.map((name) => coldFunctionBody(name, o.runtime, o.resources)));
  try {
    const clusterBefore = await mgmt.cluster();
    const duration = String(o.functionDurationMs);
    const options: Dispatcher.DispatchOptions[] = names.map((name) => ({
      path: '/',
      method: 'GET',
      headers: ['host', name, Header.emulatedDurationMs, duration],
    }));
    const warm = new RunRecorder();
    const recorder = new RunRecorder((x) => x.tag >= warmupSends, (x) => {
      if (x.tag < warmupSends) warm.onOutcome(x);
    });
    const run = await runOpenMeasurement({
      pool, scheduleMs: plan.scheduleMs, recorder, measuredFrom: warmupSends,
      optionsFor: (i) => options[plan.functionOfSend[i]],
      drainTimeoutMs: o.timeoutMs + coldDefaults.drainSlackMs, captureBody: false,
      stateDir: o.stateDir, io: o.io, label: `cold ${rateRps} rps`,
    });
    const summary = openLoopSummary('cold', rateRps, recorder, run, run.cpu.cpu);
    if (warmupSends > 0) {
      summary.warmup = {
        seconds: o.warmupS, count: warm.counted, ok: warm.ok,
        latencyMs: summarizeMs(warm.latency), dpQueueMs: summarizeMs(warm.dpQueue),
      };
    }
    summary.functions = plan.functionCount;
    summary.connections = connections;
    summary.registrationsPerSecond = round((registered.ok * 1000) / registered.elapsedMs, 1);
    if (run.cpu.note !== '') summary.cpuNote = run.cpu.note;
    Object.assign(summary, loopDelayFields(run.cpu.loopDelay));
    // Right after the run its sandboxes are still allocated: a bound cluster measures its node
    // size, not cold starts, and the bench says so. It also says so when cold starts waited for
    // room during the run only (the first sandboxes gone before the last ones came).
    const clusterAfter = await mgmt.cluster();
    const binding = clusterAfter === null ? null : capacityBinding(clusterAfter.workers);
    const refused = refusalsBetween(clusterBefore, clusterAfter);
    if (clusterAfter === null) o.io.err(`bench cold: warning: ${rateRps}/s: the cluster's capacity was not checked: GET /v1/cluster gave no readable answer`);
    if (binding !== null) o.io.err(`bench cold: warning: ${rateRps}/s: the cluster's capacity binds: ${binding}`);
    if (refused !== null) o.io.err(`bench cold: warning: ${rateRps}/s: the cluster's capacity bound: ${refused}`);
    const notes = [binding, refused].filter((n): n is string => n !== null);
    if (notes.length > 0) summary.capacityNote = notes.join('; ');
    return summary;
  } finally {
    if (!o.keep) await deleteQuietly(o, mgmt, names);
  }
}

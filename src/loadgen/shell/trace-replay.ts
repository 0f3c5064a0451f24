/**
 * @module loadgen/shell/trace-replay
 * `loadgen trace <dir>`: replays an InVitro-format trace as InVitro does (workload-and-policies
 * §1): the first W + E minute columns, per-minute IATs, per-invocation runtime and memory
 * drawn from the percentile columns, open-loop sends. Each function is registered with
 * InVitro's requests (CPU 100m, memory trunc(pct100)/10 MiB, concurrency 1); each invocation
 * carries `x-emulated-duration-ms: <runtime>`. `--speed K` makes a trace minute last 60/K s;
 * function durations are not compressed.
 */
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import type { Dispatcher } from 'undici';
import { Header } from '../../api/types.js';
import { traceResourceRequests } from '../core/exec-spec.js';
import { traceCsvHeader, traceCsvLine } from '../core/format.js';
import {
  runPrefix,
  traceFunctionBody,
  traceFunctionName,
  type FunctionRuntime,
} from '../core/functions.js';
import { iatModeName, type IatMode } from '../core/iat.js';
import type { EventLoopDelayMs } from '../core/loop-delay.js';
import { RunRecorder, type Outcome } from '../core/recorder.js';
import { round, summarizeMs, type CpuSeconds } from '../core/stats.js';
import { openLoopAchievedRps } from '../core/summaries.js';
import { parseTrace, type TraceFunction } from '../core/trace-csv.js';
import { summarizeTrace, type InvocationRow, type TraceSummary } from '../core/trace-metrics.js';
import { buildTracePlan, invocationId, tracePhase, type TracePlan } from '../core/trace-plan.js';
import { createSenderPool, prewarmPool } from './http-sender.js';
import { BenchSetupError, deleteQuietly, registerOrThrow } from './lifecycle.js';
import { benchToken, createManagementClient } from './management.js';
import { loopDelayFields } from './loop-delay.js';
import { runOpenMeasurement } from './open-run.js';
import type { CommandIo } from './output.js';

export const traceDefaults = Object.freeze({
  warmupMinutes: 0,
  minutes: 30,
  iat: 'exponential',
  seed: 42,
  speed: 1,
  connections: 1024,
  /** InVitro's trace configs use a 900 s function timeout. */
  timeoutMs: 900_000,
  drainSlackMs: 5_000,
});

export interface TraceReplayOptions {
  dir: string;
  apiUrl: string;
  proxyUrl: string;
  stateDir: string;
  warmupMinutes: number;
  minutes: number;
  iat: IatMode;
  seed: number;
  speed: number;
  runtime: FunctionRuntime;
  registerConcurrency: number;
  /** Replaces InVitro's requests when set (e.g. to fit many sandboxes on one machine). */
  resourceOverride: { cpuMillis?: number; memoryMiB?: number };
  /** Scaling knobs of every function (as the API takes them); empty: the cluster's defaults. */
  scaling: Record<string, unknown>;
  connections: number;
  timeoutMs: number;
  keep: boolean;
  outCsv: string | null;
  entropy: number;
  io: CommandIo;
}

export interface TraceReplayResult {
  summary: Record<string, unknown> & TraceSummary & { cpuSeconds: CpuSeconds; eventLoopDelayMs: EventLoopDelayMs };
  rows: InvocationRow[];
}

/** Reads and plans the trace without touching the cluster (also used by `--dry-run`). */
export async function loadTracePlan(
  o: Pick<TraceReplayOptions, 'dir' | 'warmupMinutes' | 'minutes' | 'iat' | 'seed'>,
): Promise<{ functions: TraceFunction[]; plan: TracePlan }> {
  const read = (f: string) => readFile(join(o.dir, f), 'utf8');
  const [invocations, durations, memory] = await Promise.all([
    read('invocations.csv'), read('durations.csv'), read('memory.csv'),
  ]);
  const parsed = parseTrace({ invocations, durations, memory }, o.warmupMinutes + o.minutes);
  if (parsed.kind === 'error') {
    const where = `${join(o.dir, `${parsed.file}.csv`)}:${parsed.line}`;
    throw new BenchSetupError(`${where}: ${parsed.message}`);
  }
  const plan = buildTracePlan(parsed.functions, {
    warmupMinutes: o.warmupMinutes, experimentMinutes: o.minutes, iat: o.iat, seed: o.seed,
  });
  return { functions: parsed.functions, plan };
}

export async function runTraceReplay(o: TraceReplayOptions): Promise<TraceReplayResult> {
  const { functions, plan } = await loadTracePlan(o);
  const runId = runPrefix('r', o.entropy).slice(2);
  const names = functions.map((f) => traceFunctionName(runId, f.rowIndex));
  const mgmt = createManagementClient(o.apiUrl, o.registerConcurrency, benchToken(o.stateDir));
  const bodies = functions.map((f, i) =>
    traceFunctionBody(names[i], o.runtime, resourcesOf(f, o.resourceOverride), o.scaling));
  await registerOrThrow(o, mgmt, bodies);
  try {
    const { summary, rows } = await replay(o, plan, names);
    if (o.outCsv !== null) await writeCsv(o.outCsv, rows);
    return { summary: { ...summary, functions: functions.length,
      resources: resourceNote(functions, o.resourceOverride) }, rows };
  } finally {
    if (!o.keep) await deleteQuietly(o, mgmt, names);
    await mgmt.close();
  }
}

/** Per-invocation outcome columns, filled by tag (= plan index) as responses arrive. */
interface OutcomeColumns {
  startMs: Float64Array;
  responseMs: Float64Array;
  status: Uint16Array;
  coldStart: Int8Array;
  queueMs: Float64Array;
  measuredUs: Float64Array;
  error: Map<number, string>;
}

async function replay(o: TraceReplayOptions, plan: TracePlan, names: string[]) {
  const options = prebuildOptions(plan, names);
  const scheduleMs = plan.timeUs.map((us) => us / 1000 / o.speed);
  const cols = emptyOutcomeColumns(plan.count);
  const recorder = new RunRecorder(() => true, (x) => storeOutcome(cols, x));
  const pool = createSenderPool({ origin: o.proxyUrl, connections: o.connections,
    timeoutMs: o.timeoutMs });
  try {
    await prewarmPool(pool, o.connections);
    const run = await runOpenMeasurement({
      pool, scheduleMs, recorder, optionsFor: (i) => options[i],
      drainTimeoutMs: o.timeoutMs + traceDefaults.drainSlackMs, captureBody: true,
      stateDir: o.stateDir, io: o.io, label: 'trace',
    });
    const rows = buildRows(plan, names, cols);
    const traceMinutesS = (plan.minutes * 60) / o.speed;
    const summary = {
      trace: o.dir, invocations: plan.count, warmupMinutes: plan.warmupMinutes,
      minutes: plan.minutes - plan.warmupMinutes, iat: iatModeName(o.iat), seed: o.seed,
      speed: o.speed, offeredRps: round(plan.count / traceMinutesS, 3),
      achievedRps: round(openLoopAchievedRps(recorder, plan.count / traceMinutesS, traceMinutesS), 3),
      latencyMs: summarizeMs(recorder.latency),
      sendLatenessMs: summarizeMs(run.lateness), undrained: run.undrained,
      inflightMax: run.inflightMax, connections: o.connections,
      ...summarizeTrace(rows), cpuSeconds: run.cpu.cpu, cpuNote: run.cpu.note,
      ...loopDelayFields(run.cpu.loopDelay),
    };
    return { summary, rows };
  } finally {
    await pool.close();
  }
}

/** One options object per invocation, built before sending starts. */
function prebuildOptions(plan: TracePlan, names: string[]): Dispatcher.DispatchOptions[] {
  const options = new Array<Dispatcher.DispatchOptions>(plan.count);
  for (let i = 0; i < plan.count; i++) {
    options[i] = {
      path: '/',
      method: 'GET',
      headers: ['host', names[plan.functionIndex[i]], Header.emulatedDurationMs,
        String(plan.runtimeMs[i])],
    };
  }
  return options;
}

function emptyOutcomeColumns(n: number): OutcomeColumns {
  return {
    startMs: new Float64Array(n),
    responseMs: new Float64Array(n),
    status: new Uint16Array(n),
    coldStart: new Int8Array(n).fill(-1),
    queueMs: new Float64Array(n).fill(Number.NaN),
    measuredUs: new Float64Array(n).fill(Number.NaN),
    error: new Map(),
  };
}

function storeOutcome(c: OutcomeColumns, x: Outcome): void {
  const i = x.tag;
  c.startMs[i] = x.startMs;
  c.responseMs[i] = x.endMs - x.startMs;
  c.status[i] = x.status;
  c.coldStart[i] = x.coldStart;
  c.queueMs[i] = x.queueMs;
  if (x.status === 0) c.error.set(i, x.error);
  else c.measuredUs[i] = reportedDurationUs(x.bodyText());
}

/** `durationMs` from the function's JSON reply, in µs; NaN when absent or not JSON. */
function reportedDurationUs(body: string): number {
  if (body === '' || body[0] !== '{') return Number.NaN;
  try {
    const v = (JSON.parse(body) as { durationMs?: unknown }).durationMs;
    return typeof v === 'number' && Number.isFinite(v) ? v * 1000 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

function buildRows(plan: TracePlan, names: string[], c: OutcomeColumns): InvocationRow[] {
  const rows = new Array<InvocationRow>(plan.count);
  for (let i = 0; i < plan.count; i++) {
    const sent = c.startMs[i] > 0;
    rows[i] = {
      functionName: names[plan.functionIndex[i]],
      invocationId: invocationId(plan.minute[i], plan.indexInMinute[i]),
      phase: tracePhase(plan.minute[i], plan.warmupMinutes),
      minute: plan.minute[i],
      startUnixUs: sent ? (performance.timeOrigin + c.startMs[i]) * 1000 : 0,
      responseTimeUs: c.responseMs[i] * 1000,
      requestedDurationUs: plan.runtimeMs[i] * 1000,
      measuredDurationUs: c.measuredUs[i],
      coldStart: c.coldStart[i] < 0 ? null : c.coldStart[i] === 1,
      queueMs: c.queueMs[i],
      status: c.status[i],
      error: sent ? c.error.get(i) ?? '' : 'not_completed',
    };
  }
  return rows;
}

/** Rows in send order; streamed so a long trace does not build one huge string. */
async function writeCsv(path: string, rows: InvocationRow[]): Promise<void> {
  const out = createWriteStream(path);
  out.write(`${traceCsvHeader}\n`);
  for (const row of rows) {
    if (!out.write(`${traceCsvLine(row)}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/** InVitro's requests for the function, with any command-line override applied. */
function resourcesOf(f: TraceFunction, override: TraceReplayOptions['resourceOverride']) {
  const invitro = traceResourceRequests(f.memoryMiB.p100);
  return {
    cpuMillis: override.cpuMillis ?? invitro.cpuMillis,
    memoryMiB: override.memoryMiB ?? invitro.memoryMiB,
  };
}

function resourceNote(functions: readonly TraceFunction[],
  override: TraceReplayOptions['resourceOverride']) {
  const all = functions.map((f) => resourcesOf(f, override));
  const overridden = override.cpuMillis !== undefined || override.memoryMiB !== undefined;
  return {
    rule: 'InVitro ApplyResourceLimits, CPULimit=1vCPU: cpu 1000m/10, memory trunc(pct100)/10 MiB' +
      (overridden ? ' (overridden on the command line)' : ''),
    cpuMillisMin: Math.min(...all.map((r) => r.cpuMillis)),
    cpuMillisMax: Math.max(...all.map((r) => r.cpuMillis)),
    memoryMiBMin: Math.min(...all.map((r) => r.memoryMiB)),
    memoryMiBMax: Math.max(...all.map((r) => r.memoryMiB)),
  };
}

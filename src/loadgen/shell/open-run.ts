/**
 * @module loadgen/shell/open-run
 * One open-loop measurement: walk the schedule with the pacer, send through the pool, wait
 * until every request has an outcome (or the drain deadline passes), and sample CPU around
 * exactly that window. Sends before `measuredFrom` are a warm-up: the window (CPU, event-loop
 * delay, start time) begins at that send instead, with no pause between the two.
 */
import type { Dispatcher } from 'undici';
import type { RunRecorder } from '../core/recorder.js';
import type { Histogram } from '../core/stats.js';
import { startCpuSampler, type CpuSample, type CpuSampler } from './cpu.js';
import { primeLoopDelayScrapes } from './loop-delay.js';
import { send, type SenderPool } from './http-sender.js';
import type { CommandIo } from './output.js';
import { runOpenLoop } from './pacer.js';
import { startProgress } from './progress.js';

export interface OpenRunInput {
  pool: SenderPool;
  scheduleMs: Float64Array;
  /** Request options of send i (prebuilt: no allocation while sending). */
  optionsFor(index: number): Dispatcher.DispatchOptions;
  recorder: RunRecorder;
  /** How long to wait for outstanding responses after the last send. */
  drainTimeoutMs: number;
  captureBody: boolean;
  stateDir: string;
  extraCpuPids?: number[];
  io: CommandIo;
  label: string;
  /**
   * The first send of the measured window (default 0): the ones before warm the cluster up. The
   * recorder decides which outcomes it counts; this moves the CPU sampler and `startMs`.
   */
  measuredFrom?: number;
}

export interface OpenRunResult {
  startMs: number;
  endMs: number;
  lateness: Histogram;
  /** Requests without an outcome when the drain deadline passed. */
  undrained: number;
  /**
   * Most requests outstanding at a send. Above the pool's connection count, requests waited in
   * the client for a free connection, and that wait is part of their measured latency.
   */
  inflightMax: number;
  cpu: CpuSample;
}

export async function runOpenMeasurement(input: OpenRunInput): Promise<OpenRunResult> {
  const total = input.scheduleMs.length;
  const baseline = input.recorder.completed;
  const from = Math.min(input.measuredFrom ?? 0, total);
  const startCpu = (): Promise<CpuSampler> => startCpuSampler(input.stateDir, input.extraCpuPids);
  await primeLoopDelayScrapes(input.stateDir);
  // Without a warm-up the sampler's baseline is read before the first send; after one, as the
  // first measured send goes out (its reads then overlap the sending for a few ms).
  let cpu: Promise<CpuSampler> | null = from === 0 ? Promise.resolve(await startCpu()) : null;
  const progress = startProgress(input.label, total, () => input.recorder.completed - baseline,
    input.io.progressStream);
  const { pool, recorder, captureBody } = input;
  let inflightMax = 0;
  const loop = await runOpenLoop(input.scheduleMs, (i, nowMs) => {
    const inflight = baseline + i - recorder.completed;
    if (inflight > inflightMax) inflightMax = inflight;
    if (i === from && cpu === null) cpu = startCpu();
    send(pool, input.optionsFor(i), i, nowMs, recorder, captureBody);
  });
  const drained = await withTimeout(recorder.whenCompleted(baseline + total), input.drainTimeoutMs);
  const endMs = performance.now();
  progress.stop();
  cpu ??= startCpu();
  const sample = await (await cpu).finish();
  const undrained = drained ? 0 : baseline + total - recorder.completed;
  const startMs = from < total ? loop.startMs + input.scheduleMs[from] : endMs;
  return { startMs, endMs, lateness: loop.lateness, undrained, inflightMax,
    cpu: sample };
}

/** True when `p` settled before the timeout. */
export function withTimeout(p: Promise<void>, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    void p.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * @module loadgen/shell/open-run
 * One open-loop measurement: walk the schedule with the pacer, send through the pool, wait
 * until every request has an outcome (or the drain deadline passes), and sample CPU around
 * exactly that window.
 */
import type { Dispatcher } from 'undici';
import type { RunRecorder } from '../core/recorder.js';
import type { Histogram } from '../core/stats.js';
import { startCpuSampler, type CpuSample } from './cpu.js';
import { send } from './http-sender.js';
import type { CommandIo } from './output.js';
import { runOpenLoop } from './pacer.js';
import { startProgress } from './progress.js';

export interface OpenRunInput {
  pool: Dispatcher;
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
  const cpu = await startCpuSampler(input.stateDir, input.extraCpuPids);
  const progress = startProgress(input.label, total, () => input.recorder.completed - baseline,
    input.io.progressStream);
  const { pool, recorder, captureBody } = input;
  let inflightMax = 0;
  const loop = await runOpenLoop(input.scheduleMs, (i, nowMs) => {
    const inflight = baseline + i - recorder.completed;
    if (inflight > inflightMax) inflightMax = inflight;
    send(pool, input.optionsFor(i), i, nowMs, recorder, captureBody);
  });
  const drained = await withTimeout(recorder.whenCompleted(baseline + total), input.drainTimeoutMs);
  const endMs = performance.now();
  progress.stop();
  const sample = await cpu.finish();
  const undrained = drained ? 0 : baseline + total - recorder.completed;
  return { startMs: loop.startMs, endMs, lateness: loop.lateness, undrained, inflightMax,
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

/**
 * Goal: the recorder counts only the measured window, splits successes from errors, reads the
 * cold-start header, and the summaries derive achieved rate, CPU per request and the sweep's
 * verdict from that.
 * Method: synthetic outcomes with hand-picked times.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { RunRecorder, type Outcome } from './recorder.js';
import { defaultSaturationRule } from './saturation.js';
import { newHistogram, type BenchSummary } from './stats.js';
import { benchErrorRateMax, cdfOf, errorRateVerdict, openLoopSummary, summaryReasons, sweepSummary } from './summaries.js';

function outcome(tag: number, startMs: number, endMs: number, status = 200, more: Partial<Outcome> = {}): Outcome {
  return { tag, status, error: status === 0 ? 'ECONNREFUSED' : '', startMs, endMs, coldStart: 1,
    queueMs: 1, writtenMs: startMs, bodyText: () => '', ...more };
}

const cpu = { controlPlane: 0.5, dataPlane: null, workers: 0.25, loadgen: 0.1 };

test('open-loop summary from 100 cold starts at 100 rps, one 503 and one refused', () => {
  const rec = new RunRecorder((o) => o.tag >= 0);
  for (let i = 0; i < 100; i++) rec.onOutcome(outcome(i, i * 10, i * 10 + 1.5));
  rec.onOutcome(outcome(100, 1000, 1001, 503));
  rec.onOutcome(outcome(101, 1010, 1010, 0));
  rec.onOutcome(outcome(-1, 0, 5000)); // outside the window: counted as completed only
  assert.equal(rec.completed, 103);
  const s = openLoopSummary('cold', 100, rec,
    { startMs: 0, endMs: 1000, lateness: newHistogram(), undrained: 0, inflightMax: 3 }, cpu);
  assert.equal(s.count, 102);
  assert.equal(s.ok, 100);
  // 99 gaps over 990 ms say 100 rps, but 2 of 102 failed: at most 100 x 100/102 were served.
  assert.equal(s.achievedRps, 98.04);
  assert.deepEqual(s.latencyMs, { p50: 1.5, p90: 1.5, p99: 1.5, max: 1.5 });
  assert.deepEqual(s.errors, { 503: 1, ECONNREFUSED: 1 });
  assert.equal(s.coldStartRatio, 1);
  assert.deepEqual(s.cpuMsPerRequest, { controlPlane: 4.902, dataPlane: null, workers: 2.451,
    loadgen: 0.9804 });
  assert.deepEqual(summaryReasons(s, defaultSaturationRule), ['error rate 1.96% > 1%']);
  assert.ok(cdfOf(s).length > 0);
  assert.equal(JSON.parse(JSON.stringify(s)).latencyMs.p50, 1.5);
});

/** HDR histograms keep 3 significant digits: percentiles read within 0.1 %. */
function assertNearMs(actual: unknown, expected: { p50: number; p90: number; p99: number; max: number }): void {
  const a = actual as Record<string, number>;
  for (const [k, v] of Object.entries(expected)) assert.ok(Math.abs(a[k] - v) <= v * 0.001, `${k}: ${a[k]} against ${v}`);
}

test('latency split: waiting for a connection here, in the DP\'s queue, and the rest', () => {
  const rec = new RunRecorder();
  // 100 ms in all: written on a connection after 30 ms, 50 ms in the DP's queue, 20 ms the rest.
  for (let i = 0; i < 10; i++) rec.onOutcome(outcome(i, 1000 * i, 1000 * i + 100, 200, { writtenMs: 1000 * i + 30, queueMs: 50 }));
  // No queue header (a cluster without one): counted in the connection wait only.
  rec.onOutcome(outcome(10, 20_000, 20_010, 200, { writtenMs: 20_004, queueMs: Number.NaN }));
  // Failures and never-written requests are not split.
  rec.onOutcome(outcome(11, 30_000, 30_500, 503, { writtenMs: 30_400, queueMs: 0 }));
  rec.onOutcome(outcome(12, 31_000, 31_500, 0, { writtenMs: Number.NaN, queueMs: Number.NaN }));
  const s = openLoopSummary('cold', 1, rec,
    { startMs: 0, endMs: 31_500, lateness: newHistogram(), undrained: 0, inflightMax: 1 }, cpu);
  assertNearMs(s.clientWaitMs, { p50: 30, p90: 30, p99: 30, max: 30 });
  assert.equal(rec.clientWait.totalCount, 11);
  assertNearMs(s.dpQueueMs, { p50: 50, p90: 50, p99: 50, max: 50 });
  assertNearMs(s.beyondQueuesMs, { p50: 20, p90: 20, p99: 20, max: 20 });
  assert.equal(rec.dpQueue.totalCount, 10);
});

test('latency split: no queue header anywhere, no DP fields', () => {
  const rec = new RunRecorder();
  rec.onOutcome(outcome(0, 0, 10, 200, { writtenMs: 2, queueMs: Number.NaN }));
  const s = openLoopSummary('warm', 1, rec,
    { startMs: 0, endMs: 10, lateness: newHistogram(), undrained: 0, inflightMax: 1 }, cpu);
  assertNearMs(s.clientWaitMs, { p50: 2, p90: 2, p99: 2, max: 2 });
  assert.equal(s.dpQueueMs, undefined);
  assert.equal(s.beyondQueuesMs, undefined);
});

test('open loop: successes bunched early do not pass for the offered rate', () => {
  // 5 s at 100 rps: the first 100 succeed within 1 s, the other 400 fail. The spacing of the
  // successes alone says 100 rps; the run served 100 requests in 5 s.
  const rec = new RunRecorder();
  for (let i = 0; i < 100; i++) rec.onOutcome(outcome(i, i * 10, i * 10 + 1));
  for (let i = 100; i < 500; i++) rec.onOutcome(outcome(i, i * 10, i * 10 + 1, 503));
  const s = openLoopSummary('warm', 100, rec,
    { startMs: 0, endMs: 5000, lateness: newHistogram(), undrained: 0, inflightMax: 1 }, cpu);
  assert.equal(s.achievedRps, 20);
});

test('whenCompleted resolves at the n-th outcome', async () => {
  const rec = new RunRecorder();
  const done = rec.whenCompleted(2);
  rec.onOutcome(outcome(0, 0, 1));
  let resolved = false;
  void done.then(() => (resolved = true));
  await Promise.resolve();
  assert.equal(resolved, false);
  rec.onOutcome(outcome(1, 0, 1));
  await done;
});

test('sweep summary: fields of the highest sustained rate, plus every run', () => {
  const run = (rate: number): BenchSummary => ({ bench: 'cold', offeredRps: rate,
    achievedRps: rate, latencyMs: { p50: 1, p90: 1, p99: 1, max: 1 }, errors: {}, count: 1,
    ok: 1, durationS: 1, cpuSeconds: cpu });
  const s = sweepSummary([run(100), run(500), run(1000)], 1000, ['p99 1200 ms > 1000 ms']);
  assert.equal(s.offeredRps, 500);
  assert.equal(s.maxSustainedRps, 500);
  assert.equal(s.saturatedAtRps, 1000);
  assert.equal((s.runs as BenchSummary[]).length, 3);
  assert.equal(sweepSummary([run(100)], 100, ['x']).maxSustainedRps, null);
});

test('error-rate verdict: at the limit passes, past it or with nothing counted fails', () => {
  assert.equal(benchErrorRateMax, 0.01);
  assert.equal(errorRateVerdict({ count: 100, errors: { 503: 1 } }), null);
  assert.equal(errorRateVerdict({ count: 7500, errors: { 503: 5000, ECONNRESET: 390 } }),
    '5390 of 7500 requests failed (71.87 %, limit 1 %): 503 x5000, ECONNRESET x390');
  assert.equal(errorRateVerdict({ count: 0, errors: {} }), 'no request was counted in the measured window');
  assert.equal(errorRateVerdict({ count: 40, errors: { 503: 40 }, errorMessages: { 503: 'unschedulable: no workers registered' } }),
    '40 of 40 requests failed (100 %, limit 1 %): 503 x40 (unschedulable: no workers registered)');
});

test('errors keep the first message of each kind; transport errors and empty bodies keep none', () => {
  const rec = new RunRecorder((o) => o.tag >= 0);
  const body = (code: string, message: string) => () => JSON.stringify({ error: { code, message } });
  rec.onOutcome(outcome(-1, 0, 1, 502, { bodyText: body('x', 'in the warm-up, not counted') }));
  rec.onOutcome(outcome(0, 0, 1, 503, { bodyText: body('unschedulable', 'unschedulable: no workers registered') }));
  rec.onOutcome(outcome(1, 0, 1, 503, { bodyText: body('queue_full', 'a later 503') }));
  rec.onOutcome(outcome(2, 0, 1, 0));
  rec.onOutcome(outcome(3, 0, 1, 429));
  rec.onOutcome(outcome(4, 0, 1, 200, { bodyText: body('x', 'a success is no error') }));
  const s = openLoopSummary('cold', 100, rec,
    { startMs: 0, endMs: 1000, lateness: newHistogram(), undrained: 0, inflightMax: 1 }, cpu);
  assert.deepEqual(s.errors, { 429: 1, 503: 2, ECONNREFUSED: 1 });
  assert.deepEqual(s.errorMessages, { 503: 'unschedulable: no workers registered' });
  const clean = new RunRecorder();
  clean.onOutcome(outcome(0, 0, 1));
  assert.equal(openLoopSummary('cold', 100, clean,
    { startMs: 0, endMs: 1000, lateness: newHistogram(), undrained: 0, inflightMax: 1 }, cpu).errorMessages, undefined);
});

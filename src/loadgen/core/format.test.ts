/**
 * Goal: the per-invocation CSV has the documented columns in order and empty cells for
 * unknown values; a bench's text names each part of the latency split and the warm-up.
 * Method: format two hand rows and one hand summary.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { traceCsvHeader, traceCsvLine, formatBench } from './format.js';
import type { InvocationRow } from './trace-metrics.js';

test('CSV header and rows', () => {
  assert.equal(traceCsvHeader, 'function,invocationId,phase,startUnixUs,responseTimeUs,' +
    'requestedDurationUs,measuredDurationUs,coldStart,queueMs,status,error');
  const base: InvocationRow = { functionName: 'trace-func-3-abc', invocationId: 'min2.inv5',
    phase: 2, minute: 2, startUnixUs: 1_700_000_000_123_456.25, responseTimeUs: 45_123.6,
    requestedDurationUs: 10_000, measuredDurationUs: 10_050, coldStart: true, queueMs: 41.5,
    status: 200, error: '' };
  assert.equal(traceCsvLine(base),
    'trace-func-3-abc,min2.inv5,2,1700000000123456,45124,10000,10050,true,41.5,200,');
  const failed = { ...base, measuredDurationUs: NaN, coldStart: null, queueMs: NaN, status: 0,
    error: 'UND_ERR_SOCKET, "x"' };
  assert.equal(traceCsvLine(failed),
    'trace-func-3-abc,min2.inv5,2,1700000000123456,45124,10000,,,,0,"UND_ERR_SOCKET, ""x"""');
});

test('formatBench: the latency split and the warm-up, each on its own line', () => {
  const ms = (p50: number, p99: number) => ({ p50, p90: p99, p99, max: p99 });
  const text = formatBench({
    bench: 'cold', offeredRps: 100, achievedRps: 100, latencyMs: ms(60, 90), errors: {}, count: 100, ok: 100,
    durationS: 1, cpuSeconds: { controlPlane: null, dataPlane: null, workers: null, loadgen: 0.1 },
    clientWaitMs: ms(0.1, 2), dpQueueMs: ms(45, 70), beyondQueuesMs: ms(10, 20),
    warmup: { seconds: 2, count: 200, ok: 199, latencyMs: ms(150, 400), dpQueueMs: ms(140, 380) },
  });
  assert.match(text, /\n {2}of it waiting for a connection here: p50 0\.1 {2}p99 2 {2}max 2\n/);
  assert.match(text, /\n {2}of it in the DP's queue: p50 45 {2}p99 70 {2}max 70\n/);
  assert.match(text, /\n {2}of it the rest: p50 10 {2}p99 20 {2}max 20\n/);
  assert.match(text, /\nwarm-up \(2 s first, not counted\): 199 of 200 ok, latency ms p50 150 {2}p99 400\n/);
});

test('formatBench: each kind of error with the first message the cluster gave for it', () => {
  const ms = { p50: 0, p90: 0, p99: 0, max: 0 };
  const text = formatBench({
    bench: 'cold', offeredRps: 20, achievedRps: 0, latencyMs: ms, errors: { 503: 40, ECONNRESET: 2 }, count: 42, ok: 0,
    durationS: 2, cpuSeconds: { controlPlane: null, dataPlane: null, workers: null, loadgen: 0.1 },
    errorMessages: { 503: 'unschedulable: 0/1 workers available: 1 without an image runtime' },
  });
  assert.match(text, /\nerrors: 503×40, ECONNRESET×2\n {2}first 503: unschedulable: 0\/1 workers available: 1 without an image runtime\n/);
  assert.doesNotMatch(text, /first ECONNRESET/);
});

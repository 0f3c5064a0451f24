/**
 * Goal: scheduling latency, per-function geometric-mean slowdown and failure rate follow
 * Dirigent's plot_azure_500.py on rows small enough to compute by hand.
 * Method: six rows over two functions, values chosen so every quantity has a short closed form.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  quantileSorted,
  schedulingLatencyMs,
  slowdownByFunction,
  summarizeTrace,
  type InvocationRow,
} from './trace-metrics.js';

function row(p: Partial<InvocationRow>): InvocationRow {
  return {
    functionName: 'f', invocationId: 'min0.inv0', phase: 2, minute: 0, startUnixUs: 0,
    responseTimeUs: 0, requestedDurationUs: 0, measuredDurationUs: Number.NaN, coldStart: false,
    queueMs: Number.NaN, status: 200, error: '', ...p,
  };
}

const rows: InvocationRow[] = [
  // a: slowdowns 2 and 8 -> geomean 4. b: slowdowns 3 (counted), 0.5 (dropped) -> 3.
  row({ functionName: 'a', responseTimeUs: 200_000, requestedDurationUs: 100_000,
    measuredDurationUs: 150_000, coldStart: true }),
  row({ functionName: 'a', responseTimeUs: 800_000, requestedDurationUs: 100_000 }),
  row({ functionName: 'b', responseTimeUs: 30_000, requestedDurationUs: 10_000 }),
  row({ functionName: 'b', responseTimeUs: 5_000, requestedDurationUs: 10_000 }),
  // Warm-up row: slowdown 100 must not count.
  row({ functionName: 'b', phase: 1, responseTimeUs: 1_000_000, requestedDurationUs: 10_000 }),
  // Failure: no duration came back -> actual duration 0.
  row({ functionName: 'b', responseTimeUs: 2_000, requestedDurationUs: 10_000, status: 0,
    error: 'ECONNRESET', coldStart: null }),
];

test('scheduling latency = response − actual duration (measured | requested | 0)', () => {
  assert.deepEqual(rows.map(schedulingLatencyMs), [50, 700, 20, -5, 990, 2]);
});

test('slowdown: warm-up dropped, < 1 dropped, geometric mean per function name', () => {
  const s = slowdownByFunction(rows);
  assert.equal(s.size, 2);
  assert.ok(Math.abs((s.get('a') ?? 0) - 4) < 1e-12);
  assert.ok(Math.abs((s.get('b') ?? 0) - 3) < 1e-12);
});

test('quantiles interpolate linearly (numpy default)', () => {
  assert.equal(quantileSorted([1, 2, 3, 4], 0.5), 2.5);
  assert.equal(quantileSorted([10], 0.99), 10);
  assert.ok(Number.isNaN(quantileSorted([], 0.5)));
  assert.ok(Math.abs(quantileSorted([0, 100], 0.99) - 99) < 1e-12);
});

test('summary over the hand rows', () => {
  const s = summarizeTrace(rows);
  assert.equal(s.count, 6);
  assert.equal(s.failures, 1);
  assert.equal(s.failureRate, 1 / 6);
  assert.equal(s.sandboxesCreated, 1);
  assert.equal(s.measuredDurationRows, 1);
  // Sorted scheduling latencies: -5, 2, 20, 50, 700, 990 -> p50 = (20 + 50) / 2.
  assert.equal(s.schedulingLatencyMs.p50, 35);
  assert.ok(Math.abs(s.schedulingLatencyMs.p99 - (700 + 0.95 * 290)) < 1e-9);
  assert.equal(s.slowdown.functions, 2);
  assert.ok(Math.abs(s.slowdown.p50 - 3.5) < 1e-12);
  assert.deepEqual(s.errors, { ECONNRESET: 1 });
});

/**
 * Goal: the plan holds every invocation of the first W + E minutes once, sorted by time, with
 * InVitro's ids and phases, reproducibly from the seed.
 * Method: the shipped samples (counts from traces/README.md) and a two-function hand example.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { parseIatMode, type IatMode } from './iat.js';
import { parseTrace, type TraceFunction } from './trace-csv.js';
import { readSample, samplesSkip as skip } from '../testing/sample-traces.js';
import { buildTracePlan, invocationId, tracePhase } from './trace-plan.js';

const equidistant = parseIatMode('equidistant') as IatMode;

function fn(rowIndex: number, counts: number[], runtimeMs: number): TraceFunction {
  const r = runtimeMs;
  return {
    rowIndex, hashOwner: 'o', hashApp: 'a', hashFunction: `f${rowIndex}`, trigger: 'http',
    invocationsPerMinute: counts, durationAverageMs: r,
    runtimeMs: { p0: r, p1: r, p25: r, p50: r, p75: r, p99: r, p100: r },
    memoryMiB: { p1: 64, p5: 64, p25: 64, p50: 64, p75: 64, p95: 64, p99: 64, p100: 64 },
  };
}

test('hand example: two functions, equidistant, sorted with trace-order ties', () => {
  const plan = buildTracePlan([fn(0, [2, 1], 100), fn(1, [1, 0], 250)],
    { warmupMinutes: 1, experimentMinutes: 1, iat: equidistant, seed: 1 });
  assert.equal(plan.count, 4);
  assert.deepEqual([...plan.timeUs], [0, 0, 30e6, 60e6]);
  assert.deepEqual([...plan.functionIndex], [0, 1, 0, 0]);
  const ids = [...plan.minute].map((m, i) => invocationId(m, plan.indexInMinute[i]));
  assert.deepEqual(ids, ['min0.inv0', 'min0.inv0', 'min0.inv1', 'min1.inv0']);
  assert.deepEqual([...plan.runtimeMs], [100, 250, 100, 100]);
  assert.deepEqual([...plan.minute].map((m) => tracePhase(m, plan.warmupMinutes)), [1, 1, 1, 2]);
});

const samples = [['dirigent-samples_100', 19_058], ['invitro-example', 525]] as const;

test('samples: plan sizes match the README; all IAT modes sort', { skip }, () => {
  for (const [name, expected] of samples) {
    const parsed = parseTrace(readSample(name), 30);
    assert.equal(parsed.kind, 'ok');
    if (parsed.kind !== 'ok') return;
    for (const iat of ['equidistant', 'exponential', 'uniform_shift']) {
      const plan = buildTracePlan(parsed.functions, { warmupMinutes: 10, experimentMinutes: 20,
        iat: parseIatMode(iat) as IatMode, seed: 42 });
      assert.equal(plan.count, expected, `${name} ${iat}`);
      for (let i = 1; i < plan.count; i++) assert.ok(plan.timeUs[i] >= plan.timeUs[i - 1]);
      assert.ok(plan.runtimeMs.every((r) => r >= 1 && r <= 60_000));
      assert.ok(plan.memoryMiB.every((m) => m >= 1 && m <= 10_240));
      assert.ok(plan.timeUs[plan.count - 1] < 30 * 60e6);
    }
  }
});

test('samples: the same seed gives the same plan', { skip }, () => {
  const parsed = parseTrace(readSample('invitro-example'), 10);
  assert.equal(parsed.kind, 'ok');
  if (parsed.kind !== 'ok') return;
  const iat = parseIatMode('exponential') as IatMode;
  const o = { warmupMinutes: 0, experimentMinutes: 10, iat };
  const a = buildTracePlan(parsed.functions, { ...o, seed: 7 });
  const b = buildTracePlan(parsed.functions, { ...o, seed: 7 });
  const c = buildTracePlan(parsed.functions, { ...o, seed: 8 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.timeUs, c.timeUs);
});

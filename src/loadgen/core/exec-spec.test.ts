/**
 * Goal: runtime and memory draws pick InVitro's piecewise-uniform bin, truncate bounds like Go,
 * and clamp to [1 ms, 60 s] and [1, 10240] MiB; registration requests are pct100/10, inside the API bounds.
 * Method: scripted quantiles and bin offsets with hand-computed results, plus a property that
 * every draw lands in the half-open bin its quantile selects.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import { sandboxBounds } from '../../config/defaults.js';
import { seededRng } from '../../shared/rng.js';
import {
  drawExecSpec,
  drawMemoryMiB,
  drawRuntimeMs,
  randIntBetween,
  traceResourceRequests,
  type MemoryPercentilesMiB,
  type RuntimePercentilesMs,
} from './exec-spec.js';
import { scriptedRng } from './scripted-rng.js';

const runtime: RuntimePercentilesMs = { p0: 1, p1: 10, p25: 100, p50: 200, p75: 300, p99: 900,
  p100: 1000 };
const memory: MemoryPercentilesMiB = { p1: 10, p5: 20, p25: 30, p50: 40, p75: 50, p95: 60,
  p99: 70, p100: 80 };

test('runtime bins: q selects the percentile pair, the int draw offsets from the low end', () => {
  const cases: Array<[number, number, number]> = [
    // [q, int offset, expected]
    [0, 0, 1], // q = 0 -> p0 exactly, no int draw
    [0.005, 3, 4], // (0, .01] -> [1, 10)
    [0.01, 0, 1], // boundary belongs to the lower bin
    [0.2, 5, 15], // (.01, .25] -> [10, 100)
    [0.3, 7, 107], // (.25, .5] -> [100, 200)
    [0.6, 99, 299], // (.5, .75] -> [200, 300)
    [0.9, 0, 300], // (.75, .99] -> [300, 900)
    [0.995, 50, 950], // (.99, 1) -> [900, 1000)
  ];
  for (const [q, offset, expected] of cases) {
    const rng = scriptedRng([], q === 0 ? [] : [offset]);
    assert.equal(drawRuntimeMs(q, runtime, rng), expected, `q=${q}`);
    assert.equal(rng.remaining(), 0);
  }
});

test('memory bins: q <= 0.01 is pct1 exactly, then the seven pairs', () => {
  assert.equal(drawMemoryMiB(0.01, memory, scriptedRng([])), 10);
  assert.equal(drawMemoryMiB(0.03, memory, scriptedRng([], [4])), 14);
  assert.equal(drawMemoryMiB(0.2, memory, scriptedRng([], [1])), 21);
  assert.equal(drawMemoryMiB(0.4, memory, scriptedRng([], [2])), 32);
  assert.equal(drawMemoryMiB(0.7, memory, scriptedRng([], [3])), 43);
  assert.equal(drawMemoryMiB(0.9, memory, scriptedRng([], [4])), 54);
  assert.equal(drawMemoryMiB(0.97, memory, scriptedRng([], [5])), 65);
  assert.equal(drawMemoryMiB(0.999, memory, scriptedRng([], [9])), 79);
});

test('bounds are truncated like Go int(); equal bounds return the value without a draw', () => {
  assert.equal(randIntBetween(scriptedRng([], [1]), 1.9, 3.7), 2); // [1, 3)
  assert.equal(randIntBetween(scriptedRng([]), 5.2, 5.9), 5);
  assert.throws(() => randIntBetween(scriptedRng([]), 9, 3), RangeError);
});

test('clamps: runtime to [1, 60000] ms, memory to [1, 10240] MiB', () => {
  const zeros: RuntimePercentilesMs = { p0: 0, p1: 0, p25: 0, p50: 0, p75: 0, p99: 0, p100: 0 };
  const huge: RuntimePercentilesMs = { p0: 9e5, p1: 9e5, p25: 9e5, p50: 9e5, p75: 9e5, p99: 9e5,
    p100: 9e5 };
  const tiny: MemoryPercentilesMiB = { p1: 0.4, p5: 0.4, p25: 0.4, p50: 0.4, p75: 0.4, p95: 0.4,
    p99: 0.4, p100: 0.4 };
  const big: MemoryPercentilesMiB = { p1: 2e4, p5: 2e4, p25: 2e4, p50: 2e4, p75: 2e4, p95: 2e4,
    p99: 2e4, p100: 2e4 };
  assert.deepEqual(drawExecSpec(zeros, tiny, scriptedRng([0.5, 0.5])),
    { runtimeMs: 1, memoryMiB: 1 });
  assert.deepEqual(drawExecSpec(huge, big, scriptedRng([0.5, 0.5])),
    { runtimeMs: 60_000, memoryMiB: 10_240 });
});

test('draw order is q_run, q_mem, runtime bin, memory bin', () => {
  // q_run 0.3 -> [100, 200) + 7; q_mem 0.4 -> [30, 40) + 2.
  const rng = scriptedRng([0.3, 0.4], [7, 2]);
  assert.deepEqual(drawExecSpec(runtime, memory, rng), { runtimeMs: 107, memoryMiB: 32 });
  assert.equal(rng.remaining(), 0);
});

test('property: a draw lands in the bin its quantile selects', () => {
  const runtimeBins: Array<[number, number, number]> = [
    [0.01, 1, 10], [0.25, 10, 100], [0.5, 100, 200], [0.75, 200, 300], [0.99, 300, 900],
    [1, 900, 1000],
  ];
  fc.assert(fc.property(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.integer(),
    (q, seed) => {
      const v = drawRuntimeMs(q, runtime, seededRng(seed));
      if (q === 0) return assert.equal(v, 1);
      const [, lo, hi] = runtimeBins.find(([upper]) => q <= upper) ?? runtimeBins[5];
      assert.ok(v >= lo && v < hi && Number.isInteger(v), `q=${q} v=${v}`);
    }));
});

test('registration requests: cpu 1000m/10, memory trunc(pct100)/10 MiB, raised to the API minimum', () => {
  assert.deepEqual(traceResourceRequests(670.4), { cpuMillis: 100, memoryMiB: 67 });
  assert.deepEqual(traceResourceRequests(152), { cpuMillis: 100, memoryMiB: 15 });
  // Below sandboxBounds.memoryMiBMin (8) the API refuses the function: a replay of the Azure
  // sample registered none of its small functions (HTTP 400 resources.memoryMiB).
  assert.deepEqual(traceResourceRequests(79.9), { cpuMillis: 100, memoryMiB: sandboxBounds.memoryMiBMin });
  assert.deepEqual(traceResourceRequests(10.67), { cpuMillis: 100, memoryMiB: sandboxBounds.memoryMiBMin });
  assert.deepEqual(traceResourceRequests(9.9), { cpuMillis: 100, memoryMiB: sandboxBounds.memoryMiBMin });
});

test('registration requests are always inside the bounds the API accepts', () => {
  fc.assert(fc.property(fc.double({ min: 0, max: 1e7, noNaN: true }), (pct100) => {
    const r = traceResourceRequests(pct100);
    assert.ok(r.memoryMiB >= sandboxBounds.memoryMiBMin && r.memoryMiB <= sandboxBounds.memoryMiBMax, `memory ${r.memoryMiB}`);
    assert.ok(r.cpuMillis >= sandboxBounds.cpuMillisMin && r.cpuMillis <= sandboxBounds.cpuMillisMax, `cpu ${r.cpuMillis}`);
  }));
});

/**
 * Goal: open-loop schedules are exact: ceil(R·S) sends, fixed spacing 1/R, and in the
 * cold-start plan every function gets exactly one request; the sender's step takes exactly the
 * due sends, catching up after a late tick without drift.
 * Method: hand-computed values and properties over random rates and durations.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import { seededRng } from '../../shared/rng.js';
import {
  coldPoolConnections,
  coldStartPlan,
  dueEnd,
  exponentialScheduleMs,
  fixedRateScheduleMs,
  sendCount,
} from './schedule.js';

test('coldPoolConnections: room for each request to hold a connection for holdS at the highest rate', () => {
  assert.equal(coldPoolConnections(100, 0.5, 256), 256);
  assert.equal(coldPoolConnections(512, 0.5, 256), 256);
  assert.equal(coldPoolConnections(3_000, 0.5, 256), 1_500);
  assert.equal(coldPoolConnections(4_001, 0.5, 256), 2_001);
});

test('coldStartPlan with a warm-up: a linear ramp to the rate, then the measured sends at the rate without a pause', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 5_000 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }),
    (rate, durationTenths, warmupTenths) => {
      const durationS = durationTenths / 10;
      const warmupS = warmupTenths / 10;
      const plan = coldStartPlan(rate, durationS, warmupS);
      const ramp = plan.measuredFrom;
      assert.equal(ramp, Math.ceil((rate * warmupS) / 2 - 1e-9));
      assert.equal(plan.functionCount, ramp + Math.ceil(rate * durationS - 1e-9));
      assert.equal(new Set(plan.functionOfSend).size, plan.functionCount, 'no function twice');
      for (let i = 1; i < plan.functionCount; i++) assert.ok(plan.scheduleMs[i] > plan.scheduleMs[i - 1], `send ${i} in order`);
      if (ramp > 0) assert.ok(plan.scheduleMs[ramp - 1] < warmupS * 1000);
      for (let j = 0; ramp + j < plan.functionCount; j++) {
        assert.ok(Math.abs(plan.scheduleMs[ramp + j] - (ramp > 0 ? warmupS * 1000 : 0) - (j * 1000) / rate) < 1e-6);
      }
    }));
  // The ramp's rate grows linearly: its second half carries three times the sends of its first.
  const plan = coldStartPlan(1_000, 1, 2);
  const firstHalf = plan.scheduleMs.subarray(0, plan.measuredFrom).filter((t) => t < 1_000).length;
  assert.equal(plan.measuredFrom, 1_000);
  assert.ok(Math.abs(firstHalf - 250) <= 1, `first half of the ramp: ${firstHalf} sends`);
  assert.equal(coldStartPlan(1_000, 1).measuredFrom, 0);
});

test('sendCount is ceil(R·S), immune to float noise', () => {
  assert.equal(sendCount(0.1, 30), 3); // 0.1 * 30 = 3.0000000000000004
  assert.equal(sendCount(100, 1), 100);
  assert.equal(sendCount(2500, 0.5), 1250);
  assert.equal(sendCount(3, 0.5), 2); // 1.5 -> 2
  assert.equal(sendCount(7, 0), 0);
});

test('fixed rate: send i at i·1000/R ms', () => {
  assert.deepEqual([...fixedRateScheduleMs(4, 5)], [0, 250, 500, 750, 1000]);
});

test('cold plan: exactly one request per function, at the offered rate, inside the run', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 50 }),
    (rate, tenths) => {
      const durationS = tenths / 10;
      const plan = coldStartPlan(rate, durationS);
      assert.equal(plan.functionCount, Math.ceil(rate * durationS - 1e-9));
      assert.equal(plan.scheduleMs.length, plan.functionCount);
      const seen = new Set(plan.functionOfSend);
      assert.equal(seen.size, plan.functionCount, 'no function twice');
      for (let i = 0; i < plan.functionCount; i++) {
        assert.ok(plan.functionOfSend[i] < plan.functionCount);
        assert.ok(Math.abs(plan.scheduleMs[i] - (i * 1000) / rate) < 1e-9);
      }
      assert.ok(plan.scheduleMs[plan.functionCount - 1] < durationS * 1000);
    }));
});

test('exponential arrivals: seeded, ascending, mean gap close to 1/R', () => {
  const a = exponentialScheduleMs(1000, 20_000, seededRng(5));
  assert.deepEqual(a, exponentialScheduleMs(1000, 20_000, seededRng(5)));
  for (let i = 1; i < a.length; i++) assert.ok(a[i] >= a[i - 1]);
  const meanGapMs = a[a.length - 1] / (a.length - 1);
  assert.ok(Math.abs(meanGapMs - 1) < 0.03, `mean gap ${meanGapMs}`);
});

test('dueEnd takes every due send, catches up at once, and respects the per-tick cap', () => {
  const s = fixedRateScheduleMs(1000, 10); // 0, 1, ..., 9 ms
  assert.equal(dueEnd(s, 0, 0, 100), 1);
  assert.equal(dueEnd(s, 1, 0.5, 100), 1, 'nothing due yet');
  assert.equal(dueEnd(s, 1, 5.2, 100), 6, 'a late tick fires 1..5 together');
  assert.equal(dueEnd(s, 6, 100, 2), 8, 'capped per tick');
  assert.equal(dueEnd(s, 8, 100, 100), 10, 'never past the end');
});

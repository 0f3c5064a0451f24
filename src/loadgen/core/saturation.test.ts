/**
 * Goal: the sweep stops exactly when achieved < 90 % of offered, p99 > 1 s or errors > 1 %.
 * Method: runs just inside and just outside each threshold.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { defaultSaturationRule as rule, saturationReasons, sweepOrder } from './saturation.js';

const healthy = { offeredRps: 1000, achievedRps: 990, p99Ms: 80, count: 10_000, errors: 0 };

test('a healthy run is not saturated; the thresholds themselves still pass', () => {
  assert.deepEqual(saturationReasons(healthy, rule), []);
  assert.deepEqual(saturationReasons({ ...healthy, achievedRps: 900, p99Ms: 1000, errors: 100 },
    rule), []);
});

test('each rule trips on its own, and reasons accumulate', () => {
  assert.equal(saturationReasons({ ...healthy, achievedRps: 899.9 }, rule).length, 1);
  assert.match(saturationReasons({ ...healthy, p99Ms: 1000.1 }, rule)[0], /p99/);
  assert.match(saturationReasons({ ...healthy, errors: 101 }, rule)[0], /error rate 1\.01%/);
  assert.equal(saturationReasons({ offeredRps: 800, achievedRps: 715, p99Ms: 1200, count: 100,
    errors: 2 }, rule).length, 3);
});

test('sweep order is ascending without duplicates', () => {
  assert.deepEqual(sweepOrder([1000, 100, 500, 100]), [100, 500, 1000]);
});

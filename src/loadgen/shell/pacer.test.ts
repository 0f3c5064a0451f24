/**
 * Goal: the single-timer pacer fires every send once, in schedule order, never early, and
 * records each send's lateness; a late start catches up at once instead of drifting.
 * Method: a 300 ms schedule with a deliberate 50 ms event-loop block in the middle.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { fixedRateScheduleMs } from '../core/schedule.js';
import { runOpenLoop } from './pacer.js';

test('fires in order, never early, catches up after a stall', { timeout: 10_000 }, async () => {
  const schedule = fixedRateScheduleMs(500, 150); // every 2 ms for 300 ms
  const fired: number[] = [];
  const offsets: number[] = [];
  let start = -1;
  const result = await runOpenLoop(schedule, (i, nowMs) => {
    if (start < 0) start = nowMs;
    fired.push(i);
    offsets.push(nowMs - start);
    if (i === 50) {
      const until = performance.now() + 50; // block the loop: sends 51..75 fall due meanwhile
      while (performance.now() < until);
    }
  });
  assert.deepEqual(fired, [...Array(150).keys()]);
  assert.equal(result.lateness.totalCount, 150);
  for (let i = 0; i < 150; i++) assert.ok(offsets[i] >= schedule[i] - 1, `send ${i} early`);
  // After the stall the backlog goes at once, and the schedule resumes without drift.
  assert.ok(offsets[60] - offsets[52] < 5, 'backlog fired together');
  assert.ok(offsets[149] - schedule[149] < 20, `drifted: ${offsets[149] - schedule[149]} ms`);
});

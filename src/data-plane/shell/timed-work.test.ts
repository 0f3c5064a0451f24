/**
 * Goal: the DP's periodic jobs run only while the core has timed work: a wake starts them, a run
 * that leaves nothing stops them, the next wake starts them again, and close is final.
 * Method: node:test's mock timers (virtual time).
 */
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { TimedWorkTimers } from './timed-work.js';

describe('TimedWorkTimers', () => {
  it('runs its jobs from a wake until a run leaves no work, and again after the next wake', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      let work = 0;
      const runs: string[] = [];
      const t = new TimedWorkTimers([
        { periodMs: 100, run: () => runs.push('demand') },
        { periodMs: 50, run: () => { runs.push('expiry'); work = Math.max(0, work - 1); } },
      ], () => work > 0);
      mock.timers.tick(1_000);
      assert.deepEqual(runs, [], 'asleep until woken');
      work = 3;
      t.wake();
      t.wake(); // a second wake while running adds no timers
      assert.equal(t.running, true);
      for (let i = 0; i < 3; i++) mock.timers.tick(50); // one step per period: Node 20's mock runs a timer set during a tick at the next
      // expiry at 50 (work 3 -> 2), demand then expiry at 100 (-> 1), expiry at 150 (-> 0): stops.
      assert.deepEqual(runs, ['expiry', 'demand', 'expiry', 'expiry']);
      assert.equal(t.running, false);
      for (let i = 0; i < 20; i++) mock.timers.tick(50);
      assert.equal(runs.length, 4, 'no run while asleep');
      work = 1;
      t.wake();
      mock.timers.tick(50);
      assert.deepEqual(runs.slice(4), ['expiry']);
      assert.equal(t.running, false);
      work = 1;
      t.close();
      t.wake();
      for (let i = 0; i < 20; i++) mock.timers.tick(50);
      assert.equal(t.running, false, 'closed: never again');
      assert.equal(runs.length, 5);
    } finally {
      mock.timers.reset();
    }
  });
});

/**
 * Goal: one window's histogram readings become its delay (interval minus the resolution) and
 * windows whose max passes 5 ms count as stalls; the adaptive monitor turns its fine timer off
 * only after a loop stayed idle, and back on at the first check that saw work, so a busy loop is
 * always measured finely; the coarse timer's intervals read as delays as the fine one's do. Method: readings and busy times given by hand (no timers), a property over check runs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  closeWindow,
  asFineReading,
  initialLoopDelayState,
  initialLoopMonitorMode,
  loopDelayResolutionMs,
  loopMonitorLimits,
  loopStallThresholdMs,
  mergeReadings,
  nextLoopMonitorMode,
  windowOf,
  type LoopMonitorMode,
} from './loop-delay-window.js';

const ms = (x: number): number => x * 1e6;

describe('loop-delay windows', () => {
  it('takes the resolution off the recorded tick interval, never below 0', () => {
    assert.deepEqual(windowOf({ count: 500, maxNs: ms(9.5), p99Ns: ms(2.25) }, 2), { maxMs: 7.5, p99Ms: 0.25 });
    assert.deepEqual(windowOf({ count: 500, maxNs: ms(1.5), p99Ns: ms(1.2) }, 2), { maxMs: 0, p99Ms: 0 });
  });

  it('reads an empty window (the timer never fired) as no delay', () => {
    assert.deepEqual(windowOf({ count: 0, maxNs: 0, p99Ns: 0 }), { maxMs: 0, p99Ms: 0 });
  });

  it('counts windows, and stalls only when the max passes the threshold', () => {
    const at = (delayMs: number) => ({ count: 100, maxNs: ms(delayMs + loopDelayResolutionMs), p99Ns: ms(loopDelayResolutionMs) });
    let s = initialLoopDelayState;
    s = closeWindow(s, at(loopStallThresholdMs));
    assert.deepEqual(s, { last: { maxMs: loopStallThresholdMs, p99Ms: 0 }, windows: 1, stalls: 0 }, 'exactly 5 ms is not over 5 ms');
    s = closeWindow(s, at(12));
    s = closeWindow(s, at(1));
    assert.deepEqual(s, { last: { maxMs: 1, p99Ms: 0 }, windows: 3, stalls: 1 });
    assert.deepEqual(initialLoopDelayState, { last: null, windows: 0, stalls: 0 }, 'the initial state is not mutated');
  });
});

describe('the adaptive loop monitor', () => {
  const L = loopMonitorLimits;
  const run = (checks: [busyMs: number, elapsedMs: number][]): LoopMonitorMode => checks.reduce((m, [b, e]) => nextLoopMonitorMode(m, b, e), initialLoopMonitorMode);
  const idle: [number, number] = [L.idleBusyShareMax * L.checkMs, L.checkMs];
  const busy: [number, number] = [L.idleBusyShareMax * L.checkMs + 0.01, L.checkMs];

  it('starts fine, goes coarse after idle checks in a row, and back to fine at the first busy check', () => {
    assert.deepEqual(initialLoopMonitorMode, { fine: true, idleChecks: 0 });
    const almost = Array.from({ length: L.idleChecksToCoarse - 1 }, () => idle);
    assert.equal(run(almost).fine, true);
    assert.equal(run([...almost, busy, ...almost]).fine, true, 'a busy check starts the count again');
    const coarse = run([...almost, idle]);
    assert.deepEqual(coarse, { fine: false, idleChecks: 0 });
    assert.equal(nextLoopMonitorMode(coarse, ...idle).fine, false);
    assert.deepEqual(nextLoopMonitorMode(coarse, ...busy), { fine: true, idleChecks: 0 });
    // A check 60 ms late behind a 60 ms stall: busy, so fine again.
    assert.equal(nextLoopMonitorMode(coarse, 60, L.checkMs + 60).fine, true);
    assert.equal(initialLoopMonitorMode.fine, true, 'the initial mode is not mutated');
  });

  it('is fine after every busy check, and goes coarse only after the run of idle ones (property)', () => {
    const check = fc.tuple(fc.double({ min: 0, max: 200, noNaN: true }), fc.double({ min: 1, max: 200, noNaN: true }));
    fc.assert(fc.property(fc.array(check, { maxLength: 60 }), (checks) => {
      let m = initialLoopMonitorMode;
      let idleRun = 0;
      for (const [busyMs, elapsedMs] of checks) {
        const wasFine = m.fine;
        m = nextLoopMonitorMode(m, busyMs, elapsedMs);
        const sawWork = busyMs > L.idleBusyShareMax * elapsedMs;
        if (sawWork) assert.equal(m.fine, true);
        idleRun = wasFine && !sawWork ? idleRun + 1 : 0;
        if (wasFine && !m.fine) assert.equal(idleRun, L.idleChecksToCoarse);
      }
    }), { numRuns: 500 });
  });

  it('reads a coarse timer\'s intervals as the delay over its own resolution', () => {
    const coarse = (intervalMs: number) => windowOf(asFineReading({ count: 3, maxNs: ms(intervalMs), p99Ns: ms(intervalMs) }, L.coarseResolutionMs));
    assert.deepEqual(coarse(L.coarseResolutionMs + 37.5), { maxMs: 37.5, p99Ms: 37.5 });
    assert.deepEqual(coarse(L.coarseResolutionMs - 0.4), { maxMs: 0, p99Ms: 0 }, 'early (libuv\'s millisecond clock) is no delay');
    assert.deepEqual(coarse(1), { maxMs: 0, p99Ms: 0 });
    assert.deepEqual(asFineReading({ count: 0, maxNs: 0, p99Ns: 0 }, L.coarseResolutionMs), { count: 0, maxNs: 0, p99Ns: 0 });
    assert.equal(loopDelayResolutionMs < L.coarseResolutionMs, true);
  });

  it('merges a window\'s fine and coarse readings: counts add, the max is exact, the p99 the larger', () => {
    const fine = { count: 400, maxNs: 3e6, p99Ns: 2.5e6 };
    const coarse = { count: 20, maxNs: 9e6, p99Ns: 9e6 };
    const none = { count: 0, maxNs: 0, p99Ns: 0 };
    assert.deepEqual(mergeReadings(fine, coarse), { count: 420, maxNs: 9e6, p99Ns: 9e6 });
    assert.deepEqual(mergeReadings(coarse, fine), { count: 420, maxNs: 9e6, p99Ns: 9e6 });
    assert.deepEqual(mergeReadings(fine, none), fine);
    assert.deepEqual(mergeReadings(none, coarse), coarse);
    // An empty histogram's fields say nothing (perf_hooks): it must not count.
    assert.deepEqual(mergeReadings({ count: 0, maxNs: 0, p99Ns: 7e6 }, coarse), coarse);
  });
});

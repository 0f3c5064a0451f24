/**
 * Goal: one window's histogram readings become its delay (interval minus the resolution) and
 * windows whose max passes 5 ms count as stalls. Method: readings given by hand (no timers).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { closeWindow, initialLoopDelayState, loopDelayResolutionMs, loopStallThresholdMs, windowOf } from './loop-delay-window.js';

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

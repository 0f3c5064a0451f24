/**
 * Goal: a component's registry shows the four event-loop delay metrics in a form the bench's
 * parser reads, several registries in one process share one monitor, and it stops with the last;
 * the monitor turns its fine timer off in an idle process and a stall that begins then is still
 * counted (and turns it back on).
 * Method: real prom-client registries; no waiting (window 0 is the state before any window ends),
 * but for the adaptive case, which waits on the real timers (bounded) and stalls this process by
 * spinning for 60 ms.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import client from 'prom-client';
import { parseLoopDelayMetrics } from '../loadgen/core/loop-delay.js';
import { loopMonitorLimits } from './loop-delay-window.js';
import { loopDelayMonitorFine, loopDelayMonitorUsers, loopDelayState, registerLoopDelayMetrics } from './loop-delay.js';

describe('registerLoopDelayMetrics', () => {
  it('exposes max, p99, stalls and windows, parsed back by the bench', async () => {
    const registry = new client.Registry();
    const stop = registerLoopDelayMetrics(registry);
    try {
      const text = await registry.metrics();
      for (const name of ['dirigent_event_loop_delay_max_seconds', 'dirigent_event_loop_delay_p99_seconds', 'dirigent_event_loop_stalls_total', 'dirigent_event_loop_windows_total']) {
        assert.match(text, new RegExp(`^${name} \\d`, 'm'), name);
      }
      assert.deepEqual(parseLoopDelayMetrics(text), { windows: 0, stalls: 0, maxMs: 0, p99Ms: 0 });
    } finally {
      stop();
    }
  });

  it('shares one monitor between registries and stops it with the last one', () => {
    const users = loopDelayMonitorUsers();
    const stops = [registerLoopDelayMetrics(new client.Registry()), registerLoopDelayMetrics(new client.Registry())];
    assert.equal(loopDelayMonitorUsers(), users + 2);
    stops[0]!();
    stops[0]!(); // a second stop of the same registry must not release the other's hold
    assert.equal(loopDelayMonitorUsers(), users + 1, 'still running for the second registry');
    stops[1]!();
    assert.equal(loopDelayMonitorUsers(), users, 'stopped with the last one');
  });

  it('goes coarse while the process is idle, and counts a stall that starts then', { timeout: 60_000 }, async () => {
    const until = async (what: string, ok: () => boolean, waitMs = 5_000): Promise<void> => {
      const deadline = Date.now() + waitMs;
      while (!ok()) {
        if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const stop = registerLoopDelayMetrics(new client.Registry());
    try {
      assert.equal(loopDelayMonitorFine(), true, 'a new monitor starts fine');
      await until('the monitor to go coarse', () => !loopDelayMonitorFine(), 10_000);
      // The window that held this process's start (and any stall in it) closes first.
      const windows = loopDelayState().windows;
      await until('a window to close', () => loopDelayState().windows > windows);
      // Coarse for two checks in a row: the fine timer no longer lingers (it runs one check on).
      for (let settled = false, tries = 0; !settled; tries += 1) {
        assert.ok(tries < 20, 'the monitor settles coarse in an idle process');
        await until('the monitor coarse again', () => !loopDelayMonitorFine(), 10_000);
        await new Promise((r) => setTimeout(r, 2 * loopMonitorLimits.checkMs + 20));
        settled = !loopDelayMonitorFine();
      }
      const stallsBefore = loopDelayState().stalls;
      const spinUntil = Date.now() + 60;
      while (Date.now() < spinUntil) { /* a 60 ms stall */ }
      await until('busy again: the fine timer back', () => loopDelayMonitorFine(), 500);
      // The window that holds it reads it (coarse: short by up to 10 ms), and counts a stall.
      let longestMs = 0;
      await until('the stall read as 40 ms or more', () => {
        longestMs = Math.max(longestMs, loopDelayState().last?.maxMs ?? 0);
        return longestMs >= 40;
      }, 3_000);
      assert.ok(loopDelayState().stalls > stallsBefore);
      // A coarse spell inside one window (a window's close resets the timer too): the fine
      // timer's restart must not read the spell (200 ms or more) as one delay.
      const spin = (ms: number): void => {
        const until = Date.now() + ms;
        while (Date.now() < until) { /* work */ }
      };
      const windowsAt = loopDelayState().windows;
      await until('a window to close', () => loopDelayState().windows > windowsAt);
      spin(5);
      await until('fine at the start of the window', () => loopDelayMonitorFine(), 500);
      // (If this takes past the window's end, the check below cannot fail: a window's close
      // resets the timer. It never fails falsely.)
      await until('coarse again', () => !loopDelayMonitorFine(), 10_000);
      await new Promise((r) => setTimeout(r, 200));
      spin(5);
      await until('work: the fine timer back', () => loopDelayMonitorFine(), 500);
      const maxima: number[] = [];
      for (let w = loopDelayState().windows; maxima.length < 2; w += 1) {
        await until('a window to close', () => loopDelayState().windows > w);
        maxima.push(loopDelayState().last?.maxMs ?? -1);
      }
      // A busy machine delays an idle process by a few ms; the coarse spell would read 200+.
      assert.ok(maxima.every((ms) => ms >= 0 && ms < 150), `window maxima after the restart: ${maxima.join(', ')} ms`);
    } finally {
      stop();
    }
  });
});

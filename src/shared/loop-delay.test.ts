/**
 * Goal: a component's registry shows the four event-loop delay metrics in a form the bench's
 * parser reads, several registries in one process share one monitor, and it stops with the last.
 * Method: real prom-client registries; no waiting (window 0 is the state before any window ends).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import client from 'prom-client';
import { parseLoopDelayMetrics } from '../loadgen/core/loop-delay.js';
import { loopDelayMonitorUsers, registerLoopDelayMetrics } from './loop-delay.js';

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
});

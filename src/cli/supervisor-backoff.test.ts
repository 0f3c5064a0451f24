import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { healthyRunMs, nextRestart, restartBackoffMsMax, restartBackoffMsMin } from './supervisor-backoff.js';

describe('nextRestart', () => {
  it('starts at the minimum and doubles while the component keeps dying young', () => {
    let h = { restarts: 0, startedAtMs: 0 };
    const waits: number[] = [];
    for (let i = 0; i < 4; i += 1) {
      const d = nextRestart(h, h.startedAtMs + 10);
      waits.push(d.backoffMs);
      h = { restarts: d.restarts, startedAtMs: h.startedAtMs + 10 + d.backoffMs };
    }
    assert.deepEqual(waits, [restartBackoffMsMin, restartBackoffMsMin * 2, restartBackoffMsMin * 4, restartBackoffMsMin * 8]);
    assert.equal(h.restarts, 4);
  });

  it('never waits longer than the maximum', () => {
    assert.equal(nextRestart({ restarts: 1_000, startedAtMs: 0 }, 1).backoffMs, restartBackoffMsMax);
  });

  it('forgets the streak after a healthy run', () => {
    assert.deepEqual(nextRestart({ restarts: 7, startedAtMs: 0 }, healthyRunMs), { restarts: 1, backoffMs: restartBackoffMsMin });
  });
});

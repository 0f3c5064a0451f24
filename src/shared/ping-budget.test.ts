/**
 * Goal: a peer gets a burst of pings, then one per refill period; keepalive pings at any sane
 * interval are never refused; a flood is refused until the bucket refills.
 * Method: PingBudget in virtual time (no clock read).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PingBudget } from './ping-budget.js';

const limits = { burstMax: 10, refillMs: 1_000 };

describe('PingBudget', () => {
  it('allows a burst of burstMax, then refuses until a period has passed', () => {
    const b = new PingBudget(limits, 0);
    for (let i = 0; i < 10; i++) assert.equal(b.take(5), true, `ping ${i}`);
    assert.equal(b.take(5), false);
    assert.equal(b.take(999), false);
    assert.equal(b.take(1_000), true);
    assert.equal(b.take(1_001), false);
    assert.equal(b.take(3_000), true);
    assert.equal(b.take(3_000), true);
    assert.equal(b.take(3_000), false);
  });

  it('never refuses keepalive pings every second or slower, for an hour', () => {
    for (const everyMs of [1_000, 10_000, 60_000]) {
      const b = new PingBudget(limits, 0);
      for (let t = everyMs; t <= 3_600_000; t += everyMs) assert.equal(b.take(t), true, `every ${everyMs} ms, at ${t}`);
    }
  });

  it('a full bucket does not save up: after a long quiet spell the burst is burstMax, not more', () => {
    const b = new PingBudget(limits, 0);
    let allowed = 0;
    for (let i = 0; i < 100; i++) if (b.take(3_600_000)) allowed++;
    assert.equal(allowed, 10);
  });

  it('holds a flood to one ping per period on average', () => {
    const b = new PingBudget(limits, 0);
    let allowed = 0;
    for (let t = 0; t < 60_000; t += 1) if (b.take(t)) allowed++; // a ping every millisecond for a minute
    assert.equal(allowed, 10 + 59);
  });

  it('a ping after the server sent something is free, one per send, as gRPC servers count pings', () => {
    const b = new PingBudget(limits, 0);
    for (let i = 0; i < 10; i++) b.take(0);
    assert.equal(b.take(1), false, 'the bucket is empty');
    for (let i = 0; i < 100; i++) {
      b.credit(); // a DATA frame went out; the peer pings once per frame it reads (BDP estimate)
      assert.equal(b.take(2), true, `ping ${i} after a send`);
    }
    b.credit();
    b.credit();
    assert.equal(b.take(3), true);
    assert.equal(b.take(3), false, 'two sends before one ping still pay for one ping only');
  });
});


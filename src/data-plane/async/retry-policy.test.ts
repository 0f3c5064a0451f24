/**
 * Goal: the async retry policy retries what it should, backs off with full jitter inside the
 * exponential bound, and gives up after maxAttempts or past the max event age with the reason.
 * Method: pure calls with seeded rngs and virtual time; a property test for the jitter bounds.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { seededRng, type Rng } from '../../shared/rng.js';
import {
  backoffDelayMs, decideAfterAttempt, functionRetryPolicy, isRetryable, retryPolicyDefaults, tooOldToRun, validateRetryPolicy,
  type RetryPolicyConfig,
} from './retry-policy.js';
import type { AsyncAttempt, AttemptOutcome } from './types.js';

const c = retryPolicyDefaults;
const hourMs = 3_600_000;

function fixedRng(value: number): Rng {
  const rng: Rng = { next: () => value, int: (n) => Math.floor(value * n), split: () => rng };
  return rng;
}

function attempt(startedAtMs: number, outcome: AttemptOutcome): AsyncAttempt {
  return { startedAtMs, endedAtMs: startedAtMs + 100, outcome };
}

describe('retry policy: classification', () => {
  it('retries 5xx, timeouts and transport errors, not 4xx unless the function says so', () => {
    assert.deepEqual(
      (['ok', 'http_5xx', 'http_4xx', 'timeout', 'transport'] as const).map((o) => isRetryable(o, c)),
      [false, true, false, true, true],
    );
    assert.equal(isRetryable('http_4xx', { ...c, retryOn4xx: true }), true);
  });

  it('finishes a success as succeeded and a non-retried 4xx as failed', () => {
    const inv = { attempts: [], acceptedAtMs: 0 };
    assert.deepEqual(decideAfterAttempt(inv, attempt(0, 'ok'), c, 100, seededRng(1)), { kind: 'succeeded' });
    assert.deepEqual(decideAfterAttempt(inv, attempt(0, 'http_4xx'), c, 100, seededRng(1)), { kind: 'failed' });
  });
});

describe('retry policy: backoff', () => {
  it('grows the bound by the factor up to the cap and draws uniformly below it', () => {
    const cfg: RetryPolicyConfig = { ...c, backoffBaseMs: 1_000, backoffFactor: 2, backoffCapMs: 5_000 };
    const almostOne = fixedRng(0.999_999);
    assert.deepEqual([1, 2, 3, 4, 5, 60, 5_000].map((n) => backoffDelayMs(n, cfg, almostOne)), [999, 1_999, 3_999, 4_999, 4_999, 4_999, 4_999]);
    assert.equal(backoffDelayMs(3, cfg, fixedRng(0)), 0);
    assert.equal(backoffDelayMs(2, cfg, fixedRng(0.5)), 1_000);
    assert.equal(backoffDelayMs(4, { ...cfg, backoffBaseMs: 0 }, almostOne), 0);
  });

  it('stays within 0..min(cap, base*factor^(n-1)) for any seed and retry number', () => {
    fc.assert(fc.property(fc.integer(), fc.integer({ min: 1, max: 10_000 }), (seed, n) => {
      const d = backoffDelayMs(n, c, seededRng(seed));
      const bound = Math.min(c.backoffCapMs, c.backoffBaseMs * c.backoffFactor ** (n - 1));
      return Number.isInteger(d) && d >= 0 && d < Math.max(1, bound);
    }));
  });

  it('is the same for the same seed (replayable)', () => {
    const a = [1, 2, 3].map((n) => backoffDelayMs(n, c, seededRng(42)));
    const b = [1, 2, 3].map((n) => backoffDelayMs(n, c, seededRng(42)));
    assert.deepEqual(a, b);
  });
});

describe('retry policy: giving up', () => {
  it('retries until the third attempt in total, then dead-letters: attempts_exhausted', () => {
    const rng = fixedRng(0.5);
    const first = decideAfterAttempt({ attempts: [], acceptedAtMs: 0 }, attempt(0, 'http_5xx'), c, 100, rng);
    assert.deepEqual(first, { kind: 'retry', delayMs: 500, nextAttemptAtMs: 600 });
    const second = decideAfterAttempt({ attempts: [attempt(0, 'http_5xx')], acceptedAtMs: 0 }, attempt(600, 'timeout'), c, 700, rng);
    assert.deepEqual(second, { kind: 'retry', delayMs: 1_000, nextAttemptAtMs: 1_700 });
    const third = decideAfterAttempt(
      { attempts: [attempt(0, 'http_5xx'), attempt(600, 'timeout')], acceptedAtMs: 0 }, attempt(1_700, 'transport'), c, 1_800, rng,
    );
    assert.deepEqual(third, { kind: 'dead', reason: 'attempts_exhausted' });
  });

  it('dead-letters when the next attempt would start past the max event age', () => {
    const cfg = { ...c, maxAttempts: 10 };
    const late = decideAfterAttempt({ attempts: [], acceptedAtMs: 0 }, attempt(6 * hourMs - 200, 'http_5xx'), cfg, 6 * hourMs - 100, fixedRng(0.5));
    assert.deepEqual(late, { kind: 'dead', reason: 'max_event_age_exceeded' });
    assert.equal(tooOldToRun({ acceptedAtMs: 0 }, c, 6 * hourMs), false);
    assert.equal(tooOldToRun({ acceptedAtMs: 0 }, c, 6 * hourMs + 1), true);
  });

  it('counts attempts and age afresh after a re-drive', () => {
    const redrivenAtMs = 10 * hourMs;
    const inv = { attempts: [attempt(0, 'http_5xx'), attempt(600, 'http_5xx'), attempt(1_700, 'http_5xx')], acceptedAtMs: 0, redrivenAtMs };
    const d = decideAfterAttempt(inv, attempt(redrivenAtMs, 'http_5xx'), c, redrivenAtMs + 100, fixedRng(0.5));
    assert.deepEqual(d, { kind: 'retry', delayMs: 500, nextAttemptAtMs: redrivenAtMs + 600 });
    assert.equal(tooOldToRun(inv, c, redrivenAtMs + hourMs), false);
  });

  it('allows a single attempt when maxAttempts is 1', () => {
    const d = decideAfterAttempt({ attempts: [], acceptedAtMs: 0 }, attempt(0, 'http_5xx'), { ...c, maxAttempts: 1 }, 100, seededRng(3));
    assert.deepEqual(d, { kind: 'dead', reason: 'attempts_exhausted' });
  });
});

describe('retry policy: validation', () => {
  it('accepts the defaults and names the key, value and range of a bad setting', () => {
    assert.deepEqual(validateRetryPolicy(c), []);
    assert.deepEqual(validateRetryPolicy({ ...c, maxAttempts: 0, backoffFactor: 0.5 }), [
      'maxAttempts=0: must be an integer in 1..100',
      'backoffFactor=0.5: must be >= 1',
    ]);
  });
});

describe('retry policy: per-function settings', () => {
  const base: RetryPolicyConfig = { ...retryPolicyDefaults, maxAttempts: 3, maxEventAgeMs: 6 * hourMs };
  it('without settings the DP defaults apply, and zero keys fall back to them', () => {
    assert.equal(functionRetryPolicy(base, undefined), base);
    assert.deepEqual(functionRetryPolicy(base, { retryOn4xx: false, attemptsMax: 0, eventAgeMsMax: 0 }), base);
  });
  it("a function's retryOn4xx, attempts and age override the defaults (attempts clamped to the record bound)", () => {
    const p = functionRetryPolicy(base, { retryOn4xx: true, attemptsMax: 5, eventAgeMsMax: 60_000 });
    assert.deepEqual([p.retryOn4xx, p.maxAttempts, p.maxEventAgeMs, p.backoffBaseMs], [true, 5, 60_000, base.backoffBaseMs]);
    assert.equal(functionRetryPolicy(base, { retryOn4xx: false, attemptsMax: 1e9, eventAgeMsMax: 0 }).maxAttempts, 100);
  });
  it('with retryOn4xx a 404 is retried up to the function\'s attemptsMax, then dead', () => {
    const p = functionRetryPolicy(base, { retryOn4xx: true, attemptsMax: 4, eventAgeMsMax: 0 });
    const inv = { attempts: [] as AsyncAttempt[], acceptedAtMs: 0 };
    for (let n = 1; n < 4; n += 1) {
      const a = { ...attempt(n * 10, 'http_4xx'), statusCode: 404 };
      assert.equal(decideAfterAttempt(inv, a, p, a.endedAtMs, fixedRng(0.5)).kind, 'retry', `attempt ${n}`);
      inv.attempts.push(a);
    }
    assert.deepEqual(decideAfterAttempt(inv, attempt(50, 'http_4xx'), p, 150, fixedRng(0.5)), { kind: 'dead', reason: 'attempts_exhausted' });
    assert.equal(decideAfterAttempt({ attempts: [], acceptedAtMs: 0 }, attempt(0, 'http_4xx'), base, 100, fixedRng(0.5)).kind, 'failed');
  });
});

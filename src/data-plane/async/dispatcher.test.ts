/**
 * Goal: the dispatcher never starts an invocation it is running or has just finished, even when
 * a claim in flight hands it back (a lease that lapsed under load: the store lets its own
 * consumer take it over, and the claim's answer can arrive after the execution ended); but it
 * does start a retry that such a claim took after the retry was stored.
 * Method: AsyncDispatcher over a fake store whose claims the test answers by hand; poke() is
 * called directly (no timers); virtual time. Its timed claims (after start()) back off while it
 * is idle: node:test's mock timers, claims counted at each period's last millisecond and at it.
 */
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { silentLogger } from '../../shared/logger.js';
import { seededRng } from '../../shared/rng.js';
import { AsyncDispatcher, asyncClaimIdlePeriodMsMax, asyncClaimPeriodMs, asyncUnrecordedMax, claimPeriodMs, type ExecOutcome } from './dispatcher.js';
import { retryPolicyDefaults } from './retry-policy.js';
import type { AsyncStore } from './store.js';
import type { AsyncInvocation } from './types.js';

const inv = (id: string): AsyncInvocation => ({
  id, functionKey: 'fn', request: { method: 'POST', path: '/', query: '', headers: {}, body: Buffer.alloc(0) },
  status: 'running', attempts: [], nextAttemptAtMs: 0, acceptedAtMs: 0, owner: 'dp',
});

function deferred<T>(): { promise: Promise<T>; resolve(v: T): void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Until `pred` holds; fails after `turnsMax` timer turns (no wall-clock assertion). */
async function until(pred: () => boolean, what: string, turnsMax = 500): Promise<void> {
  for (let i = 0; i < turnsMax; i += 1) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`never happened: ${what}`);
}

function setup(): { d: AsyncDispatcher; claims: ReturnType<typeof deferred<AsyncInvocation[]>>[]; runs: ReturnType<typeof deferred<ExecOutcome>>[]; started: string[] } {
  const claims: ReturnType<typeof deferred<AsyncInvocation[]>>[] = [];
  const runs: ReturnType<typeof deferred<ExecOutcome>>[] = [];
  const started: string[] = [];
  const store = {
    claim: () => { const c = deferred<AsyncInvocation[]>(); claims.push(c); return c.promise; },
    complete: async () => 'ok',
    renew: async () => 'ok',
  } as unknown as AsyncStore;
  const d = new AsyncDispatcher({
    store, consumerId: 'dp', clock: { nowMs: () => 1_000, wallMs: () => 1_000 }, rng: seededRng(1), log: silentLogger,
    policy: retryPolicyDefaults, claimLeaseMs: 3_000, capacity: () => 4, ready: () => true, retried: () => {}, finished: () => {},
    execute: (i) => { started.push(i.id); const r = deferred<ExecOutcome>(); runs.push(r); return r.promise; },
  });
  return { d, claims, runs, started };
}

const ok: ExecOutcome = { kind: 'done', attempt: { startedAtMs: 1_000, endedAtMs: 1_000, outcome: 'ok', statusCode: 200 } };

/** Capacity 1, executions that answer at once, and claims and records the test resolves by hand. */
function recordsByHand(): {
  d: AsyncDispatcher; claims: ReturnType<typeof deferred<AsyncInvocation[]>>[]; completes: ReturnType<typeof deferred<string>>[]; started: string[]; finished: string[];
} {
  const claims: ReturnType<typeof deferred<AsyncInvocation[]>>[] = [];
  const completes: ReturnType<typeof deferred<string>>[] = [];
  const started: string[] = [];
  const finished: string[] = [];
  const store = {
    claim: () => { const c = deferred<AsyncInvocation[]>(); claims.push(c); return c.promise; },
    complete: () => { const c = deferred<string>(); completes.push(c); return c.promise; },
    renew: async () => 'ok',
  } as unknown as AsyncStore;
  const d = new AsyncDispatcher({
    store, consumerId: 'dp', clock: { nowMs: () => 1_000, wallMs: () => 1_000 }, rng: seededRng(1), log: silentLogger,
    policy: retryPolicyDefaults, claimLeaseMs: 3_000, capacity: () => 1, ready: () => true, retried: () => {},
    finished: (i) => finished.push(i.id),
    execute: async (i) => { started.push(i.id); return ok; },
  });
  return { d, claims, completes, started, finished };
}

describe('AsyncDispatcher', () => {
  it('does not run again an invocation that finished while a claim handing it back was in flight', async () => {
    const { d, claims, runs, started } = setup();
    d.poke();
    claims[0]!.resolve([inv('a')]);
    await settle();
    assert.deepEqual(started, ['a']);
    d.poke(); // a second claim goes out while `a` runs; its lease lapsed, so the store hands it back
    await settle();
    runs[0]!.resolve(ok);
    await settle();
    claims[1]!.resolve([inv('a')]);
    await settle();
    assert.deepEqual(started, ['a']);
    assert.equal(d.heldCount, 0);
    await d.close();
  });

  it('runs a retry that a claim in flight took after the retry was stored', async () => {
    // The claim leaves after the retry's write and is answered after it: with a short backoff the
    // retry is already due when the store runs the claim. It is a new claim (one more attempt on
    // the record), not a stale one; skipping it left it leased to this DP and idle for the lease.
    const claims: ReturnType<typeof deferred<AsyncInvocation[]>>[] = [];
    const retries: ReturnType<typeof deferred<string>>[] = [];
    const started: string[] = [];
    const store = {
      claim: () => { const c = deferred<AsyncInvocation[]>(); claims.push(c); return c.promise; },
      scheduleRetry: () => { const c = deferred<string>(); retries.push(c); return c.promise; },
      complete: async () => 'ok',
      renew: async () => 'ok',
    } as unknown as AsyncStore;
    const failed: ExecOutcome = { kind: 'done', attempt: { startedAtMs: 1_000, endedAtMs: 1_000, outcome: 'http_5xx', statusCode: 503 } };
    const d = new AsyncDispatcher({
      store, consumerId: 'dp', clock: { nowMs: () => 1_000, wallMs: () => 1_000 }, rng: seededRng(1), log: silentLogger,
      policy: { ...retryPolicyDefaults, backoffBaseMs: 0, backoffCapMs: 0 }, claimLeaseMs: 3_000, capacity: () => 4, ready: () => true,
      retried: () => {}, finished: () => {},
      execute: async (i) => { started.push(i.id); return started.length === 1 ? failed : ok; },
    });
    d.poke();
    claims[0]!.resolve([inv('a')]);
    await settle();
    assert.equal(retries.length, 1, 'the first attempt failed and its retry is being stored');
    d.poke(); // a claim goes out behind the retry's write
    await settle();
    retries[0]!.resolve('ok');
    await settle();
    claims[1]!.resolve([{ ...inv('a'), attempts: [failed.attempt] }]);
    await settle();
    assert.deepEqual(started, ['a', 'a'], 'the retry ran');
    assert.equal(d.heldCount, 0);
    await d.close();
  });

  it('does not run twice an invocation a claim hands back while it is still running', async () => {
    const { d, claims, runs, started } = setup();
    d.poke();
    claims[0]!.resolve([inv('a')]);
    await settle();
    d.poke();
    await settle();
    claims[1]!.resolve([inv('a'), inv('b')]);
    await settle();
    assert.deepEqual(started, ['a', 'b']);
    runs[0]!.resolve(ok);
    runs[1]!.resolve(ok);
    await settle();
    assert.equal(d.heldCount, 0);
    await d.close();
  });

  it('frees the execution slot when the function answered, not when its record is durable', async () => {
    // The write of the first result waits (a group commit and its fsync): the next one still runs.
    const { d, claims, completes, started, finished } = recordsByHand();
    d.poke();
    claims[0]!.resolve([inv('a'), inv('b')]);
    await settle();
    assert.deepEqual(started, ['a', 'b'], 'b runs while a is being recorded');
    assert.equal(completes.length, 2);
    assert.equal(d.heldCount, 2, 'both stay held (leased) until their records are durable');
    completes[1]!.resolve('ok');
    completes[0]!.resolve('ok');
    await settle();
    assert.deepEqual(finished.sort(), ['a', 'b']);
    assert.equal(d.heldCount, 0);
    await d.close();
  });

  it(`starts none while ${asyncUnrecordedMax} answered executions wait for their records; any function goes on when one is durable`, async () => {
    // A DP killed now runs again every execution that started and is not durable: running ones
    // and answered ones whose record is still being written. Both are bounded.
    const { d, claims, completes, started } = recordsByHand();
    const fnInvs = Array.from({ length: asyncUnrecordedMax + 2 }, (_, k) => inv(`f${k}`));
    d.poke();
    claims[0]!.resolve(fnInvs);
    await settle();
    assert.equal(started.length, asyncUnrecordedMax, 'each answers at once; the records do not resolve');
    assert.equal(d.unrecordedCount, asyncUnrecordedMax);
    d.poke();
    await settle();
    claims[1]!.resolve([{ ...inv('g0'), functionKey: 'other' }]);
    await settle();
    assert.equal(started.length, asyncUnrecordedMax, 'another function waits too');
    completes[0]!.resolve('ok');
    await settle();
    assert.equal(started.length, asyncUnrecordedMax + 1, 'one record is durable: one more starts');
    completes[1]!.resolve('ok');
    await settle();
    // The function that started one goes to the back of the waiting order: both go on.
    assert.deepEqual(started.slice(asyncUnrecordedMax).sort(), [`f${asyncUnrecordedMax}`, 'g0']);
    assert.equal(d.unrecordedCount, asyncUnrecordedMax);
    for (const c of completes) c.resolve('ok');
    await settle();
    await settle();
    for (const c of completes) c.resolve('ok');
    await settle();
    assert.equal(started.length, asyncUnrecordedMax + 3);
    assert.equal(d.heldCount, 0);
    assert.equal(d.unrecordedCount, 0);
    await d.close();
  });

  it('renews the leases of everything it holds at once, not one after another', async () => {
    const renewed: string[] = [];
    const claims: ReturnType<typeof deferred<AsyncInvocation[]>>[] = [];
    const store = {
      claim: () => { const c = deferred<AsyncInvocation[]>(); claims.push(c); return c.promise; },
      // A store round trip that does not come back (yet): a sequential loop would stop at the first.
      renew: (id: string) => { renewed.push(id); return new Promise(() => {}); },
    } as unknown as AsyncStore;
    const d = new AsyncDispatcher({
      store, consumerId: 'dp', clock: { nowMs: () => 1_000, wallMs: () => 1_000 }, rng: seededRng(1), log: silentLogger,
      policy: retryPolicyDefaults, claimLeaseMs: 150, capacity: () => 1, ready: () => true, retried: () => {}, finished: () => {},
      execute: () => new Promise(() => {}),
    });
    d.start();
    try {
      await until(() => claims.length > 0, 'a claim');
      claims[0]!.resolve([inv('a'), inv('b'), inv('c')]);
      await until(() => renewed.length >= 3, 'three renewals in flight');
      assert.deepEqual([...renewed].sort(), ['a', 'b', 'c']);
    } finally {
      await d.close();
    }
  });
});

describe('AsyncDispatcher timed claims', () => {
  it('back off while claims find nothing and nothing is held, and come back to every 200 ms when one finds work', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
    try {
      const { d, claims, runs, started } = setup();
      d.start();
      /** Exactly one timed claim, `ms` after the last claim ended. */
      const claimAfter = async (ms: number): Promise<void> => {
        const before = claims.length;
        mock.timers.tick(ms - 1);
        await settle();
        assert.equal(claims.length, before, `no claim before ${ms} ms`);
        mock.timers.tick(1);
        await settle();
        assert.equal(claims.length, before + 1, `a claim at ${ms} ms`);
      };
      const answer = async (found: AsyncInvocation[]): Promise<void> => {
        claims.at(-1)!.resolve(found);
        await settle();
      };
      for (const ms of [200, 400, 800, 1_600, asyncClaimIdlePeriodMsMax]) {
        await claimAfter(ms);
        await answer([]);
      }
      // A submit pokes at once, whatever the wait; its claim finds work.
      d.poke();
      await settle();
      await answer([inv('a')]);
      assert.deepEqual(started, ['a']);
      await claimAfter(200);
      await answer([]); // nothing new, but 'a' is held: no back-off
      await claimAfter(200);
      await answer([]);
      runs[0]!.resolve(ok);
      await settle();
      await d.close();
    } finally {
      mock.timers.reset();
    }
  });
});

describe('claimPeriodMs', () => {
  it('polls every asyncClaimPeriodMs while claims find work, doubling per empty claim up to the idle maximum', () => {
    assert.equal(claimPeriodMs(0), asyncClaimPeriodMs);
    assert.equal(claimPeriodMs(1), 2 * asyncClaimPeriodMs);
    assert.equal(claimPeriodMs(2), 4 * asyncClaimPeriodMs);
    for (let idle = 0; idle < 100; idle += 1) {
      const p = claimPeriodMs(idle);
      assert.ok(p >= asyncClaimPeriodMs && p <= asyncClaimIdlePeriodMsMax, `period ${p} after ${idle} empty claims`);
      assert.ok(p <= claimPeriodMs(idle + 1), 'never shorter after one more empty claim');
    }
    assert.equal(claimPeriodMs(100), asyncClaimIdlePeriodMsMax);
    // A lease that lapsed (its consumer died) is claimed well inside one lease of the default.
    assert.ok(asyncClaimIdlePeriodMsMax <= 2_000);
  });
});

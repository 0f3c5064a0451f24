/**
 * @module data-plane/async/async-store.contract
 * The behaviour every AsyncStore backend must have, as one suite run against each (SQLite in a
 * temp dir, Redis through the test fixture). Time is virtual (nowMs arguments) except where a
 * backend's lease is wall-clock idle time (Redis streams): there the suite waits out the lease.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import type { AsyncStore, AsyncStoreOptions } from './store.js';
import { asyncInvocationId, type AsyncAttempt, type AsyncInvocation } from './types.js';

export interface AsyncContractBackend {
  /** A store whose data lives under `dir`: opening the same dir again shows what was written. */
  open(dir: string, options: AsyncStoreOptions): Promise<AsyncStore>;
  /** The lease is real idle time: the suite sleeps past it instead of only moving nowMs. */
  leaseIsWallClock: boolean;
  /** Between close and reopen in the durability case (Redis: restart the server). */
  restart?: () => Promise<void>;
}

const t0 = 1_000_000;
const hourMs = 3_600_000;
const options: AsyncStoreOptions = { resultRetentionMs: hourMs, idempotencyKeyRetentionMs: 2 * hourMs, claimLeaseMs: 300 };
/** Added to the lease when the suite must wait it out in real time. */
const leaseSlackMs = 150;
let idCounter = 0;

/** Every byte value, so a text-mangling backend fails the round trip. */
const binaryBody = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));

function invocation(acceptedAtMs: number, over: Partial<AsyncInvocation> = {}): AsyncInvocation {
  idCounter += 1;
  const random = Buffer.alloc(4);
  random.writeUInt32BE(idCounter);
  return {
    id: asyncInvocationId(acceptedAtMs, random), functionKey: 'default/echo', functionUid: 'uid-1',
    request: { method: 'POST', path: '/run', query: 'a=1&b=%20', headers: { 'content-type': 'application/octet-stream' }, body: binaryBody },
    status: 'queued', attempts: [], nextAttemptAtMs: acceptedAtMs, acceptedAtMs, ...over,
  };
}

function attempt(startedAtMs: number, outcome: AsyncAttempt['outcome'], statusCode?: number): AsyncAttempt {
  const a: AsyncAttempt = { startedAtMs, endedAtMs: startedAtMs + 10, outcome };
  if (statusCode !== undefined) a.statusCode = statusCode;
  return a;
}

const okResult = { statusCode: 200, headers: { 'x-out': '1' }, body: Buffer.from([0, 255, 1, 254]) };

type Ctx = { b: AsyncContractBackend; dir: () => string };
type Case = (ctx: Ctx) => Promise<void>;

async function withStore(ctx: Ctx, run: (s: AsyncStore) => Promise<void>): Promise<void> {
  const s = await ctx.b.open(ctx.dir(), options);
  try {
    await run(s);
  } finally {
    await s.close();
  }
}

const cases: [string, Case][] = [
  ['accepts and gets an invocation back intact (binary body)', (ctx) => withStore(ctx, async (s) => {
    const inv = invocation(t0, { callbackUrl: 'http://cb.example/x', idempotencyKey: 'k1' });
    assert.deepEqual(await s.accept(inv), { kind: 'accepted', id: inv.id });
    const got = await s.get(inv.id);
    assert.deepEqual(got, inv);
    assert.ok(Buffer.isBuffer(got!.request.body));
    assert.equal(await s.get('no-such-id'), undefined);
  })],
  ['returns the existing id for a live idempotency key of the same function', (ctx) => withStore(ctx, async (s) => {
    const first = invocation(t0, { idempotencyKey: 'same' });
    await s.accept(first);
    assert.deepEqual(await s.accept(invocation(t0 + 5, { idempotencyKey: 'same' })), { kind: 'duplicate', id: first.id });
    const otherFn = invocation(t0 + 6, { idempotencyKey: 'same', functionKey: 'default/other' });
    assert.equal((await s.accept(otherFn)).kind, 'accepted');
    const late = invocation(t0 + options.idempotencyKeyRetentionMs, { idempotencyKey: 'same' });
    assert.deepEqual(await s.accept(late), { kind: 'accepted', id: late.id });
  })],
  ['leases a claim to one consumer until the lease runs out', (ctx) => withStore(ctx, async (s) => {
    const invs = [invocation(t0), invocation(t0 + 1), invocation(t0 + 2)];
    for (const inv of invs) await s.accept(inv);
    const c1 = await s.claim('dp-1', t0 + 10, 2);
    assert.deepEqual(c1.map((i) => i.id), [invs[0].id, invs[1].id]);
    assert.ok(c1.every((i) => i.status === 'running' && i.owner === 'dp-1'));
    const c2 = await s.claim('dp-2', t0 + 11, 10);
    assert.deepEqual(c2.map((i) => i.id), [invs[2].id]);
    assert.deepEqual(await s.claim('dp-2', t0 + 12, 10), []);
    assert.equal(await s.complete(invs[2].id, 'dp-2', okResult, attempt(t0 + 12, 'ok', 200)), 'ok');
    if (ctx.b.leaseIsWallClock) await sleep(options.claimLeaseMs + leaseSlackMs);
    const taken = await s.claim('dp-2', t0 + 10 + options.claimLeaseMs, 10);
    assert.deepEqual(taken.map((i) => i.id).sort(), [invs[0].id, invs[1].id]);
    assert.ok(taken.every((i) => i.owner === 'dp-2'));
    assert.equal(await s.complete(invs[0].id, 'dp-1', okResult, attempt(t0 + 20, 'ok', 200)), 'not_owner');
    assert.equal(await s.complete(invs[0].id, 'dp-2', okResult, attempt(t0 + 20, 'ok', 200)), 'ok');
    assert.equal(await s.complete('no-such-id', 'dp-2', okResult, attempt(t0 + 20, 'ok', 200)), 'not_found');
  })],
  ['keeps a renewed lease from being taken over', (ctx) => withStore(ctx, async (s) => {
    const inv = invocation(t0);
    await s.accept(inv);
    await s.claim('dp-1', t0, 1);
    const half = options.claimLeaseMs / 2;
    if (ctx.b.leaseIsWallClock) await sleep(half);
    assert.equal(await s.renew(inv.id, 'dp-1', t0 + half), 'ok');
    assert.equal(await s.renew(inv.id, 'dp-2', t0 + half), 'not_owner');
    assert.equal(await s.renew('no-such-id', 'dp-1', t0 + half), 'not_found');
    if (ctx.b.leaseIsWallClock) await sleep(half);
    assert.deepEqual(await s.claim('dp-2', t0 + 2 * half, 1), []);
    if (ctx.b.leaseIsWallClock) await sleep(options.claimLeaseMs + leaseSlackMs);
    assert.deepEqual((await s.claim('dp-2', t0 + half + options.claimLeaseMs, 1)).map((i) => i.owner), ['dp-2']);
  })],
  ['does not hand out a retry before its nextAttemptAtMs', (ctx) => withStore(ctx, async (s) => {
    const inv = invocation(t0);
    await s.accept(inv);
    await s.claim('dp-1', t0, 1);
    assert.equal(await s.scheduleRetry(inv.id, 'dp-1', attempt(t0, 'http_5xx', 503), t0 + 1_000), 'ok');
    assert.equal((await s.get(inv.id))!.status, 'queued');
    assert.deepEqual(await s.claim('dp-1', t0 + 999, 5), []);
    const again = await s.claim('dp-1', t0 + 1_000, 5);
    assert.deepEqual(again.map((i) => i.id), [inv.id]);
    assert.deepEqual(again[0].attempts, [attempt(t0, 'http_5xx', 503)]);
    assert.deepEqual(again[0].request.body, binaryBody);
  })],
  ['finishes as succeeded or failed with the result kept', (ctx) => withStore(ctx, async (s) => {
    const good = invocation(t0);
    const bad = invocation(t0 + 1);
    await s.accept(good);
    await s.accept(bad);
    await s.claim('dp-1', t0 + 2, 2);
    await s.complete(good.id, 'dp-1', okResult, attempt(t0 + 2, 'ok', 200));
    const notFound = { statusCode: 404, headers: {}, body: Buffer.from('nope') };
    await s.complete(bad.id, 'dp-1', notFound, attempt(t0 + 2, 'http_4xx', 404));
    const g = (await s.get(good.id))!;
    assert.equal(g.status, 'succeeded');
    assert.deepEqual(g.result, okResult);
    assert.equal(g.finishedAtMs, t0 + 12);
    assert.equal(g.owner, undefined);
    assert.equal((await s.get(bad.id))!.status, 'failed');
    assert.equal(await s.complete(good.id, 'dp-1', okResult, attempt(t0 + 2, 'ok', 200)), 'not_owner');
  })],
  ['dead-letters, lists the dead and re-drives them with attempts kept', (ctx) => withStore(ctx, async (s) => {
    const inv = invocation(t0);
    await s.accept(inv);
    await s.accept(invocation(t0 + 1));
    await s.claim('dp-1', t0, 1);
    assert.equal(await s.deadLetter(inv.id, 'dp-1', attempt(t0, 'timeout'), 'attempts_exhausted'), 'ok');
    const dead = (await s.get(inv.id))!;
    assert.equal(dead.status, 'dead');
    assert.equal(dead.deadReason, 'attempts_exhausted');
    const page = await s.list({ status: 'dead', limit: 10 });
    assert.deepEqual(page.items.map((i) => i.id), [inv.id]);
    assert.equal(page.items[0].request.bodyBytes, binaryBody.length);
    assert.equal(page.nextCursor, undefined);
    assert.equal(await s.redrive(inv.id, t0 + 50), 'ok');
    assert.equal(await s.redrive(inv.id, t0 + 50), 'not_redrivable');
    assert.equal(await s.redrive('no-such-id', t0 + 50), 'not_found');
    // Due again at the redrive, behind what was already due.
    const back = await s.claim('dp-1', t0 + 50, 2);
    assert.equal(back.length, 2);
    assert.deepEqual([back[1].id, back[1].attempts.length, back[1].redrivenAtMs, back[1].deadReason], [inv.id, 1, t0 + 50, undefined]);
    assert.deepEqual((await s.list({ status: 'dead', limit: 10 })).items, []);
  })],
  ['pages through invocations oldest first, by function and status', (ctx) => withStore(ctx, async (s) => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i += 1) {
      const inv = invocation(t0 + i, { functionKey: i % 2 === 0 ? 'default/even' : 'default/odd' });
      ids.push(inv.id);
      await s.accept(inv);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 10; pages += 1) {
      const page = await s.list({ limit: 3, ...(cursor ? { cursor } : {}) });
      assert.ok(page.items.length <= 3);
      seen.push(...page.items.map((i) => i.id));
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    assert.deepEqual(seen, ids);
    const odd = await s.list({ functionKey: 'default/odd', status: 'queued', limit: 10 });
    assert.deepEqual(odd.items.map((i) => i.id), [ids[1], ids[3], ids[5]]);
    assert.deepEqual((await s.list({ functionKey: 'default/odd', status: 'running', limit: 10 })).items, []);
  })],
  ['counts unfinished invocations per function and the oldest one\'s age', (ctx) => withStore(ctx, async (s) => {
    assert.deepEqual(await s.counts(t0), { queuedByFunction: {}, queuedTotal: 0, oldestQueuedAgeMs: 0, oldestQueuedAgeMsByFunction: {} });
    const a = invocation(t0, { functionKey: 'default/a' });
    await s.accept(a);
    await s.accept(invocation(t0 + 100, { functionKey: 'default/a' }));
    await s.accept(invocation(t0 + 200, { functionKey: 'default/b' }));
    await s.claim('dp-1', t0 + 300, 1);
    assert.deepEqual(await s.counts(t0 + 500), {
      queuedByFunction: { 'default/a': 2, 'default/b': 1 }, queuedTotal: 3, oldestQueuedAgeMs: 500,
      oldestQueuedAgeMsByFunction: { 'default/a': 500, 'default/b': 300 },
    });
    await s.complete(a.id, 'dp-1', okResult, attempt(t0 + 300, 'ok', 200));
    assert.deepEqual(await s.counts(t0 + 500), {
      queuedByFunction: { 'default/a': 1, 'default/b': 1 }, queuedTotal: 2, oldestQueuedAgeMs: 400,
      oldestQueuedAgeMsByFunction: { 'default/a': 400, 'default/b': 300 },
    });
  })],
  ['a re-driven invocation counts again in its function\'s oldest age', (ctx) => withStore(ctx, async (s) => {
    const inv = invocation(t0, { functionKey: 'default/r' });
    await s.accept(inv);
    await s.claim('dp-1', t0, 1);
    await s.deadLetter(inv.id, 'dp-1', attempt(t0, 'timeout'), 'attempts_exhausted');
    assert.deepEqual((await s.counts(t0 + 100)).oldestQueuedAgeMsByFunction, {});
    await s.redrive(inv.id, t0 + 100);
    assert.deepEqual((await s.counts(t0 + 200)).oldestQueuedAgeMsByFunction, { 'default/r': 200 });
  })],
  ['gc drops only finished invocations past retention and expired keys', (ctx) => withStore(ctx, async (s) => {
    const early = invocation(t0, { idempotencyKey: 'k' });
    const late = invocation(t0 + 1);
    const open = invocation(t0 + 2);
    for (const inv of [early, late, open]) await s.accept(inv);
    await s.claim('dp-1', t0 + 3, 2);
    await s.complete(early.id, 'dp-1', okResult, attempt(t0 + 3, 'ok', 200));
    await s.complete(late.id, 'dp-1', okResult, attempt(t0 + 1_003, 'ok', 200));
    assert.equal((await s.gc(t0 + 13 + hourMs - 1)).invocationsDropped, 0);
    assert.equal((await s.gc(t0 + 13 + hourMs)).invocationsDropped, 1);
    assert.equal(await s.get(early.id), undefined);
    assert.ok(await s.get(late.id));
    const far = await s.gc(t0 + 100 * hourMs);
    assert.deepEqual(far, { invocationsDropped: 1, idempotencyKeysDropped: 1 });
    assert.equal((await s.get(open.id))!.status, 'queued');
    assert.deepEqual((await s.list({ limit: 10 })).items.map((i) => i.id), [open.id]);
  })],
  ['a finish makes the callback pending; a claim leases it to one consumer; only the owner records it', (ctx) => withStore(ctx, async (s) => {
    const inv = invocation(t0, { callbackUrl: 'http://cb.example/done' });
    const plain = invocation(t0 + 1);
    await s.accept(inv);
    await s.accept(plain);
    await s.claim('dp-1', t0, 2);
    await s.complete(inv.id, 'dp-1', okResult, attempt(t0, 'ok', 200));
    await s.complete(plain.id, 'dp-1', okResult, attempt(t0, 'ok', 200));
    assert.deepEqual((await s.get(inv.id))!.callback, { state: 'pending', attempts: 0, nextAtMs: t0 + 10 });
    assert.equal((await s.get(plain.id))!.callback, undefined);
    assert.deepEqual(await s.claimCallbacks('dp-1', t0 + 9, 1_000, 10), []);
    const [c1] = await s.claimCallbacks('dp-1', t0 + 10, 1_000, 10);
    assert.deepEqual([c1?.id, c1?.callback], [inv.id, { state: 'pending', attempts: 0, nextAtMs: t0 + 1_010, owner: 'dp-1' }]);
    assert.deepEqual(c1!.result, okResult);
    assert.deepEqual(await s.claimCallbacks('dp-2', t0 + 500, 1_000, 10), []);
    const retry = { state: 'pending' as const, attempts: 1, nextAtMs: t0 + 2_000, lastError: 'status 503' };
    assert.equal(await s.recordCallback(inv.id, 'dp-2', retry), 'not_owner');
    assert.equal(await s.recordCallback('no-such-id', 'dp-1', retry), 'not_found');
    assert.equal(await s.recordCallback(inv.id, 'dp-1', retry), 'ok');
    assert.deepEqual(await s.claimCallbacks('dp-2', t0 + 1_999, 1_000, 10), []);
    const [c2] = await s.claimCallbacks('dp-2', t0 + 2_000, 1_000, 10);
    assert.deepEqual(c2?.callback, { ...retry, nextAtMs: t0 + 3_000, owner: 'dp-2' });
    assert.equal(await s.recordCallback(inv.id, 'dp-2', { state: 'sent', attempts: 2, nextAtMs: t0 + 2_000 }), 'ok');
    assert.deepEqual((await s.get(inv.id))!.callback, { state: 'sent', attempts: 2, nextAtMs: t0 + 2_000 });
    assert.deepEqual(await s.claimCallbacks('dp-2', t0 + 100 * hourMs, 1_000, 10), []);
    assert.equal(await s.recordCallback(inv.id, 'dp-2', { state: 'sent', attempts: 3, nextAtMs: t0 }), 'not_owner');
  })],
  ['a callback whose DP died is claimed by another after the lease; a re-drive clears it', (ctx) => withStore(ctx, async (s) => {
    const inv = invocation(t0, { callbackUrl: 'http://cb.example/done' });
    await s.accept(inv);
    await s.claim('dp-1', t0, 1);
    await s.deadLetter(inv.id, 'dp-1', attempt(t0, 'timeout'), 'attempts_exhausted');
    assert.equal((await s.get(inv.id))!.callback?.state, 'pending');
    assert.equal((await s.claimCallbacks('dp-1', t0 + 10, 1_000, 10)).length, 1);
    const [taken] = await s.claimCallbacks('dp-2', t0 + 1_010, 1_000, 10);
    assert.equal(taken?.callback?.owner, 'dp-2');
    assert.equal(await s.recordCallback(inv.id, 'dp-1', { state: 'sent', attempts: 1, nextAtMs: t0 }), 'not_owner');
    assert.equal(await s.redrive(inv.id, t0 + 1_100), 'ok');
    assert.equal((await s.get(inv.id))!.callback, undefined);
    assert.deepEqual(await s.claimCallbacks('dp-2', t0 + 100 * hourMs, 1_000, 10), []);
  })],
  ['a pending callback survives a close and reopen', async (ctx) => {
    const dir = ctx.dir();
    const s1 = await ctx.b.open(dir, options);
    const inv = invocation(t0, { callbackUrl: 'http://cb.example/done' });
    await s1.accept(inv);
    await s1.claim('dp-1', t0, 1);
    await s1.complete(inv.id, 'dp-1', okResult, attempt(t0, 'ok', 200));
    await s1.close();
    await ctx.b.restart?.();
    const s2 = await ctx.b.open(dir, options);
    try {
      assert.deepEqual((await s2.claimCallbacks('dp-2', t0 + 10, 1_000, 10)).map((i) => i.id), [inv.id]);
    } finally {
      await s2.close();
    }
  }],
  ['keeps everything accepted (a burst of one turn) across a close and reopen', async (ctx) => {
    const dir = ctx.dir();
    const s1 = await ctx.b.open(dir, options);
    const invs = Array.from({ length: 200 }, (_, i) => invocation(t0 + i));
    await Promise.all(invs.map((inv) => s1.accept(inv)));
    await s1.claim('dp-1', t0 + 500, 1);
    await s1.close();
    await ctx.b.restart?.();
    const s2 = await ctx.b.open(dir, options);
    try {
      assert.deepEqual(await s2.get(invs[199].id), invs[199]);
      assert.equal((await s2.counts(t0 + 500)).queuedTotal, 200);
      assert.equal((await s2.get(invs[0].id))!.owner, 'dp-1');
      const page = await s2.list({ limit: 500 });
      assert.deepEqual(page.items.map((i) => i.id), invs.map((i) => i.id));
    } finally {
      await s2.close();
    }
  }],
];

export function asyncStoreContract(name: string, b: AsyncContractBackend): void {
  describe(`AsyncStore contract: ${name}`, () => {
    const dirs: string[] = [];
    const dir = (): string => {
      const d = mkdtempSync(join(tmpdir(), 'dirigent-async-'));
      dirs.push(d);
      return d;
    };
    after(() => {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });
    for (const [title, run] of cases) it(title, () => run({ b, dir }));
  });
}

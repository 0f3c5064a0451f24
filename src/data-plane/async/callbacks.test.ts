/**
 * Goal: X-Callback-Url delivery is pinned against DNS rebinding (the address checked is the
 * address dialled, with the Host header kept; every resolved address is checked), retried and
 * abandoned by a pure rule, and durable: a callback whose DP died after claiming it is delivered
 * by a restarted sender on the reopened store.
 * Method: loopback servers on 127.0.0.1 and 127.0.0.2 stand in for a public and a private
 * address (the test's private rule names 127.0.0.2); a fake resolver answers the "public" one
 * first and the "private" one on every later question. Store times are virtual (a manual clock);
 * only the HTTP exchange is real.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { silentLogger } from '../../shared/logger.js';
import {
  afterCallbackPost, callbackAttemptsMax, callbackBackoffBaseMs, PinnedAgents, postCallback, type ResolvedAddress, type TargetRules,
} from './callback-post.js';
import { CallbackSender, callbackInFlightMax, callbackLeaseMs } from './callbacks.js';
import { openSqliteAsyncStore } from './sqlite-async-store.js';
import { asyncInvocationId, type AsyncInvocation } from './types.js';

const publicAddr = '127.0.0.1';
const privateAddr = '127.0.0.2';

interface Hits { server: Server; hosts: string[]; bodies: string[] }

async function listen(host: string, port = 0): Promise<Hits> {
  const hits: Hits = { server: createServer(), hosts: [], bodies: [] };
  hits.server.on('request', (req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => { text += d.toString(); });
    req.on('end', () => { hits.hosts.push(req.headers.host ?? ''); hits.bodies.push(text); res.end(); });
  });
  await new Promise<void>((r) => hits.server.listen(port, host, r));
  return hits;
}

const portOf = (h: Hits): number => (h.server.address() as { port: number }).port;
const close = (h: Hits): Promise<void> => new Promise((r) => { h.server.closeAllConnections(); h.server.close(() => r()); });

/** Answers `first` to the first question and `later` to every other one, counting them. */
function rebindingResolver(first: ResolvedAddress[], later: ResolvedAddress[]): { resolve: TargetRules['resolve']; calls: () => number } {
  let n = 0;
  return { resolve: async () => (n++ === 0 ? first : later), calls: () => n };
}

const v4 = (address: string): ResolvedAddress => ({ address, family: 4 });
const testPrivate = (a: string): boolean => a === privateAddr;

describe('callback POST pinning (DNS rebinding)', () => {
  it('dials the address it checked, never the private answer of a later resolution; Host stays the name', async () => {
    const pub = await listen(publicAddr);
    const priv = await listen(privateAddr, portOf(pub));
    try {
      const dns = rebindingResolver([v4(publicAddr)], [v4(privateAddr)]);
      const rules: TargetRules = { resolve: dns.resolve, allowPrivate: false, isPrivate: testPrivate };
      const url = new URL(`http://cb.test:${portOf(pub)}/done`);
      assert.deepEqual(await postCallback(url, '{"a":1}', rules), { kind: 'sent', statusCode: 200 });
      assert.equal(dns.calls(), 1, 'resolved once per attempt');
      assert.deepEqual([pub.hosts, pub.bodies], [[`cb.test:${portOf(pub)}`], ['{"a":1}']]);
      // The next attempt resolves afresh: now to the private address, which is refused, not dialled.
      const second = await postCallback(url, '{}', rules);
      assert.equal(second.kind, 'refused');
      assert.match(second.kind === 'refused' ? second.error : '', /private address 127\.0\.0\.2/);
      assert.deepEqual(priv.hosts, [], 'the private address was never dialled');
    } finally {
      await close(pub);
      await close(priv);
    }
  });

  it('kept-alive agents stay pinned: the same checked address reuses a connection, a new one gets its own', async () => {
    const a = await listen(publicAddr);
    const b = await listen('127.0.0.3', portOf(a));
    const conns = { a: 0, b: 0 };
    a.server.on('connection', () => { conns.a += 1; });
    b.server.on('connection', () => { conns.b += 1; });
    const agents = new PinnedAgents();
    try {
      let answer = publicAddr;
      const rules: TargetRules = { resolve: async () => [v4(answer)], allowPrivate: false, isPrivate: testPrivate };
      const url = new URL(`http://cb.test:${portOf(a)}/done`);
      const posts = 6;
      for (let i = 0; i < posts; i += 1) assert.equal((await postCallback(url, `{"n":${i}}`, rules, 5_000, agents)).kind, 'sent');
      assert.equal(a.bodies.length, posts);
      // (undici may open a second socket while the first is being returned to its pool)
      assert.ok(conns.a < posts, `${posts} POSTs over ${conns.a} connections: kept alive`);
      const aConns = conns.a;
      answer = '127.0.0.3'; // the name now resolves elsewhere: that address is dialled, not the open connection
      assert.equal((await postCallback(url, '{}', rules, 5_000, agents)).kind, 'sent');
      assert.deepEqual([a.bodies.length, b.bodies.length, conns.b, conns.a], [posts, 1, 1, aConns]);
      answer = privateAddr; // and a private answer is still refused while agents are open
      assert.equal((await postCallback(url, '{}', rules, 5_000, agents)).kind, 'refused');
    } finally {
      await agents.close();
      await close(a);
      await close(b);
    }
  });

  it('checks every resolved address: one private answer among public ones refuses the callback', async () => {
    const priv = await listen(privateAddr);
    try {
      const dns = rebindingResolver([v4(publicAddr), v4(privateAddr)], []);
      const out = await postCallback(new URL(`http://cb.test:${portOf(priv)}/`), '{}', { resolve: dns.resolve, allowPrivate: false, isPrivate: testPrivate });
      assert.equal(out.kind, 'refused');
      assert.deepEqual(priv.hosts, []);
      const allowed = await postCallback(new URL(`http://cb.test:${portOf(priv)}/`), '{}',
        { resolve: async () => [v4(privateAddr)], allowPrivate: true, isPrivate: testPrivate });
      assert.equal(allowed.kind, 'sent', 'asyncCallbackAllowPrivate lets it through');
    } finally {
      await close(priv);
    }
  });
});

describe('callback state after a POST', () => {
  const pending = { state: 'pending' as const, attempts: 0, nextAtMs: 0 };
  it('sent; retried with doubling backoff; abandoned when refused or out of attempts', () => {
    assert.deepEqual(afterCallbackPost(pending, { kind: 'sent', statusCode: 204 }, 100), { state: 'sent', attempts: 1, nextAtMs: 100 });
    assert.deepEqual(afterCallbackPost({ ...pending, attempts: 2 }, { kind: 'retry', error: 'status 503' }, 100),
      { state: 'pending', attempts: 3, nextAtMs: 100 + 4 * callbackBackoffBaseMs, lastError: 'status 503' });
    assert.equal(afterCallbackPost({ ...pending, attempts: callbackAttemptsMax - 1 }, { kind: 'retry', error: 'x' }, 0).state, 'abandoned');
    assert.deepEqual(afterCallbackPost(pending, { kind: 'refused', error: 'private' }, 5), { state: 'abandoned', attempts: 1, nextAtMs: 5, lastError: 'private' });
  });
});

describe('durable callbacks', () => {
  const dirs: string[] = [];
  after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

  it('a backlog larger than the in-flight bound drains without waiting for the poll timer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'afn-cb-'));
    dirs.push(dir);
    const target = await listen(publicAddr);
    const store = openSqliteAsyncStore(join(dir, 'async.db'));
    const t0 = 1_000_000;
    const backlog = callbackInFlightMax * 6;
    const sender = new CallbackSender({
      store, consumerId: 'dp-a', clock: { nowMs: () => t0 + 10, wallMs: () => t0 + 10 }, allowPrivate: true, log: silentLogger,
    });
    try {
      for (let i = 0; i < backlog; i += 1) {
        await store.accept({
          id: asyncInvocationId(t0, Buffer.from([i >> 8, i & 255])), functionKey: 'echo', status: 'queued', attempts: [], nextAttemptAtMs: t0, acceptedAtMs: t0,
          request: { method: 'POST', path: '/', query: '', headers: {}, body: Buffer.from('x') },
          callbackUrl: `http://127.0.0.1:${portOf(target)}/done`,
        });
      }
      const claimed: AsyncInvocation[] = [];
      while (claimed.length < backlog) claimed.push(...(await store.claim('dp-a', t0, backlog - claimed.length)));
      await Promise.all(claimed.map((inv) => store.complete(inv.id, 'dp-a', { statusCode: 200, headers: {}, body: Buffer.from('out') },
        { startedAtMs: t0, endedAtMs: t0 + 5, outcome: 'ok', statusCode: 200 })));
      // One poke, as the dispatcher gives when invocations finish; no start(), so no poll timer.
      sender.poke();
      for (let i = 0; i < 1_000 && target.bodies.length < backlog; i += 1) await sleep(20);
      assert.equal(target.bodies.length, backlog, 'every due callback was sent after one poke');
    } finally {
      await sender.close();
      await store.close();
      await close(target);
    }
  });

  it('a callback claimed by a DP that died is delivered by a restarted DP after the lease', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'afn-cb-'));
    dirs.push(dir);
    const path = join(dir, 'async.db');
    const target = await listen(publicAddr);
    const t0 = 1_000_000;
    const inv: AsyncInvocation = {
      id: asyncInvocationId(t0, Buffer.from([1])), functionKey: 'echo', status: 'queued', attempts: [], nextAttemptAtMs: t0, acceptedAtMs: t0,
      request: { method: 'POST', path: '/', query: '', headers: {}, body: Buffer.from('x') },
      callbackUrl: `http://127.0.0.1:${portOf(target)}/done`,
    };
    const s1 = openSqliteAsyncStore(path);
    try {
      await s1.accept(inv);
      await s1.claim('dp-a', t0, 1);
      await s1.complete(inv.id, 'dp-a', { statusCode: 200, headers: {}, body: Buffer.from('out') }, { startedAtMs: t0, endedAtMs: t0 + 5, outcome: 'ok', statusCode: 200 });
      // dp-a claims the callback, then dies before posting it.
      assert.equal((await s1.claimCallbacks('dp-a', t0 + 5, callbackLeaseMs, 10)).length, 1);
    } finally {
      await s1.close();
    }
    const s2 = openSqliteAsyncStore(path);
    let nowMs = t0 + 10;
    const sender = new CallbackSender({
      store: s2, consumerId: 'dp-b', clock: { nowMs: () => nowMs, wallMs: () => nowMs }, allowPrivate: true, log: silentLogger,
    });
    try {
      sender.start();
      await sleep(100);
      assert.deepEqual(target.bodies, [], 'not before dp-a\'s lease ran out');
      nowMs = t0 + 5 + callbackLeaseMs;
      sender.poke();
      for (let i = 0; i < 100 && (await s2.get(inv.id))?.callback?.state !== 'sent'; i += 1) await sleep(20);
      assert.equal(target.bodies.length, 1);
      const view = JSON.parse(target.bodies[0]!) as { id: string; status: string; result: { body: string } };
      assert.deepEqual([view.id, view.status, view.result.body], [inv.id, 'succeeded', 'out']);
      assert.deepEqual((await s2.get(inv.id))!.callback, { state: 'sent', attempts: 1, nextAtMs: nowMs });
    } finally {
      await sender.close();
      await s2.close();
      await close(target);
    }
  });
});

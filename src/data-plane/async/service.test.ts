/**
 * Goal: the async intake's limits and views, the callback URL check (SSRF), and that results and
 * dead letters expire after the retention time.
 * Method: AsyncService over a real SQLite store in a temp dir, with virtual time (nowMs
 * arguments); a counting wrapper shows the queue limits never query the store per submit.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { silentLogger } from '../../shared/logger.js';
import { callbackProblem } from './http-routes.js';
import { AsyncService, invocationView, type SubmitInput } from './service.js';
import { openSqliteAsyncStore } from './sqlite-async-store.js';
import type { AsyncStore } from './store.js';
import type { AsyncInvocation } from './types.js';

const t0 = 1_000_000;
const hourMs = 3_600_000;
const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

let n = 0;
async function service(limits = { asyncBodyBytesMax: 16, asyncQueuePerFunctionMax: 2, asyncQueueTotalMax: 3 }) {
  const dir = mkdtempSync(join(tmpdir(), 'adp-svc-'));
  dirs.push(dir);
  const store = openSqliteAsyncStore(join(dir, 'async.db'), { resultRetentionMs: hourMs, idempotencyKeyRetentionMs: hourMs, claimLeaseMs: 1_000 });
  let countCalls = 0;
  // Every other call goes to the store itself (bound), so the store's own state is never shadowed.
  const counting = new Proxy(store, {
    get: (target, prop) => {
      if (prop === 'counts') return (nowMs: number) => { countCalls += 1; return target.counts(nowMs); };
      const v = (target as unknown as Record<string | symbol, unknown>)[prop];
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as AsyncStore;
  const svc = new AsyncService(counting, limits, () => { n += 1; return Buffer.from([n >> 8, n & 255]); }, silentLogger);
  await svc.start(t0);
  return { svc, store, countCalls: () => countCalls };
}

const input = (over: Partial<SubmitInput> = {}): SubmitInput => ({
  functionKey: 'echo', method: 'POST', path: '/', headers: {}, body: Buffer.from('hi'), ...over,
});

describe('AsyncService', () => {
  it('refuses a body over asyncBodyBytesMax with 413 naming the field and the limit', async () => {
    const { svc } = await service();
    const r = await svc.submit(input({ body: Buffer.alloc(17) }), t0);
    assert.equal(r.kind, 'refused');
    assert.deepEqual(r.kind === 'refused' && [r.status, r.code, r.field], [413, 'async_body_too_large', 'body']);
    assert.match(r.kind === 'refused' ? r.message : '', /asyncBodyBytesMax 16/);
    await svc.close();
  });

  it('refuses past the per-function and total queue limits with 429 naming each, from cached counts', async () => {
    const { svc, countCalls } = await service();
    const before = countCalls();
    assert.equal((await svc.submit(input(), t0)).kind, 'accepted');
    assert.equal((await svc.submit(input(), t0)).kind, 'accepted');
    const perFn = await svc.submit(input(), t0);
    assert.match(perFn.kind === 'refused' ? `${perFn.status} ${perFn.message}` : '', /^429 .*asyncQueuePerFunctionMax 2/);
    assert.equal((await svc.submit(input({ functionKey: 'other' }), t0)).kind, 'accepted');
    const total = await svc.submit(input({ functionKey: 'third' }), t0);
    assert.match(total.kind === 'refused' ? `${total.status} ${total.message}` : '', /^429 .*asyncQueueTotalMax 3/);
    assert.equal(countCalls(), before, 'no store query per submit');
    svc.finished('echo');
    assert.equal((await svc.submit(input({ functionKey: 'third' }), t0)).kind, 'accepted');
    await svc.close();
  });

  it('results and dead letters are dropped by gc after the retention time, not before', async () => {
    const { svc, store } = await service({ asyncBodyBytesMax: 16, asyncQueuePerFunctionMax: 10, asyncQueueTotalMax: 10 });
    const ok = await svc.submit(input(), t0);
    const dead = await svc.submit(input(), t0);
    await store.claim('dp-1', t0, 10);
    const attempt = { startedAtMs: t0, endedAtMs: t0 + 10, outcome: 'ok' as const, statusCode: 200 };
    await store.complete(ok.kind !== 'refused' ? ok.id : '', 'dp-1', { statusCode: 200, headers: {}, body: Buffer.from('r') }, attempt);
    await store.deadLetter(dead.kind !== 'refused' ? dead.id : '', 'dp-1', { ...attempt, outcome: 'http_5xx', statusCode: 500 }, 'attempts_exhausted');
    await store.gc(t0 + 10 + hourMs - 1);
    assert.equal((await svc.get(ok.kind !== 'refused' ? ok.id : ''))?.status, 'succeeded');
    assert.equal((await svc.get(dead.kind !== 'refused' ? dead.id : ''))?.status, 'dead');
    await store.gc(t0 + 10 + hourMs + 1);
    assert.equal(await svc.get(ok.kind !== 'refused' ? ok.id : ''), undefined);
    assert.equal(await svc.get(dead.kind !== 'refused' ? dead.id : ''), undefined);
    await svc.close();
  });
});

describe('invocationView', () => {
  const inv: AsyncInvocation = {
    id: 'x', functionKey: 'echo.team', request: { method: 'GET', path: '/', query: '', headers: {}, body: Buffer.alloc(0) },
    status: 'succeeded', attempts: [{ startedAtMs: 0, endedAtMs: 5, outcome: 'ok', statusCode: 200 }], nextAttemptAtMs: 0, acceptedAtMs: 0,
    result: { statusCode: 200, headers: { a: 'b' }, body: Buffer.from('héllo') },
  };
  it('gives utf-8 bodies as text and others as base64', () => {
    const v = invocationView(inv) as { namespace: string; result: { body?: string; bodyBase64?: string } };
    assert.equal(v.namespace, 'team');
    assert.equal(v.result.body, 'héllo');
    const bin = invocationView({ ...inv, result: { ...inv.result!, body: Buffer.from([0xff, 0xfe]) } }) as { result: { bodyBase64?: string } };
    assert.equal(bin.result.bodyBase64, '//4=');
  });
});

describe('callbackProblem (SSRF)', () => {
  it('refuses non-http(s) and loopback/private addresses unless allowed', () => {
    assert.match(callbackProblem('file:///etc/passwd', false) ?? '', /http or https/);
    for (const u of ['http://127.0.0.1/', 'http://localhost:80/', 'http://10.1.2.3/', 'http://192.168.0.1/', 'http://[::1]/', 'http://169.254.169.254/']) {
      assert.match(callbackProblem(u, false) ?? '', /private/, u);
    }
    assert.equal(callbackProblem('http://127.0.0.1:9/', true), null);
    assert.equal(callbackProblem('https://example.com/hook', false), null);
  });
});

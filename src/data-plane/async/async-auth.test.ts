/**
 * Goal: async invocations of an `auth: token` function need the same token as sync ones, for the
 * submit and for reading or re-driving the invocation; the execution runs with the submitter's
 * token checked again and the sandbox never sees it.
 * Method: the real proxy, core, SQLite store, service and dispatcher in-process, routing applied
 * by hand (as the CP would push it), one node:http upstream recording the headers it got.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FunctionSpecMsg, InvokeTokenMsg } from '../../api/cluster.js';
import { dataPlaneDefaults } from '../../config/defaults.js';
import { waitFor } from '../../integration/harness.js';
import { systemClock } from '../../shared/clock.js';
import { silentLogger } from '../../shared/logger.js';
import { seededRng } from '../../shared/rng.js';
import { newToken, sha256Hex } from '../../shared/secrets.js';
import { DataPlaneCore, type DpEffect } from '../core/data-plane.js';
import { InvocationProxy } from '../shell/proxy.js';
import { AsyncDispatcher } from './dispatcher.js';
import { executeAsync, isAsyncWaiter } from './executor.js';
import { retryPolicyDefaults } from './retry-policy.js';
import { AsyncService } from './service.js';
import { openSqliteAsyncStore } from './sqlite-async-store.js';

const fnSpec = (name: string): FunctionSpecMsg => ({
  name, uid: `${name}-u`, generation: 1, image: '', command: ['x'], port: 0, env: {}, egress: false, auth: 'token', concurrency: 0, timeoutMs: 10_000, workingDir: '',
});
const invokeToken = (namespace: string): { token: string; msg: InvokeTokenMsg } => {
  const { id, token } = newToken();
  return { token, msg: { id, sha256Hex: sha256Hex(token), scope: 'invoke', namespace } };
};

function send(port: number, method: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('async invocations of auth: token functions', { timeout: 30_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'adp-auth-'));
  const core = new DataPlaneCore({ queueDepthMax: 100, queueWaitMsMax: 10_000, loadBalancing: 'least-loaded' }, seededRng(1), silentLogger);
  const seen: IncomingMessage['headers'][] = [];
  const a = invokeToken('team-a');
  const b = invokeToken('team-b');
  let proxy: InvocationProxy;
  let upstream: Server;
  let service: AsyncService;
  let port = 0;
  const run = (effects: DpEffect[]): void => {
    for (const fx of effects) {
      if (fx.kind === 'dispatch' && isAsyncWaiter(fx.waiter)) fx.waiter.onDispatch();
      else if (fx.kind === 'fail' && isAsyncWaiter(fx.waiter)) fx.waiter.onFail(fx.status, fx.code, fx.message);
      else if (fx.kind === 'dispatch') proxy.start(fx.waiter as Parameters<InvocationProxy['start']>[0]);
    }
  };

  before(async () => {
    proxy = new InvocationProxy(core, { ...dataPlaneDefaults, auth: 'token' }, systemClock, silentLogger, run);
    upstream = createServer((req, res) => { seen.push(req.headers); res.end('ran'); });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => proxy.server.listen(0, '127.0.0.1', r));
    port = (proxy.server.address() as AddressInfo).port;
    const up = (upstream.address() as AddressInfo).port;
    const r = core.applyRouting({ case: 'snapshot', value: { version: 1, functions: [fnSpec('sec.team-a')], drainEndpoints: [], tokens: [a.msg, b.msg],
      endpoints: [{ sandboxId: 's0', function: 'sec.team-a', functionUid: 'sec.team-a-u', address: `127.0.0.1:${up}`, workerId: 'w' }] } }, systemClock.nowMs());
    assert.ok(r.ok);
    const store = openSqliteAsyncStore(join(dir, 'async.db'));
    service = new AsyncService(store, dataPlaneDefaults, () => Buffer.from(String(Math.random())), silentLogger);
    service.attachRunner(new AsyncDispatcher({
      store, consumerId: 'dp-test', clock: systemClock, rng: seededRng(2), log: silentLogger, policy: retryPolicyDefaults, claimLeaseMs: 5_000,
      capacity: () => 1, ready: () => true, retried: () => {}, finished: () => {},
      execute: (inv) => executeAsync({ core, clock: systemClock, run, poolFor: (ep) => proxy.poolFor(ep), resultBytesMax: 1024, authToken: true }, inv),
    }));
    proxy.asyncHttp = { service, clock: systemClock, log: silentLogger, bodyBytesMax: 1024, callbackAllowPrivate: false };
    await service.start(systemClock.nowMs());
  });
  after(async () => {
    await service.close();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
    await new Promise((r) => proxy.server.close(r));
    await proxy.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('submit needs the token; get and retry need it too; the sandbox never sees it', async () => {
    const async = { prefer: 'respond-async' };
    assert.equal((await send(port, 'POST', '/function/sec.team-a/', async)).status, 401);
    assert.equal((await send(port, 'POST', '/function/sec.team-a/', { ...async, authorization: `Bearer ${b.token}` })).status, 403);
    const ok = await send(port, 'POST', '/function/sec.team-a/', { ...async, authorization: `Bearer ${a.token}` });
    assert.equal(ok.status, 202, ok.body);
    const id = (JSON.parse(ok.body) as { id: string }).id;
    assert.equal((await send(port, 'GET', `/v1/invocations/${id}`, {})).status, 401);
    assert.equal((await send(port, 'GET', `/v1/invocations/${id}`, { authorization: `Bearer ${b.token}` })).status, 403);
    assert.equal((await send(port, 'POST', `/v1/invocations/${id}/retry`, { authorization: `Bearer ${b.token}` })).status, 403);
    await waitFor(async () => {
      const r = await send(port, 'GET', `/v1/invocations/${id}`, { authorization: `Bearer ${a.token}` });
      return r.status === 200 && (JSON.parse(r.body) as { status: string }).status === 'succeeded';
    }, 10_000, 'succeeded');
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.authorization, undefined);
    assert.equal(seen[0]!['x-dirigent-submit-token'], undefined, 'the sandbox sees no trace of the token');
    const stored = await service.get(id);
    assert.ok(stored && !JSON.stringify(stored.request.headers).includes(a.token), 'the store never holds the bearer secret');
    // A list without function= shows only what the caller may read.
    const ids = async (headers: Record<string, string>): Promise<string[]> =>
      (JSON.parse((await send(port, 'GET', '/v1/invocations', headers)).body) as { items: { id: string }[] }).items.map((i) => i.id);
    assert.deepEqual(await ids({}), []);
    assert.deepEqual(await ids({ authorization: `Bearer ${b.token}` }), []);
    assert.deepEqual(await ids({ authorization: `Bearer ${a.token}` }), [id]);
  });
});

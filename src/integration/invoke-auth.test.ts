/**
 * Goal: the invocation proxy enforces `auth: token` functions with the tokens the CP pushed:
 * 401 with `WWW-Authenticate: Bearer` without a (known) token, before anything is queued; 200
 * with an invoke token of the function's namespace; 403 with another namespace's token; a
 * revoked token refused as soon as the delta is applied; the caller's Authorization never
 * reaches the sandbox of an `auth: token` function, and passes untouched to an `auth: none` one;
 * a DP with auth none serves `auth: token` functions to anyone.
 * Method: the real proxy and core in-process on loopback, routing applied directly to the core
 * (what the CP link does), a real upstream HTTP server recording the headers it got.
 */
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FunctionSpecMsg, InvokeTokenMsg, RoutingUpdateMsg } from '../api/cluster.js';
import { dataPlaneDefaults } from '../config/defaults.js';
import { DataPlaneCore, type DpEffect } from '../data-plane/core/data-plane.js';
import { InvocationProxy } from '../data-plane/shell/proxy.js';
import { systemClock } from '../shared/clock.js';
import { silentLogger } from '../shared/logger.js';
import { seededRng } from '../shared/rng.js';
import { newToken, sha256Hex } from '../shared/secrets.js';

const fnSpec = (name: string, auth: string): FunctionSpecMsg => ({
  name, uid: `${name}-u`, generation: 1, image: '', command: ['x'], port: 0, env: {}, egress: false, auth, concurrency: 0, timeoutMs: 10_000, workingDir: '',
});
const invokeToken = (namespace: string, scope = 'invoke') => {
  const { id, token } = newToken();
  return { token, msg: { id, sha256Hex: sha256Hex(token), scope, namespace } satisfies InvokeTokenMsg };
};

class Rig {
  readonly core = new DataPlaneCore({ queueDepthMax: 100, queueWaitMsMax: 10_000, loadBalancing: 'least-loaded' }, seededRng(1), silentLogger);
  readonly seen: IncomingMessage['headers'][] = [];
  proxy!: InvocationProxy;
  upstream!: Server;
  port = 0;
  private version = 0;

  constructor(private readonly auth: 'token' | 'none') {}

  async start(): Promise<void> {
    this.proxy = new InvocationProxy(this.core, { ...dataPlaneDefaults, auth: this.auth }, systemClock, silentLogger, (fx) => this.run(fx));
    this.upstream = createServer((req, res) => { this.seen.push(req.headers); res.end('ok'); });
    const upstreamPort = await listen(this.upstream);
    this.port = await listen(this.proxy.server);
    const functions = [fnSpec('sec.team-a', 'token'), fnSpec('pub.team-a', 'none'), fnSpec('cold.team-a', 'token')];
    const endpoints = ['sec.team-a', 'pub.team-a'].map((f, i) => ({ sandboxId: `s${i}`, function: f, functionUid: `${f}-u`, address: `127.0.0.1:${upstreamPort}`, workerId: 'w' }));
    this.apply({ case: 'snapshot', value: { version: ++this.version, functions, endpoints, drainEndpoints: [], tokens: [] } });
  }

  setTokens(upsertTokens: InvokeTokenMsg[], revokeTokens: string[] = []): void {
    const empty = { upsertFunctions: [], deleteFunctions: [], addEndpoints: [], removeEndpoints: [], drainEndpoints: [], failures: [] };
    this.apply({ case: 'delta', value: { ...empty, version: ++this.version, upsertTokens, revokeTokens } });
  }

  async stop(): Promise<void> {
    this.upstream.closeAllConnections();
    await new Promise((r) => this.upstream.close(r));
    await new Promise((r) => this.proxy.server.close(r));
    await this.proxy.close();
  }

  private apply(u: RoutingUpdateMsg): void {
    const r = this.core.applyRouting(u, systemClock.nowMs());
    assert.ok(r.ok);
    this.run(r.effects);
  }

  private run(effects: DpEffect[]): void {
    for (const fx of effects) {
      if (fx.kind === 'dispatch') this.proxy.start(fx.waiter as Parameters<InvocationProxy['start']>[0]);
      else if (fx.kind === 'fail') this.proxy.fail(fx.waiter, fx.status, fx.code, fx.message);
      else if (fx.kind === 'close_pool') this.proxy.closePool(fx.endpoint);
    }
  }
}

function listen(server: Server | import('node:net').Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

/** node:http, not fetch: fetch does not let a caller set Host. */
function invoke(rig: Rig, fn: string, token?: string, via: 'path' | 'host' = 'path') {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  if (via === 'host') headers.host = `${fn}:${rig.port}`;
  const path = via === 'path' ? `/function/${fn}/` : '/';
  return new Promise<{ status: number; body: string; wwwAuthenticate: string | undefined }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: rig.port, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, wwwAuthenticate: res.headers['www-authenticate'] }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('invocation auth on the data plane (auth token)', { timeout: 30_000 }, () => {
  const rig = new Rig('token');
  const a = invokeToken('team-a');
  const b = invokeToken('team-b');
  before(async () => {
    await rig.start();
    rig.setTokens([a.msg, b.msg]);
  });
  after(() => rig.stop());

  it('answers 401 with WWW-Authenticate without a token, with garbage, or with an unknown one', async () => {
    for (const t of [undefined, 'garbage', newToken().token]) {
      const r = await invoke(rig, 'sec.team-a', t);
      assert.equal(r.status, 401, String(t));
      assert.equal(r.wwwAuthenticate, 'Bearer');
      assert.match(r.body, /"code":"unauthorized"/);
    }
  });

  it('refuses before queueing: no cold start for an unauthorized caller', async () => {
    const r = await invoke(rig, 'cold.team-a');
    assert.equal(r.status, 401);
    const fn = rig.core.functions.get('cold.team-a')!;
    assert.equal(fn.queued + fn.level, 0);
    assert.equal(rig.core.firstDemandReport().length, 0);
  });

  it('serves an invoke token of the namespace (path and Host) and hides it from the sandbox', async () => {
    rig.seen.length = 0;
    assert.equal((await invoke(rig, 'sec.team-a', a.token)).status, 200);
    assert.equal((await invoke(rig, 'sec.team-a', a.token, 'host')).status, 200);
    assert.equal(rig.seen.length, 2);
    for (const h of rig.seen) assert.equal(h.authorization, undefined);
  });

  it('forbids a token of another namespace (403)', async () => {
    const r = await invoke(rig, 'sec.team-a', b.token);
    assert.equal(r.status, 403);
    assert.match(r.body, /"code":"forbidden"/);
  });

  it('passes Authorization through to an auth:none function', async () => {
    rig.seen.length = 0;
    assert.equal((await invoke(rig, 'pub.team-a', 'caller-own-credential')).status, 200);
    assert.equal(rig.seen[0]!.authorization, 'Bearer caller-own-credential');
  });

  it('refuses a revoked token right after the delta is applied', async () => {
    const c = invokeToken('team-a');
    rig.setTokens([c.msg]);
    assert.equal((await invoke(rig, 'sec.team-a', c.token)).status, 200);
    rig.setTokens([], [c.msg.id]);
    assert.equal((await invoke(rig, 'sec.team-a', c.token)).status, 401);
  });
});

describe('invocation auth on the data plane (auth none)', { timeout: 30_000 }, () => {
  const rig = new Rig('none');
  before(() => rig.start());
  after(() => rig.stop());

  it('serves an auth:token function without a token and forwards headers as they are', async () => {
    assert.equal((await invoke(rig, 'sec.team-a', 'x')).status, 200);
    assert.equal(rig.seen[0]!.authorization, 'Bearer x');
  });
});

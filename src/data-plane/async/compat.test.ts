/**
 * Goal: the reference's async mode works for InVitro's driver: any request on the proxy port is
 * stored and answered 200 with the id; POSTing the id to the results port gives 204 until the
 * invocation is done, then 200 with the function's body. Runs against a fake AsyncService.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCerts } from '../../cli/certs.js';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../../shared/logger.js';
import { newToken, sha256Hex } from '../../shared/secrets.js';
import {
  allowAll,
  asyncStatusHeader,
  createCompatProxyServer,
  startAsyncCompat,
  startResultsServer,
  type AsyncServicePort,
  type CompatSubmitInput,
  type CompatSubmitResult,
  type RunningResultsServer,
} from './compat.js';
import type { AsyncInvocation } from './types.js';

const bodyBytesMax = 64;

class FakeService implements AsyncServicePort {
  readonly submitted: CompatSubmitInput[] = [];
  readonly invocations = new Map<string, AsyncInvocation>();
  async submit(input: CompatSubmitInput, nowMs: number): Promise<CompatSubmitResult> {
    if (input.functionKey === 'missing') return { kind: 'refused', status: 404, code: 'function_not_found', message: 'no function missing' };
    this.submitted.push(input);
    const id = `inv-${this.submitted.length}`;
    this.invocations.set(id, {
      id, functionKey: input.functionKey, status: 'queued', attempts: [], nextAttemptAtMs: nowMs, acceptedAtMs: nowMs,
      request: { method: input.method, path: input.path, query: input.query ?? '', headers: input.headers, body: Buffer.from(input.body) },
    });
    return { kind: 'accepted', id };
  }
  async get(id: string): Promise<AsyncInvocation | undefined> {
    return this.invocations.get(id);
  }
}

const opts = { host: '127.0.0.1', asyncResultsPort: 0, asyncBodyBytesMax: bodyBytesMax };

describe('async compatibility mode', () => {
  const service = new FakeService();
  let proxy: Server;
  let proxyUrl: string;
  let results: RunningResultsServer;
  let resultsUrl: string;

  before(async () => {
    proxy = createCompatProxyServer(service, opts, () => 1_700_000_000_000, silentLogger);
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    results = await startResultsServer(service, opts, silentLogger);
    resultsUrl = `http://127.0.0.1:${results.port}`;
  });
  after(async () => {
    proxy.closeAllConnections();
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
    await results.close();
  });

  it('answers 200 with the id as plain text after storing the request', async () => {
    const res = await fetch(`${proxyUrl}/function/hello/work?n=3`, { method: 'POST', headers: { 'idempotency-key': 'k1' }, body: 'payload' });
    assert.equal(res.status, 200);
    const id = await res.text();
    assert.equal(id, 'inv-1');
    const stored = service.submitted[0];
    assert.equal(stored.functionKey, 'hello');
    assert.equal(stored.method, 'POST');
    assert.equal(stored.path, '/work');
    assert.equal(stored.query, 'n=3');
    assert.equal(stored.idempotencyKey, 'k1');
    assert.equal(Buffer.from(stored.body).toString(), 'payload');
  });

  it('passes the service refusal on as a JSON error', async () => {
    const res = await fetch(`${proxyUrl}/function/missing/`);
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'function_not_found');
  });

  it('refuses a body over asyncBodyBytesMax with 413 naming the limit', async () => {
    const res = await fetch(`${proxyUrl}/function/hello/`, { method: 'POST', body: 'x'.repeat(bodyBytesMax + 1) });
    assert.equal(res.status, 413);
    assert.match(await res.text(), /asyncBodyBytesMax/);
  });

  it('checks invocation auth as the proxy does, and never stores the token, only its id and digest', async () => {
    const good = newToken();
    const guarded = createCompatProxyServer(service, { ...opts, authorize: (fn, authz) => (fn !== 'secret' ? 'allowed' : authz === `Bearer ${good.token}` ? 'allowed' : authz === undefined ? 'unauthorized' : 'forbidden') }, () => 0, silentLogger);
    await new Promise<void>((resolve) => guarded.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(guarded.address() as AddressInfo).port}/function/secret/`;
    try {
      const before = service.submitted.length;
      const none = await fetch(url, { method: 'POST', body: 'x' });
      assert.equal(none.status, 401);
      assert.equal(none.headers.get('www-authenticate'), 'Bearer');
      assert.equal((await fetch(url, { method: 'POST', body: 'x', headers: { authorization: 'Bearer bad' } })).status, 403);
      assert.equal(service.submitted.length, before, 'refused requests are not stored');
      // A client cannot plant the stored form of someone else's token.
      const planted = { authorization: `Bearer ${good.token}`, 'x-dirigent-submit-token': 'other:00' };
      assert.equal((await fetch(url, { method: 'POST', body: 'x', headers: planted })).status, 200);
      const stored = service.submitted.at(-1)!.headers;
      assert.equal(stored.authorization, undefined);
      assert.equal(stored['x-dirigent-submit-token'], `${good.id}:${sha256Hex(good.token)}`);
      assert.ok(!JSON.stringify(stored).includes(good.token), 'the secret is not stored');
    } finally {
      guarded.closeAllConnections();
      await new Promise<void>((resolve) => guarded.close(() => resolve()));
    }
  });

  it('results port: 204 while pending, then 200 with the stored body', async () => {
    const submit = await fetch(`${proxyUrl}/function/hello/`, { method: 'POST', body: 'x' });
    const id = await submit.text();
    const pending = await fetch(resultsUrl, { method: 'POST', body: id });
    assert.equal(pending.status, 204);
    assert.equal(pending.headers.get(asyncStatusHeader), 'queued');
    const inv = service.invocations.get(id)!;
    inv.status = 'succeeded';
    inv.result = { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: Buffer.from('done!') };
    const done = await fetch(resultsUrl, { method: 'POST', body: `${id}\n` });
    assert.equal(done.status, 200);
    assert.equal(await done.text(), 'done!');
  });

  it('results port: a dead invocation without a response is 200 with its reason', async () => {
    const submit = await fetch(`${proxyUrl}/function/hello/`);
    const id = await submit.text();
    Object.assign(service.invocations.get(id)!, { status: 'dead', deadReason: 'attempts exhausted' });
    const res = await fetch(resultsUrl, { method: 'POST', body: id });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'dead: attempts exhausted');
  });

  it('results port: unknown ids are 404 and garbage is 400', async () => {
    assert.equal((await fetch(resultsUrl, { method: 'POST', body: 'nope-1' })).status, 404);
    assert.equal((await fetch(resultsUrl, { method: 'POST', body: '' })).status, 400);
    assert.equal((await fetch(resultsUrl, { method: 'POST', body: 'a b/c' })).status, 400);
  });
});

describe('startAsyncCompat', () => {
  const cfg = { host: '127.0.0.1', asyncMode: 'all', asyncResultsPort: 0, asyncBodyBytesMax: 1024 };

  it('starts nothing when asyncMode is off, and refuses an unknown mode', async () => {
    const off = await startAsyncCompat({ ...cfg, asyncMode: 'off' }, new FakeService(), allowAll, silentLogger);
    assert.equal(off.submit, null);
    assert.equal(off.results, null);
    await off.close();
    await assert.rejects(startAsyncCompat({ ...cfg, asyncMode: 'some' }, new FakeService(), allowAll, silentLogger), /asyncMode must be off or all/);
  });

  it('in mode all gives the proxy a submit handler and a listening results port', async () => {
    const compat = await startAsyncCompat(cfg, new FakeService(), allowAll, silentLogger);
    try {
      assert.ok(compat.submit);
      const res = await fetch(`http://127.0.0.1:${compat.results!.port}`, { method: 'POST', body: 'unknown-1' });
      assert.equal(res.status, 404);
    } finally {
      await compat.close();
    }
  });

  it("with the DP's certificate the results port speaks HTTPS, and plain HTTP gets no answer", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dirigent-compat-tls-'));
    const certs = createCerts({ dir, hosts: [], days: 1, force: false, nowMs: Date.now() });
    const service = new FakeService();
    const compat = await startAsyncCompat(cfg, service, allowAll, silentLogger, { certPem: readFileSync(certs.cert), keyPem: readFileSync(certs.key) });
    try {
      const { id } = await service.submit({ functionKey: 'f', method: 'POST', path: '/', query: '', headers: {}, body: new Uint8Array() }, 1) as { id: string };
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port: compat.results!.port, method: 'POST', ca: readFileSync(certs.ca), servername: 'localhost' }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end(id);
      });
      assert.equal(status, 204, 'queued, read over TLS');
      await assert.rejects(fetch(`http://127.0.0.1:${compat.results!.port}`, { method: 'POST', body: id }));
    } finally {
      await compat.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});


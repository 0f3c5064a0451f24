/**
 * Goal: the invocation bugs users hit, seen from outside on a real cluster: `Expect:
 * 100-continue` with a 5 MB body (curl sends it for bodies over 1 MiB), a client that gives up
 * does not hold the only sandbox slot, and a delete lets the running request finish.
 * Method: real control-plane, data-plane and worker processes (process runtime) on loopback;
 * node:http clients. Bounds are generous; nothing asserts a duration.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { fixture, TestCluster, waitFor } from './harness.js';

const one = { min: 1, max: 1 };

describe('data plane invocations on a real cluster', { timeout: 120_000 }, () => {
  const c = new TestCluster({ workers: 1 });
  before(() => c.start());
  after(() => c.stop());

  it('Expect: 100-continue with a 5 MB body is proxied (no 502 from the sandbox)', async () => {
    assert.equal((await c.deploy({ name: 'upload', command: ['node', fixture('sleep-server.js')], scaling: one })).status, 201);
    const body = Buffer.alloc(5 * 1_048_576, 1);
    const r = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: c.proxyPort, path: '/', method: 'POST', agent: false,
        headers: { host: 'upload', expect: '100-continue', 'content-length': body.length } });
      req.on('continue', () => req.end(body));
      req.on('response', (res) => {
        let text = '';
        res.on('data', (d: Buffer) => { text += d.toString(); });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
    });
    assert.equal(r.status, 200, r.text);
    assert.equal((JSON.parse(r.text) as { bytes: number }).bytes, body.length);
  });

  it('a client that gives up frees the only slot: the next request is served, not queued behind it', async () => {
    assert.equal((await c.deploy({ name: 'single', command: ['node', fixture('sleep-server.js')], concurrency: 1, scaling: one })).status, 201);
    assert.equal((await c.invoke('single')).status, 200);
    const abandoned = httpRequest({ host: '127.0.0.1', port: c.proxyPort, path: '/', agent: false, headers: { host: 'single', 'x-sleep-ms': '60000' } });
    abandoned.on('error', () => {});
    abandoned.end();
    await new Promise((r) => setTimeout(r, 300));
    abandoned.destroy();
    const started = Date.now();
    const next = await c.invoke('single', { headers: { 'x-sleep-ms': '0' } });
    assert.equal(next.status, 200, next.text);
    assert.ok(Date.now() - started < 20_000, 'served long before the abandoned request would have ended');
  });

  it('a delete while a request runs lets it finish with 200', async () => {
    assert.equal((await c.deploy({ name: 'busy', command: ['node', fixture('sleep-server.js')], scaling: one })).status, 201);
    assert.equal((await c.invoke('busy')).status, 200);
    const running = c.invoke('busy', { headers: { 'x-sleep-ms': '1500' } });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await c.send('DELETE', `${c.api}/v1/functions/busy`)).status, 204);
    const r = await running;
    assert.equal(r.status, 200, r.text);
    await waitFor(async () => (await c.invoke('busy')).status === 404, 10_000, 'busy is gone');
  });
});

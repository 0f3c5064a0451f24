/**
 * Goal: the whole life of a function on a real one-worker cluster (process runtime): deploy, a
 * cold then a warm invocation, scale-out under concurrent slow requests, scale to zero, delete;
 * and the error answers users hit first (bad registrations, unknown function, oversized body).
 * Method: real control-plane, data-plane and worker processes on loopback, driven over HTTP.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:http2';
import { fixture, TestCluster, waitFor } from './harness.js';

const fast = { stableWindowS: 2, panicWindowS: 1, tickS: 0.5 };

describe('function lifecycle on a real cluster', { timeout: 120_000 }, () => {
  const c = new TestCluster({ workers: 1, dpArgs: ['--request-body-bytes-max', '1024'] });
  before(async () => {
    await c.start();
  });
  after(async () => {
    await c.stop();
  });

  it('deploys, answers cold then warm, scales out, scales to zero, and 404s after delete', async () => {
    const created = await c.deploy({ name: 'sleepy', command: ['node', fixture('sleep-server.js')], scaling: fast });
    assert.equal(created.status, 201, created.text);
    const cold = await c.invoke('sleepy');
    assert.equal(cold.status, 200, cold.text);
    assert.equal(cold.headers['x-dirigent-cold-start'], 'true');
    assert.ok(Number(cold.headers['x-dirigent-queue-ms']) > 0);
    const warm = await c.invoke('sleepy');
    assert.equal(warm.status, 200);
    assert.equal(warm.headers['x-dirigent-cold-start'], 'false');

    // 8 concurrent slow requests, concurrency 1 per sandbox: the autoscaler must go past 1.
    const burst = await Promise.all(
      Array.from({ length: 8 }, () => c.invoke('sleepy', { headers: { 'x-sleep-ms': '1500' } })),
    );
    for (const r of burst) assert.equal(r.status, 200, r.text);
    const sandboxes = new Set(burst.map((r) => (r.json as { sandbox: string }).sandbox));
    assert.ok(sandboxes.size >= 2, `expected scale-out, got ${sandboxes.size} sandbox(es)`);

    await waitFor(async () => (await c.status('sleepy')).ready + (await c.status('sleepy')).draining === 0, 20_000, 'scale to zero');

    const del = await c.send('DELETE', `${c.api}/v1/functions/sleepy`);
    assert.equal(del.status, 204);
    const gone = await c.invoke('sleepy');
    assert.equal(gone.status, 404);
    assert.equal((gone.json as { error: { code: string } }).error.code, 'function_not_found');
  });

  it('rejects bad registrations with 4xx naming the field', async () => {
    const cases: [string, unknown, string][] = [
      ['not json', '{', 'body'],
      ['bad name', { name: 'Bad_Name', command: ['true'] }, 'name'],
      ['no image or command', { name: 'x1' }, 'command'],
      ['out of range', { name: 'x2', command: ['true'], concurrency: -1 }, 'concurrency'],
      ['unknown field', { name: 'x3', command: ['true'], colour: 'red' }, 'colour'],
    ];
    for (const [label, body, field] of cases) {
      const r = await c.send('POST', `${c.api}/v1/functions`, typeof body === 'string' ? body : JSON.stringify(body), { 'content-type': 'application/json' });
      assert.equal(r.status, 400, `${label}: ${r.text}`);
      assert.equal((r.json as { error: { field: string } }).error.field, field, label);
    }
    const form = await c.send('POST', `${c.api}/registerService`, 'name=f1&image=x&port_forwarding=80', { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(form.status, 400, form.text);
    assert.match(form.text, /port_forwarding/);
    const dup1 = await c.deploy({ name: 'dup', command: ['node', fixture('sleep-server.js')] });
    assert.equal(dup1.status, 201);
    const dup2 = await c.deploy({ name: 'dup', command: ['node', fixture('sleep-server.js')] });
    assert.equal(dup2.status, 409);
  });

  it('answers 404 for an unknown function and 413 for a body over the limit', async () => {
    const unknown = await c.invoke('nope');
    assert.equal(unknown.status, 404);
    await c.deploy({ name: 'echo', command: ['node', fixture('sleep-server.js')] });
    const big = await c.invoke('echo', { body: Buffer.alloc(4096, 1) });
    assert.equal(big.status, 413, big.text);
    const small = await c.invoke('echo', { body: Buffer.alloc(512, 1) });
    assert.equal(small.status, 200, small.text);
    assert.equal((small.json as { bytes: number }).bytes, 512);
  });

  it('registers through the Dirigent-compatible form and answers with the data-plane address', async () => {
    const r = await c.send('POST', `${c.api}/registerService`, 'name=formfn&image=docker.io/x/y:latest&port_forwarding=80&port_forwarding=tcp&cold_start_sweep=true', { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, `127.0.0.1:${c.proxyPort}`);
    const got = await c.get(`${c.api}/v1/functions/formfn`);
    const spec = (got.json as { function: { scaling: { max: number; stableWindowS: number; panicWindowS: number } } }).function;
    assert.deepEqual([spec.scaling.max, spec.scaling.stableWindowS, spec.scaling.panicWindowS], [1, 6, 2]);
  });

  it('speaks h2c (prior knowledge) on the invocation port, routing by :authority', async () => {
    const r = await c.deploy({ name: 'viah2', command: ['node', fixture('sleep-server.js')] });
    assert.equal(r.status, 201, r.text);
    const session = connect(c.proxy);
    try {
      const answer = await new Promise<{ status: number; cold: string; body: string }>((resolve, reject) => {
        const req = session.request({ ':method': 'POST', ':path': '/', ':authority': 'viah2' });
        let status = 0;
        let cold = '';
        const chunks: Buffer[] = [];
        req.on('response', (h) => {
          status = Number(h[':status']);
          cold = String(h['x-dirigent-cold-start']);
        });
        req.on('data', (d: Buffer) => chunks.push(d));
        req.on('end', () => resolve({ status, cold, body: Buffer.concat(chunks).toString() }));
        req.on('error', reject);
        req.end('twelve bytes');
      });
      assert.equal(answer.status, 200, answer.body);
      assert.equal(answer.cold, 'true');
      assert.equal((JSON.parse(answer.body) as { bytes: number }).bytes, 12);
    } finally {
      session.close();
    }
  });

  it('applies scaling knobs changed with PATCH to a live function', async () => {
    await c.deploy({ name: 'knobs', command: ['node', fixture('sleep-server.js')] });
    const p = await c.send('PATCH', `${c.api}/v1/functions/knobs`, JSON.stringify({ scaling: { min: 1, stableWindowS: 10 } }), { 'content-type': 'application/json' });
    assert.equal(p.status, 200, p.text);
    const spec = (p.json as { function: { scaling: { min: number; stableWindowS: number } } }).function;
    assert.deepEqual([spec.scaling.min, spec.scaling.stableWindowS], [1, 10]);
    await waitFor(async () => (await c.status('knobs')).ready === 1, 15_000, 'min 1 honoured');
    const bad = await c.send('PATCH', `${c.api}/v1/functions/knobs`, JSON.stringify({ scaling: { panicWindowS: 20 } }), { 'content-type': 'application/json' });
    assert.equal(bad.status, 400, bad.text);
  });

  // The CP drains (bounded by the function's timeout); the DP drains before it forgets the
  // function and acknowledges only when the sandbox is idle.
  it('lets a request in flight finish when its function is deleted (drain before delete)', async () => {
    const r = await c.deploy({ name: 'draining', command: ['node', fixture('sleep-server.js')], scaling: fast });
    assert.equal(r.status, 201, r.text);
    assert.equal((await c.invoke('draining')).status, 200);
    const slow = c.invoke('draining', { headers: { 'x-sleep-ms': '1500' } });
    await new Promise((res) => setTimeout(res, 300));
    const del = await c.send('DELETE', `${c.api}/v1/functions/draining`);
    assert.equal(del.status, 204, del.text);
    const done = await slow;
    assert.equal(done.status, 200, `in-flight request killed by the delete: ${done.status} ${done.text}`);
    assert.equal((await c.invoke('draining')).status, 404);
  });
});


/**
 * Goal: management API outcomes are values: created, exists (409), not found (404), rejected
 * with the error body's code and field, unreachable with the transport code.
 * Method: the in-process fake cluster on 127.0.0.1 and a closed port.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { coldFunctionBody } from '../core/functions.js';
import { startFakeCluster } from '../testing/fake-cluster.js';
import { createManagementClient, deleteAll, mapLimited, registerAll } from './management.js';

test('outcomes of register, status and delete', { timeout: 10_000 }, async () => {
  const cluster = await startFakeCluster();
  const c = createManagementClient(cluster.apiUrl, 4, '');
  try {
    const body = coldFunctionBody('m-1', { kind: 'emulated' });
    assert.deepEqual(await c.register(body), { kind: 'ok' });
    assert.deepEqual(await c.register(body), { kind: 'exists' });
    const bad = await c.register({ ...body, name: 'Bad Name' });
    assert.equal(bad.kind, 'rejected');
    assert.ok(bad.kind === 'rejected' && bad.status === 400 && /field name/.test(bad.message));
    assert.deepEqual(await c.status('m-1'), { desired: 0, ready: 0, creating: 0, queueDepth: 0 });
    assert.deepEqual(await c.status('nope'), { kind: 'not_found' });
    assert.deepEqual(await c.remove('m-1'), { kind: 'ok' });
    assert.deepEqual(await c.remove('m-1'), { kind: 'not_found' });
    const bodies = Array.from({ length: 40 },
      (_, i) => coldFunctionBody(`b-${i}`, { kind: 'emulated' }));
    const reg = await registerAll(c, bodies, 8);
    assert.equal(reg.ok, 40);
    assert.equal(reg.latency.totalCount, 40);
    const del = await deleteAll(c, [...bodies.map((b) => b.name), 'never-existed'], 8);
    assert.equal(del.ok, 41, 'an already-deleted function counts as deleted');
  } finally {
    await c.close();
    await cluster.close();
  }
});

test('unreachable control plane', { timeout: 10_000 }, async () => {
  const c = createManagementClient('http://127.0.0.1:1', 1, '');
  const o = await c.register(coldFunctionBody('x', { kind: 'emulated' }));
  assert.equal(o.kind, 'unreachable');
  assert.ok(o.kind === 'unreachable' && o.code === 'ECONNREFUSED');
  await c.close();
});

test('mapLimited keeps order and the limit', async () => {
  let active = 0;
  let peak = 0;
  const out = await mapLimited([5, 1, 3, 2, 4], 2, async (x) => {
    peak = Math.max(peak, ++active);
    await new Promise((r) => setTimeout(r, x));
    active--;
    return x * 10;
  });
  assert.deepEqual(out, [50, 10, 30, 20, 40]);
  assert.equal(peak, 2);
});

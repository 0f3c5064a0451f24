/**
 * Goal: etcd restarted under an HA cluster (issue 8, item 8): warm traffic keeps flowing on the
 * DP's routing table while etcd is down, a control plane leads again once etcd is back, and no
 * record is lost (functions registered before are still there; a new one registers and serves).
 * Method: real etcd, two CPs, one DP, one emulated worker; etcd stopped for longer than the lease
 * (so the leader is deposed and exits), then started again on the same data dir and ports.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HaCluster } from './ha-cluster.js';
import { sleep, waitFor } from './harness.js';

/** etcd stays down this long: past the 1 s lease, so leadership must be won anew. */
const etcdDownMs = 2_500;

describe('etcd restarted under the HA cluster', { timeout: 120_000 }, () => {
  const ha = new HaCluster();
  const c = ha.c;
  before(() => ha.start(2));
  after(() => ha.stop());

  it('keeps warm traffic flowing, leads again when etcd is back, and loses no record', async () => {
    const first = (await ha.leader())!;
    c.apiPort = first.cp.api;
    const fixed = { min: 1, max: 1, initial: 1, stableWindowS: 2, panicWindowS: 1, tickS: 0.5 };
    for (const name of ['warm', 'kept']) assert.equal((await c.deploy({ name, image: 'emulated', concurrency: 0, scaling: fixed })).status, 201);
    await waitFor(async () => (await c.status('warm')).ready === 1, 15_000, 'a ready sandbox');
    let running = true;
    const failures: string[] = [];
    let served = 0;
    const client = async (): Promise<void> => {
      while (running) {
        const res = await c.invoke('warm', { headers: { 'x-emulated-duration-ms': '10' } });
        if (res.status !== 200) failures.push(`${res.status} ${res.text}`);
        else served += 1;
      }
    };
    const clients = Array.from({ length: 2 }, () => client());
    let next: Awaited<ReturnType<HaCluster['leader']>> = null;
    try {
      await sleep(300);
      await ha.etcd.stop();
      await sleep(etcdDownMs);
      const servedWhileDown = served;
      await ha.etcd.start();
      assert.ok(servedWhileDown > 0, 'warm requests were served while etcd was down');
      await waitFor(async () => (next = await ha.leader()) !== null, 15_000, 'a leader after etcd is back');
      await ha.followersOn(next!.cp, 15_000);
      c.apiPort = next!.cp.api;
      assert.equal((await c.deploy({ name: 'after', image: 'emulated' })).status, 201);
      const r = await c.invoke('after');
      assert.equal(r.status, 200, `${r.text}\n${c.dumpLogs()}`);
    } finally {
      running = false;
      await Promise.all(clients);
    }
    assert.deepEqual(failures, [], 'warm requests failed');
    const names = ((await c.get(`${c.api}/v1/functions`)).json as { functions: { function: { name: string } }[] }).functions.map((f) => f.function.name).sort();
    assert.deepEqual(names, ['after', 'kept', 'warm']);
  });
});

/**
 * Goal: a control-plane restart under warm traffic is invisible (issue 7, item 10): with
 * requests flowing, SIGKILL the CP and start it again; no warm request fails, the running
 * sandboxes are adopted (the same sandbox ids serve afterwards and none is created anew), and
 * a new function cold-starts within 1 s of the CP being back. Method: real processes, the
 * emulated runtime; sandbox ids come from the emulated sandbox's answer (it echoes the
 * x-dirigent-sandbox header the DP sends upstream) and from GET /v1/cluster.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, TestCluster, waitFor } from './harness.js';

interface ClusterView {
  workers: { id: string; connected: boolean; sandboxIds: string[] }[];
}

/**
 * The new function answers within 1 s of the restarted CP answering /health (issue 7). Workers
 * and DPs retry the CP at most `reconnectBackoffMs[1]` (500 ms) apart, so they are back well
 * inside that second.
 */
const coldStartAfterRestartMsMax = 1_000;

describe('control-plane restart under warm traffic', { timeout: 90_000 }, () => {
  const c = new TestCluster({ workers: 1, runtime: 'emulated' });
  before(async () => {
    await c.start();
  });
  after(async () => {
    await c.stop();
  });

  const sandboxIds = async (): Promise<string[]> => {
    const v = (await c.get(`${c.api}/v1/cluster`)).json as ClusterView;
    return v.workers.flatMap((w) => w.sandboxIds).sort();
  };

  it('fails no warm request, adopts every sandbox, and cold-starts a new function within 1 s', async () => {
    const fixed = { min: 2, max: 2, initial: 2, stableWindowS: 2, panicWindowS: 1, tickS: 0.5 };
    const r = await c.deploy({ name: 'warm', image: 'emulated', concurrency: 0, scaling: fixed });
    assert.equal(r.status, 201, r.text);
    await waitFor(async () => (await c.status('warm')).ready === 2, 15_000, '2 ready sandboxes');
    const before = await sandboxIds();
    assert.equal(before.length, 2);

    let running = true;
    const failures: string[] = [];
    const served = new Set<string>();
    const servedAfter = new Set<string>();
    let cpBack = false;
    const client = async (): Promise<void> => {
      while (running) {
        const res = await c.invoke('warm', { headers: { 'x-emulated-duration-ms': '20' } });
        if (res.status !== 200) failures.push(`${res.status} ${res.text}`);
        else {
          const sb = (res.json as { sandbox: string }).sandbox;
          served.add(sb);
          if (cpBack) servedAfter.add(sb);
        }
      }
    };
    const clients = Array.from({ length: 4 }, () => client());
    try {
      await sleep(500);
      await c.restartControlPlane();
      cpBack = true;
      const backAtMs = Date.now();
      const fresh = await c.deploy({ name: 'fresh', image: 'emulated' });
      assert.equal(fresh.status, 201, fresh.text);
      const createdMs = Date.now() - backAtMs;
      const first = await c.invoke('fresh');
      const coldMs = Date.now() - backAtMs;
      process.stderr.write(`cp-restart: created after ${createdMs} ms, first answer after ${coldMs} ms\n`);
      assert.equal(first.status, 200, first.text);
      assert.ok(coldMs <= coldStartAfterRestartMsMax, `new function answered ${coldMs} ms after the CP was back (201 after ${createdMs} ms)\n${c.dumpLogs()}`);
      await sleep(1_500);
    } finally {
      running = false;
      await Promise.all(clients);
    }
    assert.deepEqual(failures, [], 'warm requests failed');
    assert.deepEqual([...served].sort(), before, 'only the original sandboxes served');
    assert.deepEqual([...servedAfter].sort(), before, 'both original sandboxes serve after the restart');
    const after = await sandboxIds();
    const warmAfter = after.filter((id) => before.includes(id));
    assert.deepEqual(warmAfter, before, 'the adopted sandboxes are still there');
    assert.equal(after.length, 3, `expected the 2 adopted + 1 new sandbox, got ${after.join(',')}`);
  });
});

/**
 * Goal: the cluster survives the failures DESIGN §6 names: a worker killed with SIGKILL, a
 * crashing sandbox, and a control-plane restart. Method: real processes on loopback; faults are
 * injected by PID; recovery is observed through the API and through invocations.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fixture, stopProc, TestCluster, waitFor } from './harness.js';

const keepOne = { min: 1, stableWindowS: 2, panicWindowS: 1, tickS: 0.5 };

interface ClusterView {
  workers: { id: string; connected: boolean; schedulable: boolean; sandboxes: number }[];
}

describe('faults on a real cluster', { timeout: 150_000 }, () => {
  const c = new TestCluster({ workers: 2 });
  before(async () => {
    await c.start();
  });
  after(async () => {
    await c.stop();
  });

  it('replaces the sandboxes of a SIGKILLed worker on the other worker; requests sent meanwhile do not fail', async () => {
    const r = await c.deploy({ name: 'survivor', command: ['node', fixture('sleep-server.js')], scaling: { ...keepOne, min: 2 } });
    assert.equal(r.status, 201, r.text);
    await waitFor(async () => (await c.status('survivor')).ready === 2, 20_000, '2 ready sandboxes');
    const view = (await c.get(`${c.api}/v1/cluster`)).json as ClusterView;
    const victimId = view.workers.find((w) => w.sandboxes > 0)!.id;
    const victim = c.workers.find((w) => w.name === victimId)!;
    await stopProc(victim, 'SIGKILL');
    try {
      // Sent at once: the dead sandboxes refuse (their processes died with the worker), the DP
      // takes them out of rotation and the requests go to a surviving sandbox or wait for the
      // replacements. None fails.
      for (let i = 0; i < 5; i += 1) {
        const inv = await c.invoke('survivor');
        assert.equal(inv.status, 200, inv.text);
      }
      await waitFor(async () => {
        const v = (await c.get(`${c.api}/v1/cluster`)).json as ClusterView;
        const other = v.workers.find((w) => w.id !== victimId)!;
        return other.sandboxes === 2 && (await c.status('survivor')).ready === 2;
      }, 20_000, 'replacements on the surviving worker');
      for (let i = 0; i < 5; i += 1) {
        const inv = await c.invoke('survivor');
        assert.equal(inv.status, 200, inv.text);
      }
    } finally {
      // Back to two workers even when this test fails, so the next ones fail (or pass) on their own.
      // Its sandbox processes died with it (pdeathsig), so no orphan keeps a port.
      const restarted = await c.startWorker(victimId);
      assert.ok(restarted.proc.pid);
      await c.waitWorkers(2);
    }
  });

  it('replaces a sandbox whose process crashes', async () => {
    const r = await c.deploy({ name: 'crashy', command: ['node', fixture('sleep-server.js')], scaling: keepOne });
    assert.equal(r.status, 201, r.text);
    await waitFor(async () => (await c.status('crashy')).ready === 1, 20_000, 'first sandbox');
    const first = (await c.invoke('crashy')).json as { sandbox: string };
    await c.invoke('crashy', { path: '/crash' });
    await waitFor(async () => {
      const inv = await c.invoke('crashy');
      return inv.status === 200 && (inv.json as { sandbox: string }).sandbox !== first.sandbox;
    }, 20_000, 'a replacement sandbox answering');
  });

  it('keeps functions registered and invocable across a control-plane restart', async () => {
    const r = await c.deploy({ name: 'durable', command: ['node', fixture('sleep-server.js')], scaling: keepOne });
    assert.equal(r.status, 201, r.text);
    await waitFor(async () => (await c.invoke('durable')).status === 200, 20_000, 'first answer');
    const before = ((await c.invoke('durable')).json as { sandbox: string }).sandbox;
    await c.restartControlPlane();
    const got = await c.get(`${c.api}/v1/functions/durable`);
    assert.equal(got.status, 200, got.text);
    await c.waitWorkers(2);
    await waitFor(async () => (await c.status('durable')).ready === 1, 20_000, 'sandbox adopted');
    // Adopted, not recreated: the same sandbox answers.
    for (let i = 0; i < 3; i += 1) {
      const inv = await c.invoke('durable');
      assert.equal(inv.status, 200, inv.text);
      assert.equal((inv.json as { sandbox: string }).sandbox, before);
    }
  });
});

/**
 * Goal: replicated control planes on etcd (issue 8, items 2-4, 8). Three CPs share one real etcd;
 * one DP and one emulated worker follow the leader through the address list. SIGKILL the leader
 * under warm traffic: no warm request fails, a standby leads within a few seconds with a higher
 * term, the sandboxes that existed before still serve (same ids), and a function registered
 * after the failover is invoked. SIGSTOP a leader past its lease: a standby takes over; after
 * SIGCONT the old leader steps down (exits) and no sandbox is duplicated.
 * Method: real processes on free loopback ports; roles from each CP's GET /health.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HaCluster, type Cp } from './ha-cluster.js';
import { sleep, stopProc, waitFor } from './harness.js';

/** A new leader must be serving within this long of the old one's death (lease 1 s + polls). */
const newLeaderMsMax = 5_000;

describe('HA control planes on etcd', { timeout: 120_000 }, () => {
  const ha = new HaCluster();
  const { c, cps } = ha;
  const leader = (exclude: Cp[] = []) => ha.leader(exclude);
  const sandboxIds = async (api: number): Promise<string[]> => ha.sandboxIds(cps.find((cp) => cp.api === api)!);
  const followersOn = (cp: Cp): Promise<void> => ha.followersOn(cp);
  before(() => ha.start(3));
  after(() => ha.stop());

  it('answers /health and /health/leader by role, and standbys forward the API to the leader', async () => {
    const l = (await leader())!;
    const standby = cps.find((cp) => cp !== l.cp)!;
    assert.equal((await c.get(`http://127.0.0.1:${l.cp.api}/health/leader`)).status, 200);
    assert.equal((await c.get(`http://127.0.0.1:${standby.api}/health/leader`)).status, 503);
    const viaStandby = await c.send('POST', `http://127.0.0.1:${standby.api}/v1/functions`, JSON.stringify({ name: 'warm', image: 'emulated', concurrency: 0,
      scaling: { min: 2, max: 2, initial: 2, stableWindowS: 2, panicWindowS: 1, tickS: 0.5 } }), { 'content-type': 'application/json' });
    assert.equal(viaStandby.status, 201, viaStandby.text);
    const view = (await c.get(`http://127.0.0.1:${standby.api}/v1/cluster`)).json as { controlPlanes: { id: string; role: string }[] };
    assert.deepEqual(view.controlPlanes.map((m) => `${m.id}:${m.role}`).sort(), cps.map((cp) => `${cp.id}:${cp === l.cp ? 'leader' : 'standby'}`).sort());
  });

  it('survives a leader SIGKILL under warm load: no warm failure, same sandboxes, new function served', async () => {
    const old = (await leader())!;
    c.apiPort = old.cp.api;
    await waitFor(async () => (await c.status('warm')).ready === 2, 15_000, '2 ready sandboxes');
    const beforeIds = await sandboxIds(old.cp.api);
    let running = true;
    const failures: string[] = [];
    const served = new Set<string>();
    const client = async (): Promise<void> => {
      while (running) {
        const res = await c.invoke('warm', { headers: { 'x-emulated-duration-ms': '10' } });
        if (res.status !== 200) failures.push(`${res.status} ${res.text}`);
        else served.add((res.json as { sandbox: string }).sandbox);
      }
    };
    const clients = Array.from({ length: 4 }, () => client());
    let next: { cp: Cp; term: number } | null = null;
    try {
      await sleep(300);
      const killedAt = Date.now();
      await stopProc(old.cp.proc, 'SIGKILL');
      await waitFor(async () => (next = await leader([old.cp])) !== null, newLeaderMsMax, 'a new leader');
      process.stderr.write(`ha: new leader ${next!.cp.id} (term ${next!.term}) after ${Date.now() - killedAt} ms\n`);
      assert.ok(next!.term > old.term, `term grows: ${old.term} -> ${next!.term}`);
      c.apiPort = next!.cp.api;
      // A DP learns a new function only once it follows the new leader (unknown functions get 404).
      await followersOn(next!.cp);
      process.stderr.write(`ha: DP and worker follow the new leader after ${Date.now() - killedAt} ms\n`);
      const fresh = await c.deploy({ name: 'fresh', image: 'emulated' });
      assert.equal(fresh.status, 201, fresh.text);
      const first = await c.invoke('fresh');
      assert.equal(first.status, 200, `${first.text}\n${c.dumpLogs()}`);
      await sleep(1_000);
    } finally {
      running = false;
      await Promise.all(clients);
    }
    assert.deepEqual(failures, [], 'warm requests failed');
    assert.deepEqual([...served].sort(), beforeIds, 'only the original sandboxes served');
    await waitFor(async () => beforeIds.every((id) => [...served].includes(id)), 1_000, 'both served');
    const afterIds = await sandboxIds(next!.cp.api);
    assert.deepEqual(afterIds.filter((id) => beforeIds.includes(id)), beforeIds, 'the adopted sandboxes are still there');
  });

  it('fences a paused leader: a standby takes over, the old one steps down after SIGCONT, no sandbox doubles', async () => {
    const old = (await leader())!;
    const idsBefore = await sandboxIds(old.cp.api);
    old.cp.proc.proc.kill('SIGSTOP');
    let next: { cp: Cp; term: number } | null = null;
    await waitFor(async () => (next = await leader([old.cp])) !== null, newLeaderMsMax, 'a standby taking over');
    assert.ok(next!.term > old.term);
    // Followers keep the paused leader's streams open (TCP is alive) until it resumes and exits
    // or gRPC keepalive gives up on it; the resumed leader must not act meanwhile.
    const exited = new Promise<number | null>((r) => old.cp.proc.proc.once('exit', (code) => r(code)));
    old.cp.proc.proc.kill('SIGCONT');
    const code = await Promise.race([exited, sleep(5_000).then(() => 'still running' as const)]);
    assert.equal(code, 75, 'the old leader exits as deposed');
    assert.match(old.cp.proc.logs.join(''), /control_plane\.deposed/);
    await followersOn(next!.cp);
    await waitFor(async () => (await sandboxIds(next!.cp.api)).length >= idsBefore.length, 10_000, 'sandboxes adopted by the new leader');
    await sleep(1_000);
    const idsAfter = await sandboxIds(next!.cp.api);
    assert.deepEqual(idsAfter, idsBefore, 'no sandbox created or lost by the paused leader');
    c.apiPort = next!.cp.api;
    assert.equal((await c.invoke('warm')).status, 200);
  });
});

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
import { TestEtcd } from './etcd.js';
import { freePort, sleep, stopProc, TestCluster, waitFor, type Proc } from './harness.js';

interface Health { role: 'leader' | 'standby'; term: number; pid: number; id: string }
interface Cp { id: string; api: number; rpc: number; proc: Proc }

/** A new leader must be serving within this long of the old one's death (lease 1 s + polls). */
const newLeaderMsMax = 5_000;

describe('HA control planes on etcd', { timeout: 120_000 }, () => {
  const etcd = new TestEtcd();
  const c = new TestCluster({ runtime: 'emulated' });
  const cps: Cp[] = [];
  const health = async (cp: Cp): Promise<Health | null> => {
    try {
      return (await c.get(`http://127.0.0.1:${cp.api}/health`)).json as Health;
    } catch {
      return null;
    }
  };
  const leader = async (exclude: Cp[] = []): Promise<{ cp: Cp; term: number } | null> => {
    for (const cp of cps) {
      if (exclude.includes(cp)) continue;
      const h = await health(cp);
      if (h?.role === 'leader') return { cp, term: h.term };
    }
    return null;
  };
  const startCp = async (i: number): Promise<void> => {
    const [api, rpc] = [await freePort(), await freePort()];
    const id = `cp-${i}`;
    const proc = c.spawn(id, ['control-plane', '--store', etcd.url, '--store-prefix', '/ha-test/', '--id', id, '--lease-ttl-s', '1',
      '--election-poll-ms', '100', '--api-port', String(api), '--rpc-port', String(rpc), '--state-dir', c.stateDir,
      '--monitor-period-ms', '100', '--heartbeat-timeout-ms', '2000']);
    cps.push({ id, api, rpc, proc });
  };

  before(async () => {
    await etcd.start();
    for (let i = 0; i < 3; i += 1) await startCp(i);
    await waitFor(async () => (await leader()) !== null, 15_000, 'a leader');
    const list = cps.map((cp) => `127.0.0.1:${cp.rpc}`).join(',');
    const first = (await leader())!.cp;
    [c.apiPort, c.proxyPort, c.internalPort] = [first.api, await freePort(), await freePort()];
    c.spawn('data-plane', ['data-plane', '--control-plane', list, '--proxy-port', String(c.proxyPort), '--internal-port', String(c.internalPort)]);
    c.spawn('worker-1', ['worker', '--id', 'worker-1', '--port', String(await freePort()), '--control-plane', list, '--runtime', 'emulated',
      '--state-dir', c.stateDir, '--heartbeat-period-ms', '250']);
    await waitFor(async () => (await c.get(`http://127.0.0.1:${c.internalPort}/health`)).status === 200, 15_000, 'data plane healthy');
    await c.waitWorkers(1);
  });
  after(async () => {
    for (const cp of cps) if (cp.proc.proc.exitCode === null) cp.proc.proc.kill('SIGCONT');
    await c.stop();
    await etcd.destroy();
  });

  const sandboxIds = async (api: number): Promise<string[]> => {
    const v = (await c.get(`http://127.0.0.1:${api}/v1/cluster`)).json as { workers: { sandboxIds: string[] }[] };
    return v.workers.flatMap((w) => w.sandboxIds).sort();
  };

  const followersOn = async (cp: Cp): Promise<void> => {
    await waitFor(async () => {
      const v = (await c.get(`http://127.0.0.1:${cp.api}/v1/cluster`)).json as { workers: { connected: boolean }[]; dataPlanes: { connected: boolean }[] };
      return v.workers.some((w) => w.connected) && v.dataPlanes.some((d) => d.connected);
    }, 10_000, `DP and worker connected to ${cp.id}`).catch((err: Error) => {
      throw new Error(`${err.message}\n${c.dumpLogs()}`);
    });
  };

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

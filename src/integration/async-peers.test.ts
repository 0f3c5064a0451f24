/**
 * Goal: issue #11 part 4 through the front end with the embedded store (SQLite per DP). Two data
 * planes behind `dirigent frontend`: invocations submitted through the front end land on both
 * DPs, and every result reads back through the front end, the other DP's ids forwarded to their
 * owner (one hop). A re-drive is forwarded too. A forged id naming an unknown DP is a plain 404;
 * with the owner DP stopped, its ids are 503 owner_unavailable (not 404) through the other DP.
 * Method: real CP, two DPs, emulated worker and HAProxy processes. The front end balances by
 * Host, so submits vary the Host's port (ignored by the DP) to spread over both DPs; reads all
 * carry the front end's own Host and so all go to one DP. Bounds are generous; nothing asserts
 * a duration.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ownerTagOf, ownerTagOfId } from '../data-plane/async/owner.js';
import { asyncInvocationId } from '../data-plane/async/types.js';
import { freePort, stopProc, TestCluster, waitFor, type Proc, type Resp } from './harness.js';

const submits = 40;

describe('async results through the front end, SQLite per data plane', { timeout: 120_000 }, () => {
  const c = new TestCluster({ workers: 1, runtime: 'emulated' });
  let fe = '';
  let proxy2 = 0;
  let dp2: Proc;
  const ids: string[] = [];

  before(async () => {
    await c.start();
    const internal2 = await freePort();
    proxy2 = await freePort();
    dp2 = c.spawn('data-plane-2', ['data-plane', '--control-plane', `127.0.0.1:${c.rpcPort}`, '--proxy-port', String(proxy2), '--internal-port', String(internal2),
      '--cluster-token-file', c.clusterTokenFile, '--state-dir', join(c.stateDir, 'dp2')]);
    await waitFor(async () => (await c.get(`http://127.0.0.1:${internal2}/health`)).status === 200, 15_000, 'second data plane healthy');
    const [feInvoke, feApi] = await Promise.all([freePort(), freePort()]);
    c.spawn('frontend', ['frontend', '--state-dir', c.stateDir, '--invocation-port', String(feInvoke), '--api-port', String(feApi),
      '--control-planes', `127.0.0.1:${c.apiPort}`, '--data-planes', `127.0.0.1:${c.proxyPort},127.0.0.1:${proxy2}`, '--slots', '4']);
    fe = `http://127.0.0.1:${feInvoke}`;
    assert.equal((await c.deploy({ name: 'fa', image: 'emulated', scaling: { min: 1, initial: 1 } })).status, 201);
    await waitFor(async () => (await c.send('GET', `${fe}/`, undefined, { host: 'fa' })).status === 200, 30_000, 'fa answers through the front end');
  });

  after(() => c.stop());

  const read = (id: string, method = 'GET', suffix = '') => c.send(method, `${fe}/v1/invocations/${id}${suffix}`, undefined, {}, true);
  const tagOf = (proxyPort: number): string => ownerTagOf(`dp-127.0.0.1-${proxyPort}`);

  it('accepts on both DPs and reads every result back through the front end', async () => {
    for (let i = 0; i < submits; i += 1) {
      const r = await c.send('POST', `${fe}/work`, `n${i}`, { host: `fa:${1000 + i}`, prefer: 'respond-async' });
      assert.equal(r.status, 202, r.text);
      ids.push((r.json as { id: string }).id);
    }
    const owners = new Set(ids.map(ownerTagOfId));
    assert.deepEqual([...owners].sort(), [tagOf(c.proxyPort), tagOf(proxy2)].sort(), 'both DPs accepted some');
    for (const id of ids) {
      await waitFor(async () => ((await read(id)).json as { status?: string } | null)?.status === 'succeeded', 30_000, `${id} succeeded`);
    }
    const views = await Promise.all(ids.map((id) => read(id)));
    assert.deepEqual(views.map((v) => v.status), ids.map(() => 200));
    assert.deepEqual(views.map((v) => (v.json as { id: string }).id), ids);
  });

  it('forwards a re-drive to the owner (a succeeded one is not re-drivable there)', async () => {
    for (const id of ids) {
      const r = await read(id, 'POST', '/retry');
      assert.equal(r.status, 409, `${id}: ${r.text}`);
      assert.equal((r.json as { error: { code: string } }).error.code, 'not_redrivable');
    }
  });

  it('answers 404 for a forged id naming a DP the CP never announced', async () => {
    const forged = asyncInvocationId(Date.now(), Buffer.alloc(8, 7), ownerTagOf('dp-203.0.113.9-80'));
    const r = await read(forged);
    assert.equal(r.status, 404, r.text);
    assert.equal((r.json as { error: { code: string } }).error.code, 'invocation_not_found');
  });

  it("answers 503 owner_unavailable for a stopped DP's ids through the other DP", async () => {
    await stopProc(dp2, 'SIGKILL');
    const theirs = ids.filter((id) => ownerTagOfId(id) === tagOf(proxy2));
    const ours = ids.filter((id) => ownerTagOfId(id) === tagOf(c.proxyPort));
    const direct = (id: string) => c.send('GET', `${c.proxy}/v1/invocations/${id}`, undefined, {}, true);
    for (const id of theirs) {
      const r = await direct(id);
      assert.equal(r.status, 503, r.text);
      const err = (r.json as { error: { code: string; message: string } }).error;
      assert.equal(err.code, 'owner_unavailable');
      assert.match(err.message, new RegExp(`dp-127\\.0\\.0\\.1-${proxy2}`));
    }
    for (const id of ours) assert.equal((await direct(id)).status, 200);
    // Through the front end too, once its health check has taken the dead DP out.
    await waitFor(async () => (await read(theirs[0]!)).status === 503, 15_000, 'front end answers owner_unavailable');
  });
});

describe("compatibility mode: a DP's results port reads another DP's ids", { timeout: 120_000 }, () => {
  let c: TestCluster;
  let dp2: Proc;
  let proxy2 = 0;
  let results1 = '';

  before(async () => {
    const [rp1, rp2, internal2] = await Promise.all([freePort(), freePort(), freePort()]);
    proxy2 = await freePort();
    results1 = `http://127.0.0.1:${rp1}/`;
    c = new TestCluster({ workers: 1, runtime: 'emulated', dpArgs: ['--async-mode', 'all', '--async-results-port', String(rp1)] });
    await c.start();
    dp2 = c.spawn('data-plane-2', ['data-plane', '--control-plane', `127.0.0.1:${c.rpcPort}`, '--proxy-port', String(proxy2), '--internal-port', String(internal2),
      '--cluster-token-file', c.clusterTokenFile, '--state-dir', join(c.stateDir, 'dp2'), '--async-mode', 'all', '--async-results-port', String(rp2)]);
    await waitFor(async () => (await c.get(`http://127.0.0.1:${internal2}/health`)).status === 200, 15_000, 'second data plane healthy');
    assert.equal((await c.deploy({ name: 'fa', image: 'emulated', scaling: { min: 1, initial: 1 } })).status, 201);
    assert.equal((await c.deploy({ name: 'ft', image: 'emulated', auth: 'token', scaling: { min: 1, initial: 1 } })).status, 201);
  });

  after(() => c.stop());

  const submitTo2 = async (fn: string): Promise<string> => {
    const send = () => c.send('POST', `http://127.0.0.1:${proxy2}/`, 'x', { host: fn, authorization: `Bearer ${c.adminToken()}` });
    let r = await send();
    // DP 2 answers not_ready until it has its routing table and its async side.
    await waitFor(async () => (r = await send()).status !== 503, 15_000, 'DP 2 ready');
    assert.equal(r.status, 200, r.text);
    const id = r.text.trim();
    assert.equal(ownerTagOfId(id), ownerTagOf(`dp-127.0.0.1-${proxy2}`));
    return id;
  };
  const readDone = async (id: string): Promise<Resp> => {
    let last = await c.send('POST', results1, id);
    await waitFor(async () => (last = await c.send('POST', results1, id)).status === 200, 60_000, `${id} done, read through the other DP`);
    return last;
  };

  it('reads through DP 1 what DP 2 accepted, 404 for a forged owner, 503 owner_unavailable once DP 2 is down', async () => {
    const id = await submitTo2('fa');
    assert.equal((await readDone(id)).headers['x-dirigent-async-status'], 'succeeded');
    // auth: token: the results port takes no caller token, so DP 1 reads as a peer (cluster token).
    const tokenId = await submitTo2('ft');
    assert.match((await readDone(tokenId)).headers['x-dirigent-async-status'] ?? '', /^(succeeded|failed|dead)$/);
    const forged = asyncInvocationId(Date.now(), Buffer.alloc(8, 7), ownerTagOf('dp-203.0.113.9-80'));
    assert.equal((await c.send('POST', results1, forged)).status, 404);
    await stopProc(dp2, 'SIGKILL');
    const down = await c.send('POST', results1, id);
    assert.equal(down.status, 503, down.text);
    assert.equal((down.json as { error: { code: string } }).error.code, 'owner_unavailable');
  });
});

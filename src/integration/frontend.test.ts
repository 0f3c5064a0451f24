/**
 * Goal: issue #8 part 5 from outside. Two data planes behind `dirigent frontend` (HAProxy) with
 * one control plane and emulated workers: invocations through the front end reach functions on
 * both DPs, and after one DP is SIGKILLed every invocation through the front end still succeeds
 * (health checks take it out, retries move requests that could not connect).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { alive, freePort, stopProc, TestCluster, waitFor, type Proc } from './harness.js';

const functions = ['fa', 'fb', 'fc', 'fd', 'fe', 'ff'];

describe('frontend: two data planes behind HAProxy', { timeout: 90_000 }, () => {
  const c = new TestCluster({ workers: 2, runtime: 'emulated' });
  let feInvoke = 0;
  let feApi = 0;
  let dp2: Proc;
  let dp1: Proc;

  before(async () => {
    await c.start();
    dp1 = c.procs.find((p) => p.name === 'data-plane')!;
    const [proxy2, internal2] = await Promise.all([freePort(), freePort()]);
    dp2 = c.spawn('data-plane-2', ['data-plane', '--control-plane', `127.0.0.1:${c.rpcPort}`, '--proxy-port', String(proxy2), '--internal-port', String(internal2), '--cluster-token-file', c.clusterTokenFile]);
    await waitFor(async () => (await c.get(`http://127.0.0.1:${internal2}/health`)).status === 200, 15_000, 'second data plane healthy');
    [feInvoke, feApi] = await Promise.all([freePort(), freePort()]);
    // A single CP has no /health/leader yet on this branch: /health is its leader check.
    c.spawn('frontend', ['frontend', '--state-dir', c.stateDir, '--invocation-port', String(feInvoke), '--api-port', String(feApi),
      '--control-planes', `127.0.0.1:${c.apiPort}`, '--data-planes', `127.0.0.1:${c.proxyPort},127.0.0.1:${proxy2}`,
      '--slots', '4']);
    await waitFor(async () => (await c.get(`http://127.0.0.1:${feApi}/v1/functions`)).status === 200, 15_000, 'front end API');
    for (const name of functions) {
      const r = await c.deploy({ name, image: 'emulated', scaling: { min: 1, initial: 1 } });
      assert.equal(r.status, 201, r.text);
    }
  });

  after(async () => {
    await c.stop();
  });

  const invokeAll = async (): Promise<number[]> => Promise.all(functions.map(async (fn) =>
    (await c.send('GET', `http://127.0.0.1:${feInvoke}/`, undefined, { host: fn })).status));

  it('serves invocations and the API through the front end', async () => {
    await waitFor(async () => (await invokeAll()).every((s) => s === 200), 30_000, 'every function answers through the front end');
    const list = await c.get(`http://127.0.0.1:${feApi}/v1/functions`);
    assert.equal(list.status, 200);
  });

  it('keeps every invocation succeeding after a data plane is SIGKILLed', async () => {
    await stopProc(dp1, 'SIGKILL');
    for (let round = 0; round < 5; round += 1) {
      const statuses = await invokeAll();
      assert.deepEqual(statuses, functions.map(() => 200), `round ${round}: ${statuses.join(',')}\n${c.dumpLogs()}`);
    }
    assert.equal(dp2.proc.exitCode, null);
  });

  it('finds data planes through GET /v1/cluster when none are given', async () => {
    const [inv, api] = await Promise.all([freePort(), freePort()]);
    c.spawn('frontend-discovering', ['frontend', '--state-dir', `${c.stateDir}/fe2`, '--invocation-port', String(inv), '--api-port', String(api),
      '--control-planes', `127.0.0.1:${c.apiPort}`, '--slots', '4', '--discover-period-ms', '200', '--token-file', join(c.stateDir, 'admin.token')]);
    await waitFor(async () => (await c.send('GET', `http://127.0.0.1:${inv}/`, undefined, { host: 'fa' })).status === 200, 15_000, 'an invocation through the discovering front end');
  });

  it('takes its HAProxy along when the front end is SIGKILLed', async () => {
    const haproxyPid = Number(readFileSync(join(c.stateDir, 'frontend', 'haproxy.pid'), 'utf8').trim());
    assert.ok(alive(haproxyPid));
    await stopProc(c.procs.find((p) => p.name === 'frontend')!, 'SIGKILL');
    await waitFor(() => !alive(haproxyPid), 5_000, 'HAProxy to stop with its front end');
  });
});

/**
 * Goal: workers and data planes join only with the cluster token (issue #10 part 2). Method: a
 * real CP; a raw gRPC client without metadata, a worker and a DP with a wrong token, a DP whose
 * token file is missing; then the worker's file is fixed and it joins without a restart.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ControlPlane } from '../gen/dirigent/v1/cluster_pb.js';
import { serviceDefinition } from '../shared/grpc.js';
import { newToken } from '../shared/secrets.js';
import { freePort, sleep, TestCluster, waitFor, type Proc } from './harness.js';

const exited = (p: Proc): Promise<number | null> =>
  p.proc.exitCode !== null ? Promise.resolve(p.proc.exitCode) : new Promise((r) => p.proc.once('exit', r));

describe('cluster token on the gRPC links', { timeout: 90_000 }, () => {
  const c = new TestCluster({ runtime: 'emulated' });
  const logsOf = (p: Proc): string => p.logs.join('');
  before(async () => {
    await c.startControlPlaneAlone();
  });
  after(async () => {
    await c.stop();
  });

  it('refuses a raw stream without metadata: UNAUTHENTICATED naming the cluster token', async () => {
    const Ctor = grpc.makeGenericClientConstructor(serviceDefinition(ControlPlane), 'ControlPlane');
    const client = new Ctor(`127.0.0.1:${c.rpcPort}`, grpc.credentials.createInsecure());
    const def = serviceDefinition(ControlPlane)['workerStream']!;
    try {
      const stream = client.makeBidiStreamRequest(def.path, def.requestSerialize, def.responseDeserialize);
      const err = await new Promise<grpc.ServiceError>((resolve) => {
        stream.on('error', resolve);
        stream.on('data', () => assert.fail('a refused stream must not carry data'));
      });
      assert.equal(err.code, grpc.status.UNAUTHENTICATED);
      assert.match(err.details, /cluster token/);
      await waitFor(() => logsOf(c.procs[0]!).includes('rpc.refused'), 5_000, 'rpc.refused in the CP log');
    } finally {
      client.close();
    }
  });

  it('a worker with a wrong token never registers, and joins once its file is fixed', async () => {
    const tokenFile = join(c.stateDir, 'wrong-worker.token');
    writeFileSync(tokenFile, newToken().token, { mode: 0o600 });
    const w = c.spawn('worker-wrong', ['worker', '--id', 'w-wrong', '--port', String(await freePort()), '--control-plane', `127.0.0.1:${c.rpcPort}`,
      '--runtime', 'emulated', '--state-dir', c.stateDir, '--heartbeat-period-ms', '250', '--cluster-token-file', tokenFile]);
    await waitFor(() => logsOf(w).includes('cp_link.refused'), 10_000, 'cp_link.refused in the worker log');
    assert.match(logsOf(w), /wrong-worker\.token/, 'the refusal names the token file');
    await sleep(1_000);
    const view = (await c.get(`${c.api}/v1/cluster`)).json as { workers: unknown[] };
    assert.equal(view.workers.length, 0, 'no worker registered with a wrong token');
    assert.equal(logsOf(w).split('cp_link.refused').length - 1, 1, 'one error per refusal streak');
    writeFileSync(tokenFile, c.clusterToken);
    await c.waitWorkers(1);
  });

  it('a DP with a wrong token never gets routing', async () => {
    const tokenFile = join(c.stateDir, 'wrong-dp.token');
    writeFileSync(tokenFile, newToken().token, { mode: 0o600 });
    const internal = await freePort();
    const dp = c.spawn('dp-wrong', ['data-plane', '--control-plane', `127.0.0.1:${c.rpcPort}`, '--proxy-port', String(await freePort()),
      '--internal-port', String(internal), '--cluster-token-file', tokenFile]);
    await waitFor(() => logsOf(dp).includes('cp_link.refused'), 10_000, 'cp_link.refused in the DP log');
    await sleep(500);
    const health = await c.get(`http://127.0.0.1:${internal}/health`);
    assert.equal(health.status, 503, health.text);
    assert.deepEqual(health.json, { status: 'control plane unreachable', routingVersion: 0, proxyProcesses: 0 });
    const view = (await c.get(`${c.api}/v1/cluster`)).json as { dataPlanes: unknown[] };
    assert.equal(view.dataPlanes.length, 0);
  });

  it('a DP whose token file is missing exits 2 naming the flag and the path', async () => {
    const missing = join(c.stateDir, 'no-such.token');
    const dp = c.spawn('dp-missing', ['data-plane', '--control-plane', `127.0.0.1:${c.rpcPort}`, '--proxy-port', String(await freePort()),
      '--internal-port', String(await freePort()), '--cluster-token-file', missing]);
    assert.equal(await exited(dp), 2);
    assert.match(logsOf(dp), new RegExp(`--cluster-token-file ${missing.replace(/[.]/g, '\\.')}: no such file`));
  });
});

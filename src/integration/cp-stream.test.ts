/**
 * Goal: a control plane survives whatever a peer sends on its streams (issue 7, crash-loop):
 * a DP reporting concurrencyAvg -1, NaN demand, an event before hello, a report for an unknown
 * function uid. Method: a real CP process; a DP-like gRPC client writes the bad batches; the CP
 * must keep answering its API and log `rpc.invalid_message` naming the field.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import {
  ControlPlane, DataPlaneBatchSchema, WorkerBatchSchema, type FailureKind,
  type DataPlaneBatch, type RoutingBatch, type WorkerBatch, type WorkerCommandBatch,
} from '../gen/dirigent/v1/cluster_pb.js';
import { makeClient, openStream, type BidiStream } from '../shared/grpc.js';
import { sleep, TestCluster, waitFor } from './harness.js';

type DpStream = BidiStream<DataPlaneBatch>;

function openDp(rpcPort: number, token: string, id: string): { stream: DpStream; close(): void } {
  const client = makeClient(`127.0.0.1:${rpcPort}`, null);
  const stream = openStream<DataPlaneBatch, RoutingBatch>(client, ControlPlane, 'dataPlaneStream', token);
  stream.on('error', () => {});
  stream.on('data', () => {});
  const hello = { dataPlaneId: id, proxyAddress: '127.0.0.1:1', internalAddress: '127.0.0.1:2' };
  stream.write(create(DataPlaneBatchSchema, { events: [{ event: { case: 'hello', value: hello } }] }));
  return { stream, close: () => { stream.cancel(); client.close(); } };
}

function demandBatch(fn: string, uid: string, concurrencyAvg: number, first: boolean): DataPlaneBatch {
  const value = { firstDemand: first, functions: [{ function: fn, functionUid: uid, concurrencyAvg, inflight: 0, queued: 0 }] };
  return create(DataPlaneBatchSchema, { events: [{ event: { case: 'demand', value } }] });
}

describe('control plane stream boundary', { timeout: 60_000 }, () => {
  const c = new TestCluster();
  before(async () => {
    await c.startControlPlaneAlone();
  });
  after(async () => {
    await c.stop();
  });

  const allLogs = (): string => c.procs.map((p) => p.logs.join('')).join('');
  const cpAlive = async (): Promise<boolean> => (await c.get(`${c.api}/health`)).status === 200;

  it('stays up when a DP reports concurrencyAvg -1, NaN or garbage, and logs the field', async () => {
    const r = await c.deploy({ name: 'victim', command: ['node', 'x.js'] });
    assert.equal(r.status, 201, r.text);
    const uid = ''; // the API does not show uids; validation must drop the message before any lookup
    const dp = openDp(c.rpcPort, c.clusterToken, 'dp-evil');
    try {
      await sleep(200);
      dp.stream.write(demandBatch('victim', uid, -1, false));
      dp.stream.write(demandBatch('victim', uid, Number.NaN, true));
      dp.stream.write(create(DataPlaneBatchSchema, { events: [{ event: { case: undefined } }] }));
      // Several ticks pass (monitor period 100 ms): a recorded -1 would throw from the ticker.
      await sleep(1_500);
      assert.ok(await cpAlive(), `CP died:\n${c.dumpLogs()}`);
      await waitFor(() => allLogs().includes('rpc.invalid_message'), 5_000, 'rpc.invalid_message logged');
      assert.match(allLogs(), /concurrencyAvg/);
    } finally {
      dp.close();
    }
  });

  it('ignores demand for an unknown function uid and for an event before hello', async () => {
    const client = makeClient(`127.0.0.1:${c.rpcPort}`, null);
    const raw = openStream<DataPlaneBatch, RoutingBatch>(client, ControlPlane, 'dataPlaneStream', c.clusterToken);
    raw.on('error', () => {});
    raw.write(demandBatch('victim', 'nope', 3, true));
    const dp = openDp(c.rpcPort, c.clusterToken, 'dp-stale');
    try {
      dp.stream.write(demandBatch('victim', 'not-the-uid', 5, true));
      await sleep(1_000);
      assert.ok(await cpAlive(), `CP died:\n${c.dumpLogs()}`);
      const s = await c.status('victim');
      assert.equal(s.desired, 0, 'a report for an unknown uid must not scale the function');
    } finally {
      dp.close();
      raw.cancel();
      client.close();
    }
  });

  it('stays up when a worker sends a ready without sandbox, or an unknown failure kind', async () => {
    const client = makeClient(`127.0.0.1:${c.rpcPort}`, null);
    const w = openStream<WorkerBatch, WorkerCommandBatch>(client, ControlPlane, 'workerStream', c.clusterToken);
    w.on('error', () => {});
    w.on('data', () => {});
    try {
      const hello = { workerId: 'w-evil', address: '127.0.0.1:1', capacity: { cpuMillis: 1000, memoryMib: 1000 }, runtimes: ['process'] };
      w.write(create(WorkerBatchSchema, { events: [{ event: { case: 'hello', value: hello } }] }));
      w.write(create(WorkerBatchSchema, { events: [
        { event: { case: 'ready', value: {} } },
        { event: { case: 'failed', value: { sandboxId: 'x', kind: 99 as FailureKind, reason: 'r' } } },
      ] }));
      await sleep(1_000);
      assert.ok(await cpAlive(), `CP died:\n${c.dumpLogs()}`);
      assert.match(allLogs(), /ready\.sandbox/);
      assert.match(allLogs(), /failed\.kind/);
    } finally {
      w.cancel();
      client.close();
    }
  });
});

/**
 * Goal: the CP answers a worker's or DP's stream with its response headers as soon as the stream
 * is accepted, before it has any command to send. A grpc-js client (ours until the lean channel
 * of shared/grpc-link) keeps every message it writes on a stream that has not received headers,
 * for a transparent retry (up to 256 KiB per stream and 16 MiB per channel); a worker that no
 * sandbox has been placed on yet would otherwise keep all its heartbeats in memory. With 10,000 emulated workers on one channel that was 12 % of the
 * worker process's CPU in GC (BENCHMARKS "Scale").
 * Method: a real RpcServer on loopback and a real client stream carrying the cluster token; the
 * client sends its hello and waits for the headers while the server sends nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { once } from 'node:events';
import { create } from '@bufbuild/protobuf';
import { ControlPlane, DataPlaneBatchSchema, WorkerBatchSchema, type DataPlaneBatch, type RoutingBatch, type WorkerBatch, type WorkerCommandBatch } from '../../gen/dirigent/v1/cluster_pb.js';
import { makeClient, openStream } from '../../shared/grpc.js';
import type { GrpcChannel } from '../../shared/grpc-link/channel.js';
import { silentLogger } from '../../shared/logger.js';
import { sha256Hex } from '../../shared/secrets.js';
import type { CpEvent } from '../core/types.js';
import { floodFreshConnection } from '../../shared/ping-flood.testkit.js';
import { RpcServer } from './rpc-server.js';

const clusterToken = 'rpc-server-test-token';

describe('RpcServer streams', () => {
  const events: CpEvent[] = [];
  let rpc: RpcServer;
  let client: GrpcChannel;

  before(async () => {
    rpc = new RpcServer({ handle: (e) => { events.push(e); }, core: { term: 1 }, clusterTokenSha256Hex: sha256Hex(clusterToken) }, silentLogger);
    const port = await rpc.listen('127.0.0.1', 0, null);
    client = makeClient(`127.0.0.1:${port}`, null);
  });

  after(() => {
    client.close();
    rpc.close();
  });

  it('a worker stream gets its headers at once, with no command sent', { timeout: 10_000 }, async () => {
    const stream = openStream<WorkerBatch, WorkerCommandBatch>(client, ControlPlane, 'workerStream', clusterToken);
    stream.on('error', () => undefined);
    const headers = once(stream, 'metadata');
    stream.write(create(WorkerBatchSchema, {
      events: [{ event: { case: 'hello', value: { workerId: 'w-headers', address: '127.0.0.1:1', capacity: { cpuMillis: 1000, memoryMib: 1024 }, runtimes: ['emulated'] } } }],
    }));
    await headers;
    assert.ok(events.some((e) => e.kind === 'worker_connected'), 'the hello reached the core');
    stream.cancel();
  });

  it('a data-plane stream gets its headers at once too', async () => {
    const stream = openStream<DataPlaneBatch, RoutingBatch>(client, ControlPlane, 'dataPlaneStream', clusterToken);
    stream.on('error', () => undefined);
    const headers = once(stream, 'metadata');
    stream.write(create(DataPlaneBatchSchema, {
      events: [{ event: { case: 'hello', value: { dataPlaneId: 'dp-headers', proxyAddress: '127.0.0.1:2', internalAddress: '127.0.0.1:3' } } }],
    }));
    await headers;
    stream.cancel();
  });
});

describe('RpcServer ping budget', () => {
  it('ends a connection past --rpc-ping-burst-max pings (GOAWAY too_many_pings)', { timeout: 10_000 }, async () => {
    const rpc = new RpcServer({ handle: () => undefined, core: { term: 1 }, clusterTokenSha256Hex: sha256Hex(clusterToken), pingLimits: { burstMax: 2, refillMs: 60_000 } }, silentLogger);
    const port = await rpc.listen('127.0.0.1', 0, null);
    try {
      const flood = await floodFreshConnection(`http://127.0.0.1:${port}`);
      assert.equal(flood.goawayData, 'too_many_pings');
      assert.ok(flood.answered >= 2 && flood.answered <= 3, `${flood.answered} pings answered`);
    } finally {
      rpc.close();
    }
  });
});

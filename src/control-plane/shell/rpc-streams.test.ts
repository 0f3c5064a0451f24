/**
 * Goal: the CP's streams behave the same with their sockets and HTTP/2 on the decision loop and
 * on a worker thread (`--rpc-thread thread`, shared/grpc-link/thread-server): events reach the core in the order
 * peers sent them, commands reach their peer with the leader's term, a stream without the
 * cluster token is refused before it is read, an invalid message is logged with its field, a
 * standby redirects to the leader until it leads itself, and closing ends every stream.
 * Method: each implementation on loopback with real client streams; the core is a recorder.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { ControlPlane, WorkerBatchSchema, type WorkerBatch, type WorkerCommandBatch } from '../../gen/dirigent/v1/cluster_pb.js';
import { grpcStatus } from '../../shared/grpc-link/frames.js';
import { makeClient, openStream } from '../../shared/grpc.js';
import { memoryLogger, type RecordedLog } from '../../shared/logger.js';
import { sha256Hex } from '../../shared/secrets.js';
import { encodeWorkerCommand } from '../../wire/codec.js';
import type { CpEvent } from '../core/types.js';
import { RpcServer, rpcOnThread, type RpcHooks } from './rpc-server.js';

const clusterToken = 'rpc-streams-test-token';
const waitMsMax = 5_000;

async function until(what: string, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + waitMsMax;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Rig {
  links: RpcServer;
  events: CpEvent[];
  logs: RecordedLog[];
  hooks: { term: number; leader: string | null };
  port: number;
}

type Make = (hooks: RpcHooks, logs: RecordedLog[]) => RpcServer;
const kinds: [string, Make][] = [
  ['on the loop', (hooks, logs) => new RpcServer(hooks, memoryLogger(logs))],
  ['on a thread', (hooks, logs) => new RpcServer(hooks, memoryLogger(logs), { onThread: true })],
];

async function rig(make: Make, leader: string | null = null): Promise<Rig> {
  const events: CpEvent[] = [];
  const logs: RecordedLog[] = [];
  const state = { term: 7, leader };
  const links = make({
    handle: (e) => { events.push(e); },
    core: { get term() { return state.term; } },
    standbyLeader: () => state.leader,
    clusterTokenSha256Hex: sha256Hex(clusterToken),
  }, logs);
  const port = await links.listen('127.0.0.1', 0, null);
  return { links, events, logs, hooks: state, port };
}

function hello(workerId: string): WorkerBatch {
  return create(WorkerBatchSchema, {
    events: [{ event: { case: 'hello', value: { workerId, address: '127.0.0.1:1', capacity: { cpuMillis: 1000, memoryMib: 1024 }, runtimes: ['emulated'] } } }],
  });
}

function heartbeat(): WorkerBatch {
  return create(WorkerBatchSchema, { events: [{ event: { case: 'heartbeat', value: { capacity: { cpuMillis: 1000, memoryMib: 1024 }, allocated: { cpuMillis: 0, memoryMib: 0 }, sandboxCount: 0 } } }] });
}

for (const [name, make] of kinds) {
  describe(`CP streams ${name}`, () => {
    it('events reach the core in order; a command reaches its worker with the term', { timeout: 20_000 }, async () => {
      const r = await rig(make);
      const client = makeClient(`127.0.0.1:${r.port}`, null);
      try {
        const stream = openStream<WorkerBatch, WorkerCommandBatch>(client, ControlPlane, 'workerStream', clusterToken);
        stream.on('error', () => undefined);
        const got: WorkerCommandBatch[] = [];
        stream.on('data', (b: WorkerCommandBatch) => got.push(b));
        stream.write(hello('w-order'));
        for (let i = 0; i < 20; i += 1) stream.write(heartbeat());
        await until('21 events', () => r.events.length >= 21);
        assert.equal(r.events[0]!.kind, 'worker_connected');
        assert.ok(r.events.slice(1).every((e) => e.kind === 'worker_heartbeat' && e.workerId === 'w-order'), JSON.stringify(r.events.slice(0, 3)));
        r.links.sendWorker('w-order', encodeWorkerCommand({ case: 'delete', value: { sandboxId: 's-1' } }));
        r.links.sendWorker('w-order', encodeWorkerCommand({ case: 'delete', value: { sandboxId: 's-2' } }));
        r.links.sendWorker('w-nobody', encodeWorkerCommand({ case: 'delete', value: { sandboxId: 's-x' } }));
        await until('the commands', () => got.flatMap((b) => b.commands).length >= 2);
        const ids = got.flatMap((b) => b.commands).map((c) => (c.command.case === 'delete' ? c.command.value.sandboxId : '?'));
        assert.deepEqual(ids, ['s-1', 's-2']);
        assert.ok(got.every((b) => b.term === 7), 'every batch carries the leader\'s term');
        stream.cancel();
        await until('the disconnect', () => r.events.some((e) => e.kind === 'worker_disconnected' && e.workerId === 'w-order'));
      } finally {
        client.close();
        await r.links.close();
      }
    });

    it('refuses a stream without the cluster token; logs an event before hello, naming the field', { timeout: 20_000 }, async () => {
      const r = await rig(make);
      const client = makeClient(`127.0.0.1:${r.port}`, null);
      try {
        const refused = openStream<WorkerBatch, WorkerCommandBatch>(client, ControlPlane, 'workerStream', 'wrong-token');
        const [err] = (await once(refused, 'error')) as [{ code: number }];
        assert.equal(err.code, grpcStatus.UNAUTHENTICATED);
        const early = openStream<WorkerBatch, WorkerCommandBatch>(client, ControlPlane, 'workerStream', clusterToken);
        early.on('error', () => undefined);
        early.write(heartbeat());
        await until('the invalid message logged', () => r.logs.some((l) => l.event === 'rpc.invalid_message'));
        const invalid = r.logs.find((l) => l.event === 'rpc.invalid_message')!;
        assert.equal(invalid.fields['field'], 'event');
        assert.ok(r.logs.some((l) => l.event === 'rpc.refused' && l.fields['reason'] === 'wrong cluster token'));
        assert.equal(r.events.length, 0, 'nothing reached the core');
        early.cancel();
      } finally {
        client.close();
        await r.links.close();
      }
    });

    it('a standby redirects to the leader; once it leads, it serves', { timeout: 20_000 }, async () => {
      const r = await rig(make, '10.0.0.9:9090');
      const client = makeClient(`127.0.0.1:${r.port}`, null);
      try {
        const first = openStream<WorkerBatch, WorkerCommandBatch>(client, ControlPlane, 'workerStream', clusterToken);
        first.on('error', () => undefined);
        const [batch] = (await once(first, 'data')) as [WorkerCommandBatch];
        assert.equal(batch.leaderAddress, '10.0.0.9:9090');
        r.hooks.leader = null; // this CP took over
        const served = openStream<WorkerBatch, WorkerCommandBatch>(client, ControlPlane, 'workerStream', clusterToken);
        served.on('error', () => undefined);
        served.write(hello('w-after'));
        await until('the hello after the takeover', () => r.events.some((e) => e.kind === 'worker_connected'));
        assert.ok(r.events.some((e) => e.kind === 'worker_connected'), 'a stream opened after the takeover reached the core');
      } finally {
        client.close();
        await r.links.close();
      }
    });

    it('close ends every open stream', { timeout: 20_000 }, async () => {
      const r = await rig(make);
      const client = makeClient(`127.0.0.1:${r.port}`, null);
      try {
        const stream = openStream<WorkerBatch, WorkerCommandBatch>(client, ControlPlane, 'workerStream', clusterToken);
        const ended = new Promise((resolve) => { stream.on('error', resolve); stream.on('end', resolve); });
        stream.write(hello('w-close'));
        await until('the hello', () => r.events.length > 0);
        await r.links.close();
        await ended;
      } finally {
        client.close();
      }
    });

    it('a port already taken fails listen with its code', { timeout: 20_000 }, async () => {
      const taken = createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      const events: CpEvent[] = [];
      const links = make({ handle: (e) => { events.push(e); }, core: { term: 1 }, clusterTokenSha256Hex: sha256Hex(clusterToken) }, []);
      try {
        const port = (taken.address() as { port: number }).port;
        // The fields the CLI's one-line bind error reads, on the thread as on the loop.
        await assert.rejects(links.listen('127.0.0.1', port, null), { code: 'EADDRINUSE', syscall: 'listen', address: '127.0.0.1', port });
      } finally {
        await links.close();
        taken.close();
      }
    });
  });
}

describe('CP streams on a thread, behind a slow loop', () => {
  it('stops reading past its pending bound and reads on once the loop caught up; nothing is lost', { timeout: 20_000 }, async () => {
    const events: CpEvent[] = [];
    const logs: RecordedLog[] = [];
    let blockedOnce = false;
    const links = new RpcServer({
      handle: (e) => {
        if (!blockedOnce) {
          blockedOnce = true; // the loop is busy elsewhere for a while: the thread reads on meanwhile
          const until = Date.now() + 300;
          while (Date.now() < until);
        }
        events.push(e);
      },
      core: { term: 1 },
      clusterTokenSha256Hex: sha256Hex(clusterToken),
    }, memoryLogger(logs), { onThread: true, messagesPendingMax: 10 });
    const port = await links.listen('127.0.0.1', 0, null);
    const client = makeClient(`127.0.0.1:${port}`, null);
    try {
      const stream = openStream<WorkerBatch, WorkerCommandBatch>(client, ControlPlane, 'workerStream', clusterToken);
      stream.on('error', () => undefined);
      stream.write(hello('w-slow'));
      await until('the hello', () => events.length === 1);
      blockedOnce = false;
      for (let i = 0; i < 2_000; i += 1) stream.write(heartbeat());
      await until('2,001 events', () => events.length === 2_001);
      assert.ok(events.slice(1).every((e) => e.kind === 'worker_heartbeat'));
      assert.ok(logs.some((l) => l.event === 'rpc.reading_paused'), 'the thread paused');
      await until('reading resumed', () => logs.some((l) => l.event === 'rpc.reading_resumed'));
      stream.cancel();
    } finally {
      client.close();
      await links.close();
    }
  });
});

describe('rpcThread', () => {
  it('auto serves streams on a thread from 4 cores up; thread and loop are as said', () => {
    assert.equal(rpcOnThread('auto', 2), false);
    assert.equal(rpcOnThread('auto', 4), true);
    assert.equal(rpcOnThread('thread', 1), true);
    assert.equal(rpcOnThread('loop', 64), false);
  });
});

/**
 * @module worker/daemon.test
 * The daemon shell against a real gRPC server on loopback that plays the CP, with an in-memory
 * runtime: commands arrive, events come back decoded; an invalid command is logged and dropped
 * without ending the daemon; a crash while the stream is down reaches the next stream after the
 * hello. Waits are on conditions (with a bound), never on wall-clock durations.
 */
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { create } from '@bufbuild/protobuf';
import { describe, it } from 'node:test';
import type { FunctionSpecMsg, WorkerEventMsg } from '../api/cluster.js';
import {
  ControlPlane,
  WorkerCommandBatchSchema,
  type WorkerBatch,
  type WorkerCommandBatch,
} from '../gen/dirigent/v1/cluster_pb.js';
import { systemClock } from '../shared/clock.js';
import { bindServer, serviceDefinition } from '../shared/grpc.js';
import { memoryLogger, type RecordedLog } from '../shared/logger.js';
import { decodeWorkerEvent, encodeWorkerCommand } from '../wire/codec.js';
import { WorkerDaemon } from './daemon.js';
import type { CreateResult, ExitListener, SandboxRuntime, SandboxSpec } from './runtime/runtime.js';

type Call = grpc.ServerDuplexStream<WorkerBatch, WorkerCommandBatch>;

/** Conditions are met within milliseconds; the bound only keeps a broken test from hanging. */
const waitBoundMs = 10_000;

async function until<T>(what: string, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + waitBoundMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

class MemoryRuntime implements SandboxRuntime {
  readonly name = 'emulated' as const;
  private readonly listeners: ExitListener[] = [];
  readonly live = new Set<string>();
  async create(spec: SandboxSpec): Promise<CreateResult> {
    this.live.add(spec.sandboxId);
    const sandbox = { sandboxId: spec.sandboxId, function: spec.fn.name, address: `127.0.0.1:1`, createdAtMs: 1 };
    return { ok: true, sandbox, startMs: 0, readinessMs: 0, totalMs: 0 };
  }
  async delete(sandboxId: string): Promise<void> {
    this.live.delete(sandboxId);
  }
  list() {
    return [];
  }
  onExit(listener: ExitListener): void {
    this.listeners.push(listener);
  }
  crash(sandboxId: string): void {
    this.live.delete(sandboxId);
    for (const l of this.listeners) l(sandboxId, 'killed by test');
  }
  async close(): Promise<void> {}
}

/** A CP that records every stream and the decoded events on it. */
async function fakeCp() {
  const streams: { call: Call; events: WorkerEventMsg[] }[] = [];
  const server = new grpc.Server();
  server.addService(serviceDefinition(ControlPlane), {
    workerStream: (call: Call) => {
      const s = { call, events: [] as WorkerEventMsg[] };
      streams.push(s);
      call.on('data', (b: WorkerBatch) => {
        for (const ev of b.events) {
          const d = decodeWorkerEvent(ev);
          assert.ok(d.ok, 'the daemon sends valid events');
          s.events.push(d.msg);
        }
      });
      call.on('error', () => {});
    },
    dataPlaneStream: (call: grpc.ServerDuplexStream<unknown, unknown>) => call.end(),
  });
  const port = await bindServer('127.0.0.1', 0, server);
  return { streams, port, close: () => server.forceShutdown() };
}

const spec: FunctionSpecMsg = {
  name: 'f', uid: 'u1', generation: 2, image: '', command: ['x'], port: 8080, env: {}, egress: false, auth: 'none',
  resources: { cpuMillis: 100, memoryMib: 64 }, concurrency: 1, timeoutMs: 1_000, workingDir: '',
};

describe('worker daemon', () => {
  it('serves commands, drops an invalid one with a log line, replays a crash after a reconnect, and fences stale terms', { timeout: 30_000 }, async () => {
    const cp = await fakeCp();
    const logs: RecordedLog[] = [];
    const runtime = new MemoryRuntime();
    const daemon = new WorkerDaemon(
      {
        id: 'w-test', address: '127.0.0.1:0', controlPlane: `127.0.0.1:${cp.port}`,
        capacity: { cpuMillis: 1000, memoryMiB: 1024 }, capabilities: ['process'],
        heartbeatPeriodMs: 60_000, backoffMs: [200, 1_000], replayEventsMax: 100,
        security: { clusterToken: () => 'dgt_000000000000_test', clusterTokenFile: '(test)', caPem: null },
      },
      runtime, systemClock, memoryLogger(logs),
    );
    try {
      daemon.start();
      const first = await until('first stream hello', () => cp.streams[0]?.events[0]);
      assert.equal(first.case, 'hello');
      const send = (cmds: ReturnType<typeof encodeWorkerCommand>[]): void => {
        cp.streams[0]!.call.write(create(WorkerCommandBatchSchema, { term: 5, commands: cmds }));
      };
      send([
        encodeWorkerCommand({ case: 'create', value: { sandboxId: '', function: spec } }),
        encodeWorkerCommand({ case: 'create', value: { sandboxId: 's1', function: spec } }),
      ]);
      const ready = await until('ready', () => cp.streams[0]!.events.find((e) => e.case === 'ready'));
      assert.ok(ready.case === 'ready' && ready.value.sandbox?.functionUid === 'u1');
      assert.ok(logs.some((l) => l.event === 'worker.invalid_command' && l.fields.field === 'create.sandboxId'));

      cp.streams[0]!.call.end(); // the CP goes away: the daemon sees the stream end
      await until('disconnect noticed', () => logs.some((l) => l.event === 'control_plane.disconnected'));
      runtime.crash('s1');
      const replay = await until('second stream replay', () => (cp.streams[1]?.events.length ?? 0) >= 2 ? cp.streams[1]!.events : undefined);
      assert.equal(replay[0]!.case, 'hello');
      assert.ok(replay[0]!.case === 'hello' && replay[0]!.value.sandboxes.length === 0);
      assert.ok(replay[1]!.case === 'failed' && replay[1]!.value.kind === 'crash' && replay[1]!.value.sandboxId === 's1');

      // Fencing across the reconnect: the term 5 of the first stream is remembered, so an old
      // leader's batch (term 4) is ignored whole and a newer leader's (term 6) is served.
      const createOf = (sandboxId: string) => encodeWorkerCommand({ case: 'create', value: { sandboxId, function: spec } });
      cp.streams[1]!.call.write(create(WorkerCommandBatchSchema, { term: 4, commands: [createOf('s2')] }));
      cp.streams[1]!.call.write(create(WorkerCommandBatchSchema, { term: 6, commands: [createOf('s3')] }));
      await until('ready s3', () => cp.streams[1]!.events.find((e) => e.case === 'ready' && e.value.sandbox?.sandboxId === 's3'));
      assert.equal(runtime.live.has('s2'), false, 'the stale create never reached the runtime');
      assert.deepEqual(logs.find((l) => l.event === 'worker.stale_term')?.fields, { workerId: 'w-test', term: 4, seen: 5 });
    } finally {
      await daemon.close();
      cp.close();
    }
  });

  it('starts its heartbeat ticks at its own phase, so daemons started together do not heartbeat together', { timeout: 30_000 }, async () => {
    // Period 3 s. A starts first with phase 0: its first tick comes before its stream is up, so
    // its first heartbeat is one period later (3 s). B starts second with phase 2 s: it is
    // connected by its first tick and heartbeats then (2 s). With one phase for all (the old
    // timer started at start()), A would always heartbeat first.
    const cp = await fakeCp();
    const periodMs = 3_000;
    const make = (id: string, heartbeatPhaseMs: number): WorkerDaemon => new WorkerDaemon(
      {
        id, address: '127.0.0.1:0', controlPlane: `127.0.0.1:${cp.port}`,
        capacity: { cpuMillis: 1000, memoryMiB: 1024 }, capabilities: ['process'],
        heartbeatPeriodMs: periodMs, heartbeatPhaseMs, backoffMs: [200, 1_000], replayEventsMax: 100,
        security: { clusterToken: () => 'dgt_000000000000_test', clusterTokenFile: '(test)', caPem: null },
      },
      new MemoryRuntime(), systemClock, memoryLogger([]),
    );
    const a = make('w-a', 0);
    const b = make('w-b', 2_000);
    const order: string[] = [];
    try {
      a.start();
      b.start();
      await until('both hellos', () => cp.streams.length === 2 && cp.streams.every((s) => s.events.length > 0));
      const idOf = (s: (typeof cp.streams)[number]): string => {
        const hello = s.events[0]!;
        assert.ok(hello.case === 'hello');
        return hello.value.workerId;
      };
      await until('a heartbeat from each', () => {
        for (const s of cp.streams) {
          const id = idOf(s);
          if (!order.includes(id) && s.events.some((e) => e.case === 'heartbeat')) order.push(id);
        }
        return order.length === 2;
      });
      assert.deepEqual(order, ['w-b', 'w-a'], 'the daemon with the later phase heartbeats first');
    } finally {
      await a.close();
      await b.close();
      cp.close();
    }
  });
});

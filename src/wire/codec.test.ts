/**
 * Goal: the codec is the only door from another process into a core, so (1) a valid plain
 * message survives encode -> bytes -> decode unchanged, and the simulator, which hands the
 * encoded object to the decoder without bytes, gets the same message; (2) whatever a peer sends,
 * decoding never throws: it yields a message or an error that names the field. Method: fast-check
 * over plain messages and over arbitrary (hostile) field values; bytes are those the shells
 * write (the compiled codec), read back by protobuf-es.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { create, fromBinary, type DescMessage } from '@bufbuild/protobuf';
import { fastCodec } from './fast-codec.js';
import type { DataPlaneEventMsg, FunctionSpecMsg, RoutingUpdateMsg, WorkerEventMsg } from '../api/cluster.js';
import {
  DataPlaneBatchSchema,
  DataPlaneEventSchema,
  RoutingBatchSchema,
  RoutingUpdateSchema,
  WorkerCommandBatchSchema,
  WorkerCommandSchema,
  WorkerEventSchema,
  type DataPlaneBatch,
  type RoutingBatch,
  type WorkerCommandBatch,
} from '../gen/dirigent/v1/cluster_pb.js';
import {
  decodeBatchHeader,
  decodeDataPlaneEvent,
  decodeRoutingUpdate,
  decodeWorkerCommand,
  decodeWorkerEvent,
  encodeDataPlaneBatch,
  encodeDataPlaneEvent,
  encodeRoutingBatch,
  encodeRoutingUpdate,
  encodeWorkerCommand,
  encodeWorkerCommandBatch,
  encodeWorkerEvent,
} from './codec.js';

const id = fc.string({ minLength: 1, maxLength: 40 });
const u32 = fc.nat({ max: 2 ** 32 - 1 });
const ms = fc.double({ min: 0, max: 1e12, noNaN: true });
const resources = fc.record({ cpuMillis: u32, memoryMib: u32 });

const spec: fc.Arbitrary<FunctionSpecMsg> = fc.record({
  name: id, uid: id, generation: fc.nat(), image: fc.string(), command: fc.array(fc.string(), { maxLength: 4 }),
  port: fc.nat({ max: 65_535 }), env: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }), egress: fc.boolean(), auth: fc.constantFrom('none', 'token', ''),
  resources, concurrency: u32, timeoutMs: u32, workingDir: fc.string(),
  asyncSettings: fc.record({ retryOn4xx: fc.boolean(), attemptsMax: fc.nat({ max: 100 }), eventAgeMsMax: fc.nat({ max: 21_600_000 }) }),
}, { requiredKeys: ['name', 'uid', 'generation', 'image', 'command', 'port', 'env', 'egress', 'auth', 'resources', 'concurrency', 'timeoutMs', 'workingDir'] });
const sandboxInfo = fc.record({
  sandboxId: id, function: id, functionUid: id, functionGeneration: fc.nat(), address: fc.string(), resources, createdAtMs: ms,
});
const endpoint = fc.record({ sandboxId: id, function: id, functionUid: id, address: fc.string(), workerId: id });

const workerEvent: fc.Arbitrary<WorkerEventMsg> = fc.oneof(
  fc.record({ case: fc.constant('hello' as const), value: fc.record({ workerId: id, address: fc.string(), capacity: resources, runtimes: fc.array(fc.string(), { maxLength: 3 }), sandboxes: fc.array(sandboxInfo, { maxLength: 3 }) }) }),
  fc.record({ case: fc.constant('heartbeat' as const), value: fc.record({ capacity: resources, allocated: resources, sandboxCount: u32 }) }),
  fc.record({ case: fc.constant('ready' as const), value: fc.record({ sandbox: sandboxInfo, breakdown: fc.record({ totalMs: ms, startMs: ms, readinessMs: ms }) }) }),
  fc.record({ case: fc.constant('failed' as const), value: fc.record({ sandboxId: id, function: fc.string(), kind: fc.constantFrom('create' as const, 'crash' as const), reason: fc.string() }) }),
  fc.record({ case: fc.constant('deleted' as const), value: fc.record({ sandboxId: id }) }),
);

const demandCount = fc.nat({ max: 100_000_000 });
const demand = fc.record({
  function: id, functionUid: id, concurrencyAvg: fc.double({ min: 0, max: 1e6, noNaN: true }), inflight: demandCount, queued: demandCount,
  // protobuf-es, which reads the bytes here as a peer would, drops a map key "__proto__"; our
  // decoder keeps it (fast-codec.test.ts).
  sandboxInflight: fc.dictionary(id.filter((k) => k !== '__proto__'), demandCount, { maxKeys: 3 }),
});
const dpEvent: fc.Arbitrary<DataPlaneEventMsg> = fc.oneof(
  fc.record({ case: fc.constant('hello' as const), value: fc.record({ dataPlaneId: id, proxyAddress: fc.string(), internalAddress: fc.string() }) }),
  fc.record({ case: fc.constant('demand' as const), value: fc.record({ functions: fc.array(demand, { maxLength: 3 }), firstDemand: fc.boolean() }) }),
  fc.record({ case: fc.constant('drained' as const), value: fc.record({ sandboxIds: fc.array(id, { maxLength: 3 }) }) }),
  fc.record({ case: fc.constant('resync' as const), value: fc.record({ haveVersion: fc.nat() }) }),
  fc.record({ case: fc.constant('ack' as const), value: fc.record({ version: fc.nat() }) }),
);
const invokeToken = fc.record({ id, sha256Hex: fc.stringMatching(/^[0-9a-f]{64}$/), scope: fc.constantFrom('admin', 'deploy', 'invoke'), namespace: id });
const peer = fc.record({ dataPlaneId: id, proxyAddress: id });
const routing: fc.Arbitrary<RoutingUpdateMsg> = fc.oneof(
  fc.record({ case: fc.constant('snapshot' as const), value: fc.record({ version: fc.nat(), functions: fc.array(spec, { maxLength: 3 }), endpoints: fc.array(endpoint, { maxLength: 3 }), drainEndpoints: fc.array(id, { maxLength: 3 }), tokens: fc.array(invokeToken, { maxLength: 2 }), peers: fc.array(peer, { maxLength: 2 }) }) }),
  fc.record({
    case: fc.constant('delta' as const),
    value: fc.record({
      version: fc.nat(), upsertFunctions: fc.array(spec, { maxLength: 2 }), deleteFunctions: fc.array(fc.record({ name: id, uid: id }), { maxLength: 2 }),
      addEndpoints: fc.array(endpoint, { maxLength: 2 }), removeEndpoints: fc.array(id, { maxLength: 2 }), drainEndpoints: fc.array(id, { maxLength: 2 }),
      failures: fc.array(fc.record({ function: id, functionUid: id, code: fc.constantFrom('sandbox_failure' as const, 'unschedulable' as const, 'quota_exceeded' as const), reason: fc.string() }), { maxLength: 2 }),
      upsertTokens: fc.array(invokeToken, { maxLength: 2 }), revokeTokens: fc.array(id, { maxLength: 2 }),
      upsertPeers: fc.array(peer, { maxLength: 2 }), removePeers: fc.array(id, { maxLength: 2 }),
    }),
  }),
);

/** Drops protobuf-es bookkeeping so a decoded message compares with the plain one. */
function plain(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (k, x) => (k === '$typeName' ? undefined : x)));
}

/** What a peer reads: the shells' bytes (the compiled codec), decoded by protobuf-es. */
function wire<T>(desc: DescMessage, m: unknown): T {
  return fromBinary(desc, fastCodec(desc).encode(m)) as T;
}

describe('wire codec round trip', () => {
  test('worker events', () => {
    fc.assert(fc.property(workerEvent, (msg) => {
      const d = decodeWorkerEvent(wire(WorkerEventSchema, encodeWorkerEvent(msg)));
      assert.ok(d.ok, JSON.stringify(d));
      assert.deepEqual(plain(d.msg), plain(msg));
      assert.deepEqual(plain(decodeWorkerEvent(encodeWorkerEvent(msg))), plain(d), 'the simulator\'s path (no bytes)');
    }));
  });

  test('data-plane events', () => {
    fc.assert(fc.property(dpEvent, (msg) => {
      const d = decodeDataPlaneEvent(wire(DataPlaneEventSchema, encodeDataPlaneEvent(msg)));
      assert.ok(d.ok, JSON.stringify(d));
      assert.deepEqual(plain(d.msg), plain(msg));
      assert.deepEqual(plain(decodeDataPlaneEvent(encodeDataPlaneEvent(msg))), plain(d), 'the simulator\'s path (no bytes)');
      const batch = wire<DataPlaneBatch>(DataPlaneBatchSchema, encodeDataPlaneBatch([msg, msg]));
      assert.deepEqual(batch.events.map((e) => plain(decodeDataPlaneEvent(e))), [plain(d), plain(d)]);
    }));
  });

  test('routing updates', () => {
    fc.assert(fc.property(routing, (msg) => {
      const d = decodeRoutingUpdate(wire(RoutingUpdateSchema, encodeRoutingUpdate(msg)));
      assert.ok(d.ok, JSON.stringify(d));
      assert.deepEqual(plain(d.msg), plain(msg));
      assert.deepEqual(plain(decodeRoutingUpdate(encodeRoutingUpdate(msg))), plain(d), 'the simulator\'s path (no bytes)');
    }));
  });

  test('worker commands', () => {
    fc.assert(fc.property(id, spec, fc.boolean(), (sandboxId, fn, isCreate) => {
      const msg = isCreate ? { case: 'create' as const, value: { sandboxId, function: fn } } : { case: 'delete' as const, value: { sandboxId } };
      const d = decodeWorkerCommand(wire(WorkerCommandSchema, encodeWorkerCommand(msg)));
      assert.ok(d.ok, JSON.stringify(d));
      assert.deepEqual(plain(d.msg), plain(msg));
      assert.deepEqual(plain(decodeWorkerCommand(encodeWorkerCommand(msg))), plain(d), 'the simulator\'s path (no bytes)');
    }));
  });

  test('the term and leader address of command and routing batches', () => {
    const header = fc.record({ term: fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)), leaderAddress: fc.string({ maxLength: 60 }) });
    fc.assert(fc.property(header, routing, id, (h, update, sandboxId) => {
      const cmd = encodeWorkerCommand({ case: 'delete', value: { sandboxId } });
      const wb = wire<WorkerCommandBatch>(WorkerCommandBatchSchema, encodeWorkerCommandBatch(h, [cmd]));
      const rb = wire<RoutingBatch>(RoutingBatchSchema, encodeRoutingBatch(h, [encodeRoutingUpdate(update)]));
      for (const b of [wb, rb]) assert.deepEqual(decodeBatchHeader(b), { ok: true, msg: { term: h.term, leaderAddress: h.leaderAddress } });
      assert.equal(wb.commands.length, 1);
      assert.deepEqual(plain(decodeRoutingUpdate(rb.updates[0]!)), plain({ ok: true, msg: update }));
    }));
  });
});

describe('wire codec against hostile input', () => {
  test('a batch term that is negative, NaN or infinite is refused with the field named', () => {
    for (const term of [-1, Number.NaN, Infinity, -Infinity]) {
      const d = decodeBatchHeader(create(WorkerCommandBatchSchema, { term }));
      assert.deepEqual(d.ok ? null : d.field, 'batch.term');
    }
    const long = decodeBatchHeader(create(RoutingBatchSchema, { term: 1, leaderAddress: 'x'.repeat(600) }));
    assert.deepEqual(long.ok ? null : long.field, 'batch.leaderAddress');
  });

  const anyNumber = fc.oneof(fc.double(), fc.integer(), fc.constant(-1), fc.constant(Number.NaN), fc.constant(Infinity));
  const longString = fc.string({ minLength: 0, maxLength: 3000 });

  test('a demand report with negative, NaN or infinite numbers is refused with the field named', () => {
    fc.assert(fc.property(anyNumber, anyNumber, anyNumber, (avg, inflight, queued) => {
      // Messages built in memory, as a decoded peer message could be: numbers of any value.
      const ev = create(DataPlaneEventSchema, {
        event: { case: 'demand', value: { functions: [{ function: 'f', functionUid: 'u', concurrencyAvg: avg, inflight, queued }] } },
      });
      const d = decodeDataPlaneEvent(ev);
      const valid = [avg, inflight, queued].every((n) => Number.isFinite(n) && n >= 0 && n <= 1e8);
      assert.equal(d.ok, valid);
      if (!d.ok) assert.match(d.field, /^demand\.functions\[0\]\./);
    }));
  });

  test('arbitrary bytes that protobuf accepts never make a decoder throw', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      for (const [schema, decode] of [
        [WorkerEventSchema, decodeWorkerEvent],
        [DataPlaneEventSchema, decodeDataPlaneEvent],
        [RoutingUpdateSchema, decodeRoutingUpdate],
        [WorkerCommandSchema, decodeWorkerCommand],
      ] as const) {
        let msg;
        try {
          msg = fromBinary(schema as typeof WorkerEventSchema, bytes);
        } catch {
          continue; // the gRPC deserializer refuses it: the stream errors, the shell reconnects
        }
        const d = (decode as (m: unknown) => { ok: boolean; field?: string })(msg);
        if (!d.ok) assert.ok(d.field && d.field.length > 0);
      }
    }), { numRuns: 2000 });
  });

  test("a function's async settings past the attempts bound or with a negative age are refused with the field named", () => {
    const update = (asyncSettings: { retryOn4xx: boolean; attemptsMax: number; eventAgeMsMax: number }) => create(RoutingUpdateSchema, {
      update: { case: 'snapshot', value: { version: 1, functions: [{ name: 'f', uid: 'u', auth: 'none', asyncSettings }] } },
    });
    const d1 = decodeRoutingUpdate(update({ retryOn4xx: true, attemptsMax: 101, eventAgeMsMax: 0 }));
    assert.deepEqual(d1.ok ? null : d1.field, 'snapshot.functions[0].asyncSettings.attemptsMax');
    const d2 = decodeRoutingUpdate(update({ retryOn4xx: true, attemptsMax: 3, eventAgeMsMax: -1 }));
    assert.deepEqual(d2.ok ? null : d2.field, 'snapshot.functions[0].asyncSettings.eventAgeMsMax');
    assert.ok(decodeRoutingUpdate(update({ retryOn4xx: true, attemptsMax: 100, eventAgeMsMax: 60_000 })).ok);
  });

  test('over-long identifiers are refused, not passed on', () => {
    fc.assert(fc.property(longString, (s) => {
      const ev = create(WorkerEventSchema, { event: { case: 'deleted', value: { sandboxId: s } } });
      const d = decodeWorkerEvent(ev);
      assert.equal(d.ok, s.length > 0 && s.length <= 256);
    }));
  });
});

describe('wire codec: the field a refusal names', () => {
  // Goal: the path a refusal names is exact at every nesting (list index, nested message, map
  // key), so a peer's bad message can be found from the log line. Method: one valid message per
  // decoder, one field broken at a time.
  const longId = 'x'.repeat(257);
  const goodSpec = { name: 'f', uid: 'u', auth: 'none', resources: { cpuMillis: 1, memoryMib: 1 }, asyncSettings: { retryOn4xx: false, attemptsMax: 3, eventAgeMsMax: 1 } };
  const goodSandbox = { sandboxId: 's', function: 'f', functionUid: 'u', functionGeneration: 1, address: 'a', resources: { cpuMillis: 1, memoryMib: 1 }, createdAtMs: 1 };
  const goodEndpoint = { sandboxId: 's', function: 'f', functionUid: 'u', address: 'a', workerId: 'w' };
  const field = (d: { ok: boolean; field?: string }): string | null => (d.ok ? null : d.field ?? '');
  const routing = (value: object, kind: 'delta' | 'snapshot' = 'delta') => field(decodeRoutingUpdate(create(RoutingUpdateSchema, { update: { case: kind, value: { version: 1, ...value } } } as never)));
  const worker = (event: object) => field(decodeWorkerEvent(create(WorkerEventSchema, { event } as never)));
  const dp = (event: object) => field(decodeDataPlaneEvent(create(DataPlaneEventSchema, { event } as never)));

  test('routing updates: functions, endpoints, ids, tokens, peers, failures', () => {
    assert.equal(routing({ upsertFunctions: [goodSpec, { ...goodSpec, name: '' }] }), 'delta.upsertFunctions[1].name');
    assert.equal(routing({ upsertFunctions: [{ ...goodSpec, port: 70_000 }] }), 'delta.upsertFunctions[0].port');
    assert.equal(routing({ upsertFunctions: [{ ...goodSpec, resources: { cpuMillis: -1, memoryMib: 1 } }] }), 'delta.upsertFunctions[0].resources.cpuMillis');
    assert.equal(routing({ upsertFunctions: [{ ...goodSpec, auth: 'magic' }] }), 'delta.upsertFunctions[0].auth');
    assert.equal(routing({ upsertFunctions: [{ ...goodSpec, asyncSettings: { retryOn4xx: false, attemptsMax: 1, eventAgeMsMax: -1 } }] }), 'delta.upsertFunctions[0].asyncSettings.eventAgeMsMax');
    assert.equal(routing({ deleteFunctions: [{ name: 'f' }, { name: '' }] }), 'delta.deleteFunctions[1].name');
    assert.equal(routing({ addEndpoints: [goodEndpoint, goodEndpoint, { ...goodEndpoint, workerId: longId }] }), 'delta.addEndpoints[2].workerId');
    assert.equal(routing({ addEndpoints: [{ ...goodEndpoint, sandboxId: '' }] }), 'delta.addEndpoints[0].sandboxId');
    assert.equal(routing({ removeEndpoints: ['a', ''] }), 'delta.removeEndpoints[1]');
    assert.equal(routing({ drainEndpoints: [longId] }), 'delta.drainEndpoints[0]');
    assert.equal(routing({ upsertTokens: [{ id: 't', sha256Hex: 'nothex', scope: 'invoke', namespace: '' }] }), 'delta.upsertTokens[0].sha256Hex');
    assert.equal(routing({ upsertTokens: [{ id: 't', sha256Hex: 'a'.repeat(64), scope: 'root', namespace: '' }] }), 'delta.upsertTokens[0].scope');
    assert.equal(routing({ revokeTokens: ['t', ''] }), 'delta.revokeTokens[1]');
    assert.equal(routing({ upsertPeers: [{ dataPlaneId: 'd', proxyAddress: '' }] }), 'delta.upsertPeers[0].proxyAddress');
    assert.equal(routing({ removePeers: [''] }), 'delta.removePeers[0]');
    assert.equal(routing({ failures: [{ function: 'f', functionUid: 'u', code: 'nope', reason: '' }] }), 'delta.failures[0].code');
    assert.equal(routing({ failures: [{ function: 'f', functionUid: 'u', code: 'unschedulable', reason: 'r'.repeat(9000) }] }), 'delta.failures[0].reason');
    assert.equal(routing({ functions: [goodSpec, { ...goodSpec, uid: longId }] }, 'snapshot'), 'snapshot.functions[1].uid');
    assert.equal(routing({ endpoints: [{ ...goodEndpoint, address: 'a'.repeat(600) }] }, 'snapshot'), 'snapshot.endpoints[0].address');
    assert.equal(routing({ drainEndpoints: [''] }, 'snapshot'), 'snapshot.drainEndpoints[0]');
    assert.equal(routing({ tokens: [{ id: '', sha256Hex: 'a'.repeat(64), scope: 'invoke', namespace: '' }] }, 'snapshot'), 'snapshot.tokens[0].id');
    assert.equal(routing({ peers: [{ dataPlaneId: '', proxyAddress: 'p' }] }, 'snapshot'), 'snapshot.peers[0].dataPlaneId');
    assert.equal(routing({ upsertFunctions: [goodSpec], addEndpoints: [goodEndpoint], failures: [{ function: 'f', functionUid: 'u', code: '', reason: '' }] }), null);
  });

  test('worker events and commands: sandboxes and their resources, the create spec', () => {
    assert.equal(worker({ case: 'hello', value: { workerId: 'w', sandboxes: [goodSandbox, { ...goodSandbox, createdAtMs: -1 }] } }), 'hello.sandboxes[1].createdAtMs');
    assert.equal(worker({ case: 'hello', value: { workerId: 'w', sandboxes: [{ ...goodSandbox, resources: { cpuMillis: 1, memoryMib: Number.NaN } }] } }), 'hello.sandboxes[0].resources.memoryMib');
    assert.equal(worker({ case: 'hello', value: { workerId: 'w', capacity: { cpuMillis: -2, memoryMib: 1 } } }), 'hello.capacity.cpuMillis');
    assert.equal(worker({ case: 'ready', value: { sandbox: { ...goodSandbox, functionGeneration: -1 } } }), 'ready.sandbox.functionGeneration');
    assert.equal(worker({ case: 'ready', value: { sandbox: { ...goodSandbox, function: '' } } }), 'ready.sandbox.function');
    assert.equal(worker({ case: 'ready', value: { sandbox: goodSandbox, breakdown: { totalMs: 1, startMs: -1, readinessMs: 0 } } }), 'ready.breakdown.startMs');
    assert.equal(worker({ case: 'heartbeat', value: { capacity: { cpuMillis: 1, memoryMib: 1 }, allocated: { cpuMillis: Infinity, memoryMib: 1 } } }), 'heartbeat.allocated.cpuMillis');
    assert.equal(worker({ case: 'ready', value: { sandbox: goodSandbox } }), null);
    const cmd = (spec: object) => field(decodeWorkerCommand(create(WorkerCommandSchema, { command: { case: 'create', value: { sandboxId: 's', function: spec } } } as never)));
    assert.equal(cmd({ ...goodSpec, generation: -1 }), 'create.function.generation');
    assert.equal(cmd({ ...goodSpec, resources: { cpuMillis: 1, memoryMib: -1 } }), 'create.function.resources.memoryMib');
    assert.equal(cmd({ ...goodSpec, asyncSettings: { retryOn4xx: false, attemptsMax: 101, eventAgeMsMax: 1 } }), 'create.function.asyncSettings.attemptsMax');
    assert.equal(cmd(goodSpec), null);
  });

  test('data plane events: demand entries and their per-sandbox counts, drained ids', () => {
    const good = { function: 'f', functionUid: 'u', concurrencyAvg: 1, inflight: 1, queued: 0, sandboxInflight: { s1: 1 } };
    assert.equal(dp({ case: 'demand', value: { functions: [good, { ...good, queued: -1 }] } }), 'demand.functions[1].queued');
    assert.equal(dp({ case: 'demand', value: { functions: [{ ...good, functionUid: longId }] } }), 'demand.functions[0].functionUid');
    assert.equal(dp({ case: 'demand', value: { functions: [{ ...good, sandboxInflight: { s1: 1, s2: -1 } }] } }), 'demand.functions[0].sandboxInflight[s2]');
    assert.equal(dp({ case: 'demand', value: { functions: [good, { ...good, sandboxInflight: { [longId]: 1 } }] } }), 'demand.functions[1].sandboxInflight');
    assert.equal(dp({ case: 'drained', value: { sandboxIds: ['a', 'b', ''] } }), 'drained.sandboxIds[2]');
    assert.equal(dp({ case: 'demand', value: { functions: [good] } }), null);
  });
});

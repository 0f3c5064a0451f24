#!/usr/bin/env node
// The stream codec's cost per message of one cold start: a demand report (DP -> CP), a create
// with its function spec (CP -> worker), a sandbox-ready event (worker -> CP), a routing delta
// with one endpoint (CP -> DP) and its ack (DP -> CP). Each is encoded framed and decoded,
// alone in its batch as at a low rate. Prints, per message, the median over rounds of
// nanoseconds per encode and per decode.
//
//   node scripts/codec-bench.mjs [build root, default .] [rounds, default 7]
//
// Run it pinned (taskset -c 1) and alternate builds: the machine is shared.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = resolve(process.argv[2] ?? '.');
const rounds = Number(process.argv[3] ?? 7);
const perRound = 200_000;
const load = (p) => import(pathToFileURL(resolve(root, 'dist', p)).href);
const { fastCodec } = await load('wire/fast-codec.js');
const pb = await load('gen/dirigent/v1/cluster_pb.js');

const uid = 'c0ffee00-1234-4abc-8def-0123456789ab';
const spec = {
  $typeName: 'dirigent.v1.FunctionSpec', name: 'sweep-000123', image: 'emulated://sleep', command: [], port: 8080,
  env: {}, resources: { $typeName: 'dirigent.v1.Resources', cpuMillis: 1, memoryMib: 1 }, concurrency: 1,
  timeoutMs: 60_000, workingDir: '', generation: 1, uid, egress: false, auth: 'none',
};
const messages = [
  ['demand (DP -> CP)', pb.DataPlaneBatchSchema, {
    $typeName: 'dirigent.v1.DataPlaneBatch',
    events: [{ $typeName: 'dirigent.v1.DataPlaneEvent', event: { case: 'demand', value: {
      $typeName: 'dirigent.v1.DemandReport', firstDemand: true,
      functions: [{ $typeName: 'dirigent.v1.FunctionDemand', function: 'sweep-000123', concurrencyAvg: 1, inflight: 0, queued: 1, sandboxInflight: {}, functionUid: uid }],
    } } }],
  }],
  ['create (CP -> worker)', pb.WorkerCommandBatchSchema, {
    $typeName: 'dirigent.v1.WorkerCommandBatch', term: 1, leaderAddress: '',
    commands: [{ $typeName: 'dirigent.v1.WorkerCommand', command: { case: 'create', value: { $typeName: 'dirigent.v1.CreateSandbox', sandboxId: 'sb-w3-000456', function: spec } } }],
  }],
  ['ready (worker -> CP)', pb.WorkerBatchSchema, {
    $typeName: 'dirigent.v1.WorkerBatch',
    events: [{ $typeName: 'dirigent.v1.WorkerEvent', event: { case: 'ready', value: {
      $typeName: 'dirigent.v1.SandboxReady',
      sandbox: { $typeName: 'dirigent.v1.SandboxInfo', sandboxId: 'sb-w3-000456', function: 'sweep-000123', address: '127.0.0.1:18510', createdAtMs: 1_765_000_000_123, functionGeneration: 1, functionUid: uid },
      breakdown: { $typeName: 'dirigent.v1.CreationBreakdown', totalMs: 40.2, startMs: 40.1, readinessMs: 0.1 },
    } } }],
  }],
  ['routing delta (CP -> DP)', pb.RoutingBatchSchema, {
    $typeName: 'dirigent.v1.RoutingBatch', term: 1, leaderAddress: '',
    updates: [{ $typeName: 'dirigent.v1.RoutingUpdate', update: { case: 'delta', value: {
      $typeName: 'dirigent.v1.RoutingDelta', version: 123_456, upsertFunctions: [], deleteFunctions: [], removeEndpoints: [],
      drainEndpoints: [], failures: [], upsertTokens: [], revokeTokens: [], upsertPeers: [], removePeers: [],
      addEndpoints: [{ $typeName: 'dirigent.v1.Endpoint', sandboxId: 'sb-w3-000456', function: 'sweep-000123', address: '127.0.0.1:18510', workerId: 'w3', functionUid: uid }],
    } } }],
  }],
  ['ack (DP -> CP)', pb.DataPlaneBatchSchema, {
    $typeName: 'dirigent.v1.DataPlaneBatch',
    events: [{ $typeName: 'dirigent.v1.DataPlaneEvent', event: { case: 'ack', value: { $typeName: 'dirigent.v1.RoutingAck', version: 123_456 } } }],
  }],
];

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

let sink = 0;
const results = [];
for (const [name, desc, msg] of messages) {
  const codec = fastCodec(desc);
  const bytes = codec.encode(msg);
  const enc = [];
  const dec = [];
  for (let r = 0; r < rounds; r += 1) {
    let t = process.hrtime.bigint();
    for (let i = 0; i < perRound; i += 1) sink += codec.encodeFramed(msg).length;
    enc.push(Number(process.hrtime.bigint() - t) / perRound);
    t = process.hrtime.bigint();
    for (let i = 0; i < perRound; i += 1) sink += codec.decode(bytes) === null ? 1 : 0;
    dec.push(Number(process.hrtime.bigint() - t) / perRound);
  }
  results.push({ message: name, bytes: bytes.length, encodeNs: Math.round(median(enc)), decodeNs: Math.round(median(dec)) });
}
for (const r of results) console.log(`${r.message.padEnd(26)} ${String(r.bytes).padStart(4)} B  encode ${String(r.encodeNs).padStart(5)} ns  decode ${String(r.decodeNs).padStart(5)} ns`);
const total = results.reduce((a, r) => a + r.encodeNs + r.decodeNs, 0);
console.log(`one of each, encoded and decoded: ${(total / 1000).toFixed(2)} us${sink < 0 ? '' : ''}`);

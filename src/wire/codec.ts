/**
 * @module wire/codec
 * The boundary between the generated protobuf messages of the internal streams and the plain
 * messages of `api/cluster.ts` that the cores use. Decoding validates: whatever another process
 * sent is checked here (lengths, counts, finite non-negative numbers) and a bad message becomes
 * a typed error naming the field, never an exception deeper in a core. Encoding wraps a plain
 * message in its stream type as a plain object (see `streamMessage`). Every shell (CP stream
 * server, DP link, worker daemon) and the simulator use these same functions, so the simulator
 * crosses the same boundary the real shells do.
 */
import type {
  BatchHeaderMsg,
  DataPlaneEventMsg,
  FunctionDemandMsg,
  FunctionFailureCode,
  FunctionSpecMsg,
  InvokeTokenMsg,
  ResourcesMsg,
  RoutingDeltaMsg,
  RoutingUpdateMsg,
  SandboxInfoMsg,
  WorkerCommandMsg,
  WorkerEventMsg,
} from '../api/cluster.js';
import {
  DataPlaneBatchSchema,
  DataPlaneEventSchema,
  FailureKind,
  RoutingBatchSchema,
  RoutingUpdateSchema,
  WorkerCommandBatchSchema,
  WorkerCommandSchema,
  WorkerBatchSchema,
  WorkerEventSchema,
  type DataPlaneBatch,
  type DataPlaneEvent,
  type FunctionSpec,
  type RoutingBatch,
  type RoutingUpdate,
  type SandboxInfo,
  type WorkerCommand,
  type WorkerBatch,
  type WorkerCommandBatch,
  type WorkerEvent,
} from '../gen/dirigent/v1/cluster_pb.js';

/**
 * A stream message as the compiled codec (`fast-codec`) takes it: a plain object with the type's
 * name and the given fields, not protobuf-es's `create()`, which walks the descriptor to fill in
 * every default and copy every nested message (0.8 us per message in a microbenchmark; 5 % of
 * the CP's busy time in the cold-start window of a 2,000/s profile). The codec reads fields by name and takes an absent field
 * for its default (fast-codec.test: a plain init object encodes to the bytes of `create()` of
 * it). The plain messages of `api/cluster.ts` have every field of their stream type, so the
 * simulator, which hands these objects to the decoders without bytes, sees what bytes would give.
 */
function streamMessage<T>(typeName: string, fields: object): T {
  return Object.assign({ $typeName: typeName }, fields) as T;
}

/** Limits on what a peer may send; a message past one is refused with the field named. */
export const wireLimits = Object.freeze({
  idLengthMax: 256,
  addressLengthMax: 512,
  reasonLengthMax: 8_192,
  /** Sandboxes a worker may report at once (hello). */
  sandboxesPerHelloMax: 1_000_000,
  /** Requests a DP may report in flight or queued for one function. */
  demandCountMax: 100_000_000,
  /** A function's async attempts (each attempt is kept on the invocation's record). */
  asyncAttemptsMax: 100,
});

export type Decoded<T> = { ok: true; msg: T } | { ok: false; field: string; reason: string };

class WireError extends Error {
  constructor(readonly field: string, reason: string) {
    super(reason);
  }
}

function fail(field: string, reason: string): never {
  throw new WireError(field, reason);
}

/*
 * Checks run on every message of the hot streams (a demand report, a sandbox's ready event, a
 * routing delta per cold start), so the path a refusal names is built only when a check fails:
 * `base`, a list index (`i`, or -1 for none) and a field under it. Built eagerly (a template per
 * field, a closure per list), the names were 5-7 % of what each component allocated at 4,000
 * cold starts/s (BENCHMARKS.md, "Fewer bytes per cold start").
 */

/** `base[i].sub`; `base.sub` when i < 0; `base[i]` when sub is ''. */
function at(base: string, i: number, sub: string): string {
  const head = i < 0 ? base : `${base}[${i}]`;
  return sub === '' ? head : `${head}.${sub}`;
}

function strOk(v: unknown, lengthMax: number, allowEmpty: boolean): v is string {
  return typeof v === 'string' && v.length <= lengthMax && (allowEmpty || v.length > 0);
}

function countOk(v: unknown, max: number): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= max;
}

function str(v: unknown, field: string, lengthMax: number, allowEmpty = true): string {
  if (typeof v !== 'string') fail(field, 'must be a string');
  if (v.length > lengthMax) fail(field, `longer than ${lengthMax}`);
  if (!allowEmpty && v.length === 0) fail(field, 'must not be empty');
  return v;
}

function count(v: unknown, field: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!countOk(v, max)) fail(field, `must be a finite number in [0, ${max}]`);
  return v;
}

/** `str` for the field `sub` of `base[i]`. */
function strAt(v: unknown, base: string, i: number, sub: string, lengthMax: number, allowEmpty = true): string {
  return strOk(v, lengthMax, allowEmpty) ? v : str(v, at(base, i, sub), lengthMax, allowEmpty);
}

/** `count` for the field `sub` of `base[i]`. */
function countAt(v: unknown, base: string, i: number, sub: string, max = Number.MAX_SAFE_INTEGER): number {
  return countOk(v, max) ? v : count(v, at(base, i, sub), max);
}

/** Every entry of a list of ids, named `base[i]`. */
function idList(ids: readonly unknown[], base: string, lengthMax: number): void {
  for (let i = 0; i < ids.length; i += 1) if (!strOk(ids[i], lengthMax, false)) str(ids[i], at(base, i, ''), lengthMax, false);
}

/** The resources `name` (`resources`, `capacity`, `allocated`) of `base[i]`. */
function resources(r: ResourcesMsg | undefined, base: string, i: number, name: string): void {
  if (!r) return;
  if (!countOk(r.cpuMillis, Number.MAX_SAFE_INTEGER)) count(r.cpuMillis, at(base, i, `${name}.cpuMillis`));
  if (!countOk(r.memoryMib, Number.MAX_SAFE_INTEGER)) count(r.memoryMib, at(base, i, `${name}.memoryMib`));
}

/** Runs one decoder body (a plain function of the message: no closure per message). */
function guard<A, T>(decode: (arg: A) => T, arg: A): Decoded<T> {
  try {
    return { ok: true, msg: decode(arg) };
  } catch (err) {
    if (err instanceof WireError) return { ok: false, field: err.field, reason: err.message };
    throw err;
  }
}

// ---------------------------------------------------------------- worker -> CP

export function decodeWorkerEvent(ev: WorkerEvent): Decoded<WorkerEventMsg> {
  return guard(workerEvent, ev);
}

function workerEvent(ev: WorkerEvent): WorkerEventMsg {
  const e = ev.event;
  switch (e.case) {
    case 'hello': {
      const h = e.value;
      str(h.workerId, 'hello.workerId', wireLimits.idLengthMax, false);
      str(h.address, 'hello.address', wireLimits.addressLengthMax);
      resources(h.capacity, 'hello', -1, 'capacity');
      if (h.sandboxes.length > wireLimits.sandboxesPerHelloMax) fail('hello.sandboxes', `more than ${wireLimits.sandboxesPerHelloMax}`);
      for (let i = 0; i < h.sandboxes.length; i += 1) sandboxInfo(h.sandboxes[i]!, 'hello.sandboxes', i);
      return { case: 'hello', value: h };
    }
    case 'heartbeat':
      resources(e.value.capacity, 'heartbeat', -1, 'capacity');
      resources(e.value.allocated, 'heartbeat', -1, 'allocated');
      count(e.value.sandboxCount, 'heartbeat.sandboxCount');
      return { case: 'heartbeat', value: e.value };
    case 'ready': {
      if (!e.value.sandbox) fail('ready.sandbox', 'missing');
      sandboxInfo(e.value.sandbox, 'ready.sandbox', -1);
      const b = e.value.breakdown;
      if (b) {
        count(b.totalMs, 'ready.breakdown.totalMs');
        count(b.startMs, 'ready.breakdown.startMs');
        count(b.readinessMs, 'ready.breakdown.readinessMs');
      }
      return { case: 'ready', value: e.value };
    }
    case 'failed': {
      const f = e.value;
      str(f.sandboxId, 'failed.sandboxId', wireLimits.idLengthMax, false);
      str(f.function, 'failed.function', wireLimits.idLengthMax);
      str(f.reason, 'failed.reason', wireLimits.reasonLengthMax);
      const kind = f.kind === FailureKind.CRASH ? 'crash' : f.kind === FailureKind.CREATE ? 'create' : fail('failed.kind', `unknown kind ${f.kind}`);
      return { case: 'failed', value: { sandboxId: f.sandboxId, function: f.function, kind, reason: f.reason } };
    }
    case 'deleted':
      str(e.value.sandboxId, 'deleted.sandboxId', wireLimits.idLengthMax, false);
      return { case: 'deleted', value: e.value };
    default:
      return fail('event', 'empty or unknown event');
  }
}

function sandboxInfo(s: SandboxInfo | SandboxInfoMsg, base: string, i: number): void {
  strAt(s.sandboxId, base, i, 'sandboxId', wireLimits.idLengthMax, false);
  strAt(s.function, base, i, 'function', wireLimits.idLengthMax, false);
  strAt(s.functionUid, base, i, 'functionUid', wireLimits.idLengthMax);
  countAt(s.functionGeneration, base, i, 'functionGeneration');
  strAt(s.address, base, i, 'address', wireLimits.addressLengthMax);
  resources(s.resources, base, i, 'resources');
  countAt(s.createdAtMs, base, i, 'createdAtMs');
}

/** One batch of a worker's events, as its stream carries them. */
export function encodeWorkerBatch(events: WorkerEvent[]): WorkerBatch {
  return streamMessage(WorkerBatchSchema.typeName, { events });
}

export function encodeWorkerEvent(msg: WorkerEventMsg): WorkerEvent {
  if (msg.case === 'failed') {
    const kind = msg.value.kind === 'crash' ? FailureKind.CRASH : FailureKind.CREATE;
    return streamMessage(WorkerEventSchema.typeName, { event: { case: 'failed', value: { ...msg.value, kind } } });
  }
  return streamMessage(WorkerEventSchema.typeName, { event: msg });
}

// ---------------------------------------------------------------- CP -> peer batches

/** The term and leader address of a command or routing batch (the messages decode one by one). */
export function decodeBatchHeader(b: WorkerCommandBatch | RoutingBatch): Decoded<BatchHeaderMsg> {
  return guard(batchHeader, b);
}

function batchHeader(b: WorkerCommandBatch | RoutingBatch): BatchHeaderMsg {
  return {
    term: count(b.term, 'batch.term'),
    leaderAddress: str(b.leaderAddress, 'batch.leaderAddress', wireLimits.addressLengthMax),
  };
}

export function encodeWorkerCommandBatch(header: BatchHeaderMsg, commands: WorkerCommand[]): WorkerCommandBatch {
  return streamMessage(WorkerCommandBatchSchema.typeName, { term: header.term, leaderAddress: header.leaderAddress, commands });
}

export function encodeRoutingBatch(header: BatchHeaderMsg, updates: RoutingUpdate[]): RoutingBatch {
  return streamMessage(RoutingBatchSchema.typeName, { term: header.term, leaderAddress: header.leaderAddress, updates });
}

// ---------------------------------------------------------------- CP -> worker

export function encodeWorkerCommand(msg: WorkerCommandMsg): WorkerCommand {
  return streamMessage(WorkerCommandSchema.typeName, { command: msg });
}

export function decodeWorkerCommand(c: WorkerCommand): Decoded<WorkerCommandMsg> {
  return guard(workerCommand, c);
}

function workerCommand(c: WorkerCommand): WorkerCommandMsg {
  const cmd = c.command;
  if (cmd.case === 'create') {
    str(cmd.value.sandboxId, 'create.sandboxId', wireLimits.idLengthMax, false);
    if (!cmd.value.function) fail('create.function', 'missing');
    functionSpec(cmd.value.function, 'create.function', -1);
    return { case: 'create', value: { sandboxId: cmd.value.sandboxId, function: cmd.value.function } };
  }
  if (cmd.case === 'delete') {
    str(cmd.value.sandboxId, 'delete.sandboxId', wireLimits.idLengthMax, false);
    return { case: 'delete', value: cmd.value };
  }
  return fail('command', 'empty or unknown command');
}

function functionSpec(f: FunctionSpec | FunctionSpecMsg, base: string, i: number): void {
  strAt(f.name, base, i, 'name', wireLimits.idLengthMax, false);
  strAt(f.uid, base, i, 'uid', wireLimits.idLengthMax);
  countAt(f.generation, base, i, 'generation');
  countAt(f.port, base, i, 'port', 65_535);
  countAt(f.concurrency, base, i, 'concurrency');
  countAt(f.timeoutMs, base, i, 'timeoutMs');
  resources(f.resources, base, i, 'resources');
  if (f.auth !== '' && f.auth !== 'none' && f.auth !== 'token') fail(at(base, i, 'auth'), `unknown auth ${JSON.stringify(f.auth.slice(0, 32))}`);
  if (f.asyncSettings) {
    countAt(f.asyncSettings.attemptsMax, base, i, 'asyncSettings.attemptsMax', wireLimits.asyncAttemptsMax);
    countAt(f.asyncSettings.eventAgeMsMax, base, i, 'asyncSettings.eventAgeMsMax');
  }
}

const invokeScopes: ReadonlySet<string> = new Set(['admin', 'deploy', 'invoke']);
const sha256HexPattern = /^[0-9a-f]{64}$/;

function invokeToken(t: InvokeTokenMsg, base: string, i: number): void {
  strAt(t.id, base, i, 'id', wireLimits.idLengthMax, false);
  if (!sha256HexPattern.test(t.sha256Hex)) fail(at(base, i, 'sha256Hex'), 'must be 64 hex digits');
  if (!invokeScopes.has(t.scope)) fail(at(base, i, 'scope'), `unknown scope ${JSON.stringify(t.scope.slice(0, 32))}`);
  strAt(t.namespace, base, i, 'namespace', wireLimits.idLengthMax);
}

function dataPlanePeer(p: { dataPlaneId: string; proxyAddress: string }, base: string, i: number): void {
  strAt(p.dataPlaneId, base, i, 'dataPlaneId', wireLimits.idLengthMax, false);
  strAt(p.proxyAddress, base, i, 'proxyAddress', wireLimits.addressLengthMax, false);
}

// ---------------------------------------------------------------- DP -> CP

export function decodeDataPlaneEvent(ev: DataPlaneEvent): Decoded<DataPlaneEventMsg> {
  return guard(dataPlaneEvent, ev);
}

function dataPlaneEvent(ev: DataPlaneEvent): DataPlaneEventMsg {
  const e = ev.event;
  switch (e.case) {
    case 'hello':
      str(e.value.dataPlaneId, 'hello.dataPlaneId', wireLimits.idLengthMax, false);
      str(e.value.proxyAddress, 'hello.proxyAddress', wireLimits.addressLengthMax);
      str(e.value.internalAddress, 'hello.internalAddress', wireLimits.addressLengthMax);
      return { case: 'hello', value: e.value };
    case 'demand': {
      const functions = e.value.functions;
      for (let i = 0; i < functions.length; i += 1) demand(functions[i]!, 'demand.functions', i);
      return { case: 'demand', value: e.value };
    }
    case 'drained':
      idList(e.value.sandboxIds, 'drained.sandboxIds', wireLimits.idLengthMax);
      return { case: 'drained', value: e.value };
    case 'resync':
      count(e.value.haveVersion, 'resync.haveVersion');
      return { case: 'resync', value: e.value };
    case 'ack':
      count(e.value.version, 'ack.version');
      return { case: 'ack', value: e.value };
    default:
      return fail('event', 'empty or unknown event');
  }
}

function demand(d: FunctionDemandMsg, base: string, i: number): void {
  strAt(d.function, base, i, 'function', wireLimits.idLengthMax, false);
  strAt(d.functionUid, base, i, 'functionUid', wireLimits.idLengthMax);
  countAt(d.concurrencyAvg, base, i, 'concurrencyAvg', wireLimits.demandCountMax);
  countAt(d.inflight, base, i, 'inflight', wireLimits.demandCountMax);
  countAt(d.queued, base, i, 'queued', wireLimits.demandCountMax);
  const perSandbox = d.sandboxInflight;
  for (const id in perSandbox) {
    if (!strOk(id, wireLimits.idLengthMax, false)) str(id, at(base, i, 'sandboxInflight'), wireLimits.idLengthMax, false);
    const n = perSandbox[id];
    if (!countOk(n, wireLimits.demandCountMax)) count(n, at(base, i, `sandboxInflight[${id}]`), wireLimits.demandCountMax);
  }
}

/** One batch of a DP's events, as its stream carries them. */
export function encodeDataPlaneBatch(events: DataPlaneEventMsg[]): DataPlaneBatch {
  return streamMessage(DataPlaneBatchSchema.typeName, { events: events.map(encodeDataPlaneEvent) });
}

export function encodeDataPlaneEvent(msg: DataPlaneEventMsg): DataPlaneEvent {
  return streamMessage(DataPlaneEventSchema.typeName, { event: msg });
}

// ---------------------------------------------------------------- CP -> DP

export function encodeRoutingUpdate(msg: RoutingUpdateMsg): RoutingUpdate {
  return streamMessage(RoutingUpdateSchema.typeName, { update: msg });
}

const failureCodes: readonly FunctionFailureCode[] = ['sandbox_failure', 'unschedulable', 'quota_exceeded'];

export function decodeRoutingUpdate(u: RoutingUpdate): Decoded<RoutingUpdateMsg> {
  return guard(routingUpdate, u);
}

function routingUpdate(u: RoutingUpdate): RoutingUpdateMsg {
  const up = u.update;
  if (up.case === 'snapshot') {
    const s = up.value;
    count(s.version, 'snapshot.version');
    for (let i = 0; i < s.functions.length; i += 1) functionSpec(s.functions[i]!, 'snapshot.functions', i);
    for (let i = 0; i < s.endpoints.length; i += 1) endpoint(s.endpoints[i]!, 'snapshot.endpoints', i);
    idList(s.drainEndpoints, 'snapshot.drainEndpoints', wireLimits.idLengthMax);
    for (let i = 0; i < s.tokens.length; i += 1) invokeToken(s.tokens[i]!, 'snapshot.tokens', i);
    for (let i = 0; i < s.peers.length; i += 1) dataPlanePeer(s.peers[i]!, 'snapshot.peers', i);
    return { case: 'snapshot', value: s };
  }
  if (up.case === 'delta') {
    const d = up.value;
    count(d.version, 'delta.version');
    for (let i = 0; i < d.upsertFunctions.length; i += 1) functionSpec(d.upsertFunctions[i]!, 'delta.upsertFunctions', i);
    for (let i = 0; i < d.deleteFunctions.length; i += 1) strAt(d.deleteFunctions[i]!.name, 'delta.deleteFunctions', i, 'name', wireLimits.idLengthMax, false);
    for (let i = 0; i < d.addEndpoints.length; i += 1) endpoint(d.addEndpoints[i]!, 'delta.addEndpoints', i);
    idList(d.removeEndpoints, 'delta.removeEndpoints', wireLimits.idLengthMax);
    idList(d.drainEndpoints, 'delta.drainEndpoints', wireLimits.idLengthMax);
    for (let i = 0; i < d.upsertTokens.length; i += 1) invokeToken(d.upsertTokens[i]!, 'delta.upsertTokens', i);
    idList(d.revokeTokens, 'delta.revokeTokens', wireLimits.idLengthMax);
    for (let i = 0; i < d.upsertPeers.length; i += 1) dataPlanePeer(d.upsertPeers[i]!, 'delta.upsertPeers', i);
    idList(d.removePeers, 'delta.removePeers', wireLimits.idLengthMax);
    // Most deltas carry no failure: they pass as they are, not copied.
    if (d.failures.length === 0) return { case: 'delta', value: d as unknown as RoutingDeltaMsg };
    const failures = d.failures.map((f, i) => {
      const code = (f.code || 'sandbox_failure') as FunctionFailureCode;
      if (!failureCodes.includes(code)) fail(`delta.failures[${i}].code`, `unknown code ${f.code}`);
      return { function: f.function, functionUid: f.functionUid, code, reason: str(f.reason, `delta.failures[${i}].reason`, wireLimits.reasonLengthMax) };
    });
    return { case: 'delta', value: { ...d, failures } };
  }
  return fail('update', 'empty or unknown update');
}

function endpoint(ep: { sandboxId: string; function: string; functionUid: string; address: string; workerId: string }, base: string, i: number): void {
  strAt(ep.sandboxId, base, i, 'sandboxId', wireLimits.idLengthMax, false);
  strAt(ep.function, base, i, 'function', wireLimits.idLengthMax, false);
  strAt(ep.functionUid, base, i, 'functionUid', wireLimits.idLengthMax);
  strAt(ep.address, base, i, 'address', wireLimits.addressLengthMax);
  strAt(ep.workerId, base, i, 'workerId', wireLimits.idLengthMax);
}

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

function str(v: unknown, field: string, lengthMax: number, allowEmpty = true): string {
  if (typeof v !== 'string') fail(field, 'must be a string');
  if (v.length > lengthMax) fail(field, `longer than ${lengthMax}`);
  if (!allowEmpty && v.length === 0) fail(field, 'must not be empty');
  return v;
}

function count(v: unknown, field: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max) fail(field, `must be a finite number in [0, ${max}]`);
  return v;
}

function resources(r: ResourcesMsg | undefined, field: string): void {
  if (!r) return;
  count(r.cpuMillis, `${field}.cpuMillis`);
  count(r.memoryMib, `${field}.memoryMib`);
}

function guard<T>(decode: () => T): Decoded<T> {
  try {
    return { ok: true, msg: decode() };
  } catch (err) {
    if (err instanceof WireError) return { ok: false, field: err.field, reason: err.message };
    throw err;
  }
}

// ---------------------------------------------------------------- worker -> CP

export function decodeWorkerEvent(ev: WorkerEvent): Decoded<WorkerEventMsg> {
  return guard(() => {
    const e = ev.event;
    switch (e.case) {
      case 'hello': {
        const h = e.value;
        str(h.workerId, 'hello.workerId', wireLimits.idLengthMax, false);
        str(h.address, 'hello.address', wireLimits.addressLengthMax);
        resources(h.capacity, 'hello.capacity');
        if (h.sandboxes.length > wireLimits.sandboxesPerHelloMax) fail('hello.sandboxes', `more than ${wireLimits.sandboxesPerHelloMax}`);
        h.sandboxes.forEach((s, i) => sandboxInfo(s, `hello.sandboxes[${i}]`));
        return { case: 'hello', value: h };
      }
      case 'heartbeat':
        resources(e.value.capacity, 'heartbeat.capacity');
        resources(e.value.allocated, 'heartbeat.allocated');
        count(e.value.sandboxCount, 'heartbeat.sandboxCount');
        return { case: 'heartbeat', value: e.value };
      case 'ready': {
        if (!e.value.sandbox) fail('ready.sandbox', 'missing');
        sandboxInfo(e.value.sandbox, 'ready.sandbox');
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
  });
}

function sandboxInfo(s: SandboxInfo | SandboxInfoMsg, field: string): void {
  str(s.sandboxId, `${field}.sandboxId`, wireLimits.idLengthMax, false);
  str(s.function, `${field}.function`, wireLimits.idLengthMax, false);
  str(s.functionUid, `${field}.functionUid`, wireLimits.idLengthMax);
  count(s.functionGeneration, `${field}.functionGeneration`);
  str(s.address, `${field}.address`, wireLimits.addressLengthMax);
  resources(s.resources, `${field}.resources`);
  count(s.createdAtMs, `${field}.createdAtMs`);
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
  return guard(() => ({
    term: count(b.term, 'batch.term'),
    leaderAddress: str(b.leaderAddress, 'batch.leaderAddress', wireLimits.addressLengthMax),
  }));
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
  return guard(() => {
    const cmd = c.command;
    if (cmd.case === 'create') {
      str(cmd.value.sandboxId, 'create.sandboxId', wireLimits.idLengthMax, false);
      if (!cmd.value.function) fail('create.function', 'missing');
      functionSpec(cmd.value.function, 'create.function');
      return { case: 'create', value: { sandboxId: cmd.value.sandboxId, function: cmd.value.function } };
    }
    if (cmd.case === 'delete') {
      str(cmd.value.sandboxId, 'delete.sandboxId', wireLimits.idLengthMax, false);
      return { case: 'delete', value: cmd.value };
    }
    return fail('command', 'empty or unknown command');
  });
}

function functionSpec(f: FunctionSpec | FunctionSpecMsg, field: string): void {
  str(f.name, `${field}.name`, wireLimits.idLengthMax, false);
  str(f.uid, `${field}.uid`, wireLimits.idLengthMax);
  count(f.generation, `${field}.generation`);
  count(f.port, `${field}.port`, 65_535);
  count(f.concurrency, `${field}.concurrency`);
  count(f.timeoutMs, `${field}.timeoutMs`);
  resources(f.resources, `${field}.resources`);
  if (f.auth !== '' && f.auth !== 'none' && f.auth !== 'token') fail(`${field}.auth`, `unknown auth ${JSON.stringify(f.auth.slice(0, 32))}`);
  if (f.asyncSettings) {
    count(f.asyncSettings.attemptsMax, `${field}.asyncSettings.attemptsMax`, wireLimits.asyncAttemptsMax);
    count(f.asyncSettings.eventAgeMsMax, `${field}.asyncSettings.eventAgeMsMax`);
  }
}

const invokeScopes: ReadonlySet<string> = new Set(['admin', 'deploy', 'invoke']);

function invokeToken(t: InvokeTokenMsg, field: string): void {
  str(t.id, `${field}.id`, wireLimits.idLengthMax, false);
  if (!/^[0-9a-f]{64}$/.test(t.sha256Hex)) fail(`${field}.sha256Hex`, 'must be 64 hex digits');
  if (!invokeScopes.has(t.scope)) fail(`${field}.scope`, `unknown scope ${JSON.stringify(t.scope.slice(0, 32))}`);
  str(t.namespace, `${field}.namespace`, wireLimits.idLengthMax);
}

function dataPlanePeer(p: { dataPlaneId: string; proxyAddress: string }, field: string): void {
  str(p.dataPlaneId, `${field}.dataPlaneId`, wireLimits.idLengthMax, false);
  str(p.proxyAddress, `${field}.proxyAddress`, wireLimits.addressLengthMax, false);
}

// ---------------------------------------------------------------- DP -> CP

export function decodeDataPlaneEvent(ev: DataPlaneEvent): Decoded<DataPlaneEventMsg> {
  return guard(() => {
    const e = ev.event;
    switch (e.case) {
      case 'hello':
        str(e.value.dataPlaneId, 'hello.dataPlaneId', wireLimits.idLengthMax, false);
        str(e.value.proxyAddress, 'hello.proxyAddress', wireLimits.addressLengthMax);
        str(e.value.internalAddress, 'hello.internalAddress', wireLimits.addressLengthMax);
        return { case: 'hello', value: e.value };
      case 'demand':
        e.value.functions.forEach((d, i) => demand(d, `demand.functions[${i}]`));
        return { case: 'demand', value: e.value };
      case 'drained':
        e.value.sandboxIds.forEach((id, i) => str(id, `drained.sandboxIds[${i}]`, wireLimits.idLengthMax, false));
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
  });
}

function demand(d: FunctionDemandMsg, field: string): void {
  str(d.function, `${field}.function`, wireLimits.idLengthMax, false);
  str(d.functionUid, `${field}.functionUid`, wireLimits.idLengthMax);
  count(d.concurrencyAvg, `${field}.concurrencyAvg`, wireLimits.demandCountMax);
  count(d.inflight, `${field}.inflight`, wireLimits.demandCountMax);
  count(d.queued, `${field}.queued`, wireLimits.demandCountMax);
  for (const [id, n] of Object.entries(d.sandboxInflight)) {
    str(id, `${field}.sandboxInflight`, wireLimits.idLengthMax, false);
    count(n, `${field}.sandboxInflight[${id}]`, wireLimits.demandCountMax);
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
  return guard(() => {
    const up = u.update;
    if (up.case === 'snapshot') {
      const s = up.value;
      count(s.version, 'snapshot.version');
      s.functions.forEach((f, i) => functionSpec(f, `snapshot.functions[${i}]`));
      s.endpoints.forEach((ep, i) => endpoint(ep, `snapshot.endpoints[${i}]`));
      s.drainEndpoints.forEach((id, i) => str(id, `snapshot.drainEndpoints[${i}]`, wireLimits.idLengthMax, false));
      s.tokens.forEach((t, i) => invokeToken(t, `snapshot.tokens[${i}]`));
      s.peers.forEach((p, i) => dataPlanePeer(p, `snapshot.peers[${i}]`));
      return { case: 'snapshot', value: s };
    }
    if (up.case === 'delta') {
      const d = up.value;
      count(d.version, 'delta.version');
      d.upsertFunctions.forEach((f, i) => functionSpec(f, `delta.upsertFunctions[${i}]`));
      d.deleteFunctions.forEach((f, i) => str(f.name, `delta.deleteFunctions[${i}].name`, wireLimits.idLengthMax, false));
      d.addEndpoints.forEach((ep, i) => endpoint(ep, `delta.addEndpoints[${i}]`));
      d.removeEndpoints.forEach((id, i) => str(id, `delta.removeEndpoints[${i}]`, wireLimits.idLengthMax, false));
      d.drainEndpoints.forEach((id, i) => str(id, `delta.drainEndpoints[${i}]`, wireLimits.idLengthMax, false));
      d.upsertTokens.forEach((t, i) => invokeToken(t, `delta.upsertTokens[${i}]`));
      d.revokeTokens.forEach((id, i) => str(id, `delta.revokeTokens[${i}]`, wireLimits.idLengthMax, false));
      d.upsertPeers.forEach((p, i) => dataPlanePeer(p, `delta.upsertPeers[${i}]`));
      d.removePeers.forEach((id, i) => str(id, `delta.removePeers[${i}]`, wireLimits.idLengthMax, false));
      const failures = d.failures.map((f, i) => {
        const code = failureCodes.find((c) => c === (f.code || 'sandbox_failure'));
        if (!code) fail(`delta.failures[${i}].code`, `unknown code ${f.code}`);
        return { function: f.function, functionUid: f.functionUid, code, reason: str(f.reason, `delta.failures[${i}].reason`, wireLimits.reasonLengthMax) };
      });
      return { case: 'delta', value: { ...d, failures } };
    }
    return fail('update', 'empty or unknown update');
  });
}

function endpoint(ep: { sandboxId: string; function: string; functionUid: string; address: string; workerId: string }, field: string): void {
  str(ep.sandboxId, `${field}.sandboxId`, wireLimits.idLengthMax, false);
  str(ep.function, `${field}.function`, wireLimits.idLengthMax, false);
  str(ep.functionUid, `${field}.functionUid`, wireLimits.idLengthMax);
  str(ep.address, `${field}.address`, wireLimits.addressLengthMax);
  str(ep.workerId, `${field}.workerId`, wireLimits.idLengthMax);
}

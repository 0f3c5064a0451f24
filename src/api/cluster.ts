/**
 * @module api/cluster
 * The messages of the internal CP<->DP and CP<->worker streams as plain data: what the cores
 * consume and produce. They mirror `proto/dirigent/v1/cluster.proto` field for field (so a
 * decoded wire message is structurally one of these), but carry no protobuf runtime: the
 * cores never import generated code, and the shells convert at the boundary (`wire/codec.ts`),
 * validating what comes in from another process.
 */

export interface ResourcesMsg {
  cpuMillis: number;
  memoryMib: number;
}

/** What a worker needs to start a sandbox of a function, and what a DP needs to route to it. */
export interface FunctionSpecMsg {
  name: string;
  /** Identity across updates: a re-created function has a new uid. */
  uid: string;
  /** Bumped on every update. */
  generation: number;
  image: string;
  command: string[];
  port: number;
  env: { [key: string]: string };
  resources?: ResourcesMsg;
  /** Per-sandbox slots; 0 = unlimited. */
  concurrency: number;
  timeoutMs: number;
  workingDir: string;
  /** May the sandbox connect beyond this host and the private ranges (FunctionSpec.egress)? */
  egress: boolean;
  /** Who may invoke it (FunctionSpec.auth); '' from an older CP means 'none'. */
  auth: string;
  /** Per-function async settings (FunctionSpec.async_settings); absent: the DP's defaults. */
  asyncSettings?: AsyncSettingsMsg;
}

/** A zero means the DP's default (asyncAttemptsMax, asyncEventAgeMsMax). */
export interface AsyncSettingsMsg {
  retryOn4xx: boolean;
  attemptsMax: number;
  eventAgeMsMax: number;
}

export interface FunctionRefMsg {
  name: string;
  uid: string;
}

// ---------------------------------------------------------------- worker <-> CP

export interface SandboxInfoMsg {
  sandboxId: string;
  function: string;
  functionUid: string;
  functionGeneration: number;
  /** host:port the DP proxies to. */
  address: string;
  resources?: ResourcesMsg;
  createdAtMs: number;
}

export interface WorkerHelloMsg {
  workerId: string;
  address: string;
  capacity?: ResourcesMsg;
  runtimes: string[];
  /** What is running now (reconstruction after a CP failover or a reconnect). */
  sandboxes: SandboxInfoMsg[];
}

export interface HeartbeatMsg {
  capacity?: ResourcesMsg;
  allocated?: ResourcesMsg;
  sandboxCount: number;
}

export interface CreationBreakdownMsg {
  totalMs: number;
  startMs: number;
  readinessMs: number;
}

export type FailureKindName = 'create' | 'crash';

export type WorkerEventMsg =
  | { case: 'hello'; value: WorkerHelloMsg }
  | { case: 'heartbeat'; value: HeartbeatMsg }
  | { case: 'ready'; value: { sandbox?: SandboxInfoMsg; breakdown?: CreationBreakdownMsg } }
  | { case: 'failed'; value: { sandboxId: string; function: string; kind: FailureKindName; reason: string } }
  | { case: 'deleted'; value: { sandboxId: string } };

export type WorkerCommandMsg =
  | { case: 'create'; value: { sandboxId: string; function: FunctionSpecMsg } }
  | { case: 'delete'; value: { sandboxId: string } };

// ---------------------------------------------------------------- DP <-> CP

export interface DataPlaneHelloMsg {
  dataPlaneId: string;
  proxyAddress: string;
  internalAddress: string;
}

export interface FunctionDemandMsg {
  function: string;
  /** A report for a uid the CP does not know (deleted, re-created) is ignored. */
  functionUid: string;
  /** Time-weighted in-flight + queued since the last report. */
  concurrencyAvg: number;
  inflight: number;
  queued: number;
  /** Requests in flight per busy sandbox: scale-down evicts idle ones first. */
  sandboxInflight: { [sandboxId: string]: number };
}

export interface DemandReportMsg {
  functions: FunctionDemandMsg[];
  /** Sent at once on a 0 -> >0 transition. */
  firstDemand: boolean;
}

export type DataPlaneEventMsg =
  | { case: 'hello'; value: DataPlaneHelloMsg }
  | { case: 'demand'; value: DemandReportMsg }
  | { case: 'drained'; value: { sandboxIds: string[] } }
  | { case: 'resync'; value: { haveVersion: number } }
  | { case: 'ack'; value: { version: number } };

export interface EndpointMsg {
  sandboxId: string;
  function: string;
  functionUid: string;
  address: string;
  workerId: string;
}

/** Why a function's queued requests fail now: creation keeps failing, or nothing can place it. */
export type FunctionFailureCode = 'sandbox_failure' | 'unschedulable' | 'quota_exceeded';

export interface FunctionFailureMsg {
  function: string;
  functionUid: string;
  code: FunctionFailureCode;
  reason: string;
}

export interface RoutingSnapshotMsg {
  version: number;
  functions: FunctionSpecMsg[];
  endpoints: EndpointMsg[];
  /** Draining now: a (re)connecting DP acknowledges each once it has no request on it. */
  drainEndpoints: string[];
  /** Every token that may invoke, the whole set (replaces what the DP had). */
  tokens: InvokeTokenMsg[];
  /** Every data plane the CP knows, the whole set (replaces what the DP had; absent = none). */
  peers?: DataPlanePeerMsg[];
}

/** Another data plane, for forwarding reads of the async invocations it accepted (issue #11). */
export interface DataPlanePeerMsg {
  dataPlaneId: string;
  proxyAddress: string;
}

/** A bearer token a DP accepts for functions with auth 'token'; only its hash crosses the wire. */
export interface InvokeTokenMsg {
  id: string;
  /** Hex SHA-256 of the whole token text. */
  sha256Hex: string;
  scope: string;
  namespace: string;
}

/** Moves a DP from `version - 1` to `version`; at any other version it is a gap (resync). */
export interface RoutingDeltaMsg {
  version: number;
  upsertFunctions: FunctionSpecMsg[];
  deleteFunctions: FunctionRefMsg[];
  addEndpoints: EndpointMsg[];
  /** Gone now (crash, worker loss): drop at once. */
  removeEndpoints: string[];
  /** Scale-down or delete: no new requests; report when idle. */
  drainEndpoints: string[];
  failures: FunctionFailureMsg[];
  upsertTokens: InvokeTokenMsg[];
  /** Token ids refused from this version on. */
  revokeTokens: string[];
  upsertPeers?: DataPlanePeerMsg[];
  /** Data plane ids the CP forgot. */
  removePeers?: string[];
}

export type RoutingUpdateMsg =
  | { case: 'snapshot'; value: RoutingSnapshotMsg }
  | { case: 'delta'; value: RoutingDeltaMsg };

/** A delta that only drains endpoints (a scale-down): nothing waits on it, it may wait to share a write. */
export function onlyDrains(u: RoutingUpdateMsg): boolean {
  if (u.case !== 'delta') return false;
  const d = u.value;
  return d.drainEndpoints.length > 0 && d.upsertFunctions.length === 0 && d.deleteFunctions.length === 0 &&
    d.addEndpoints.length === 0 && d.removeEndpoints.length === 0 && d.failures.length === 0 &&
    d.upsertTokens.length === 0 && d.revokeTokens.length === 0 && (d.upsertPeers?.length ?? 0) === 0 && (d.removePeers?.length ?? 0) === 0;
}

// ---------------------------------------------------------------- leader terms (fencing)

/**
 * What every CP -> worker and CP -> DP batch carries besides its messages: the sending leader's
 * term (only grows; 0 = no term, an old CP or a test), or from a standby the leader's address.
 */
export interface BatchHeaderMsg {
  term: number;
  leaderAddress: string;
}

/**
 * The fencing rule, one pure function for the worker, the DP and the simulator: a batch of a
 * term lower than the highest seen is stale and ignored whole; an equal term is the current
 * leader; a higher one is a new leader, adopted. Term 0 is simply the lowest term: it is
 * accepted only while the receiver has seen no term. Real CPs always send a term of at least 1
 * (etcd revision, or the SQLite start counter), so 0 only ever comes from a CP that predates
 * fencing, and mixing it with a fenced leader would let that CP act behind the leader's back.
 */
export type TermVerdict = 'stale' | 'current' | 'newer';

export function fenceTerm(seenTerm: number, term: number): TermVerdict {
  if (term < seenTerm) return 'stale';
  return term === seenTerm ? 'current' : 'newer';
}

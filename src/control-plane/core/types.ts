/**
 * @module control-plane/core/types
 * Events into and effects out of the control-plane core, and the records it keeps. The shell
 * turns gRPC messages (decoded and validated by `wire/codec.ts`), API calls, store completions
 * and timers into events, and carries out effects; the simulator does the same with fakes.
 * Only plain message types (`api/cluster.ts`): the core never sees generated protobuf code.
 */
import type {
  DataPlaneHelloMsg,
  InvokeTokenMsg,
  DemandReportMsg,
  FailureKindName,
  HeartbeatMsg,
  RoutingUpdateMsg,
  SandboxInfoMsg,
  WorkerCommandMsg,
  WorkerHelloMsg,
} from '../../api/cluster.js';
import type { FunctionRecord, FunctionSpec, IdleHistoryRecord, NamespaceQuotas, NamespaceRecord, Resources } from '../../api/types.js';
import type { Deadline } from './deadlines.js';

/** Registry operations from the management API; each completes with one `api_done`. */
export type ApiOp =
  | { kind: 'api_create'; requestId: number; spec: FunctionSpec; uid: string; wallMs: number }
  | { kind: 'api_update'; requestId: number; name: string; patch: (current: FunctionSpec) => FunctionSpec; wallMs: number }
  | { kind: 'api_delete'; requestId: number; name: string };

export type CpEvent =
  | ApiOp
  /** Restore from the store at start-up (and the simulator's registry): applied at once. */
  /** `idleHistory`: the keep-alive's stored idle times, when rebuilt from the store. */
  | { kind: 'function_upserted'; record: FunctionRecord; reconstructed?: boolean; idleHistory?: IdleHistoryRecord }
  | { kind: 'function_deleted'; name: string }
  /** The store finished (or failed) the write the core asked for with `opId`. */
  | { kind: 'persisted'; opId: number }
  | { kind: 'persist_failed'; opId: number; error: string }
  | { kind: 'worker_connected'; hello: WorkerHelloMsg }
  | { kind: 'worker_disconnected'; workerId: string }
  | { kind: 'worker_heartbeat'; workerId: string; heartbeat: HeartbeatMsg }
  | { kind: 'sandbox_ready'; workerId: string; sandbox: SandboxInfoMsg; creationMs: number }
  | { kind: 'sandbox_failed'; workerId: string; sandboxId: string; failure: FailureKindName; reason: string }
  | { kind: 'sandbox_deleted'; workerId: string; sandboxId: string }
  | { kind: 'dp_connected'; hello: DataPlaneHelloMsg }
  | { kind: 'dp_disconnected'; dataPlaneId: string }
  | { kind: 'dp_demand'; dataPlaneId: string; report: DemandReportMsg }
  | { kind: 'dp_drained'; dataPlaneId: string; sandboxIds: string[] }
  | { kind: 'dp_resync'; dataPlaneId: string }
  | { kind: 'dp_ack'; dataPlaneId: string; version: number }
  /** Every token that may invoke (the whole set): DPs get the difference in the next delta. */
  | { kind: 'tokens_set'; tokens: InvokeTokenMsg[] }
  /** Every namespace quota: namespaces without a record use `defaults` (0 = no bound). */
  | { kind: 'quotas_set'; records: NamespaceRecord[]; defaults: NamespaceQuotas };

/** How a registry operation ended; the shell maps it to an HTTP answer. */
export type ApiResult =
  | 'created' | 'exists' | 'updated' | 'deleted' | 'not_found' | 'queue_full' | 'store_failed';

export type CpEffect =
  | { kind: 'worker_send'; workerId: string; command: WorkerCommandMsg }
  | { kind: 'dp_send'; dataPlaneId: string; update: RoutingUpdateMsg }
  | { kind: 'dp_broadcast'; update: RoutingUpdateMsg }
  | { kind: 'persist_worker'; id: string; address: string }
  | { kind: 'persist_data_plane'; id: string; proxyAddress: string; internalAddress: string }
  | { kind: 'forget_worker'; id: string }
  | { kind: 'forget_data_plane'; id: string }
  /** Write (or delete) a function record; answer with `persisted`/`persist_failed` and `opId`. */
  | { kind: 'store_function'; opId: number; record: FunctionRecord }
  | { kind: 'store_delete_function'; opId: number; name: string }
  /** The keep-alive's idle times that changed, for a later leader; nothing waits on the write. */
  | { kind: 'store_idle_histories'; records: IdleHistoryRecord[] }
  /** The keep-alive was turned off (or its stored history no longer fits): forget the history. */
  | { kind: 'store_delete_idle_history'; name: string }
  /** Answer API request `requestId` once every DP applied `routingVersion` (bounded wait). */
  | { kind: 'api_done'; requestId: number; result: ApiResult; routingVersion: number };

export interface SandboxRec {
  id: string;
  fn: string;
  /** Identity of the function it runs: a re-created function of the same name is another one. */
  fnUid: string;
  workerId: string;
  address: string;
  state: 'creating' | 'ready' | 'draining';
  resources: Resources;
  requestedAtMs: number;
  readyAtMs: number;
  /** DPs that still have to report this draining sandbox idle; null until a drain waits for one (most sandboxes never drain while a DP serves them, and an empty Set is ~120 bytes each). */
  drainPending: Set<string> | null;
  drainStartedAtMs: number;
  /** When the drain gives up on DPs that have not reported (the function's timeout, capped). */
  drainDeadlineMs: number;
  /** The worker was told to delete it (drain finished): no second delete. */
  deleteSent: boolean;
  /** Its creation or drain deadline while it waits for one (removed when the wait ends), else null. */
  deadline: Deadline | null;
}

export interface WorkerRec {
  id: string;
  address: string;
  connected: boolean;
  /** Healthy and accepting placements (NodeView). */
  schedulable: boolean;
  capacity: Resources;
  /** Sum of the resources of its sandboxes, kept exact by the core (NodeView). */
  allocated: Resources;
  runtimes: string[];
  /** When the worker was last heard from: its hello, a heartbeat or any sandbox event. */
  lastHeartbeatMs: number;
  /** When the stream closed; 0 while connected. */
  disconnectedAtMs: number;
  /** A heartbeat deadline for it is in the deadline heap. */
  heartbeatWatched: boolean;
  sandboxes: Set<string>;
}

export interface DataPlaneRec {
  id: string;
  proxyAddress: string;
  internalAddress: string;
  connected: boolean;
  disconnectedAtMs: number;
  /**
   * Known from the store at start-up and expected back soon: until it reconnects (or the grace
   * passes) API answers wait for it too, so a function created right after a CP restart is
   * routable on that DP when the API says 201.
   */
  expectedBack: boolean;
  /** Routing version this DP reported as applied. */
  ackedVersion: number;
}

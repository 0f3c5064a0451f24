/**
 * @module control-plane/core/types
 * Events into and effects out of the control-plane core. The shell turns gRPC messages, API
 * calls and timers into events, and carries out effects; the simulator does the same with fakes.
 */
import type { FunctionRecord, Resources } from '../../api/types.js';
import type {
  DemandReport,
  Heartbeat,
  RoutingUpdate,
  SandboxInfo,
  WorkerCommand,
  WorkerHello,
  DataPlaneHello,
  FailureKind,
} from '../../gen/dirigent/v1/cluster_pb.js';

export type CpEvent =
  | { kind: 'function_upserted'; record: FunctionRecord; reconstructed?: boolean }
  | { kind: 'function_deleted'; name: string }
  | { kind: 'worker_connected'; hello: WorkerHello }
  | { kind: 'worker_disconnected'; workerId: string }
  | { kind: 'worker_heartbeat'; workerId: string; heartbeat: Heartbeat }
  | { kind: 'sandbox_ready'; workerId: string; sandbox: SandboxInfo; creationMs: number }
  | { kind: 'sandbox_failed'; workerId: string; sandboxId: string; failure: FailureKind; reason: string }
  | { kind: 'sandbox_deleted'; workerId: string; sandboxId: string }
  | { kind: 'dp_connected'; hello: DataPlaneHello }
  | { kind: 'dp_disconnected'; dataPlaneId: string }
  | { kind: 'dp_demand'; dataPlaneId: string; report: DemandReport }
  | { kind: 'dp_drained'; dataPlaneId: string; sandboxIds: string[] }
  | { kind: 'dp_resync'; dataPlaneId: string }
  | { kind: 'dp_ack'; dataPlaneId: string; version: number };

export type CpEffect =
  | { kind: 'worker_send'; workerId: string; command: WorkerCommand }
  | { kind: 'dp_send'; dataPlaneId: string; update: RoutingUpdate }
  | { kind: 'dp_broadcast'; update: RoutingUpdate }
  | { kind: 'persist_worker'; id: string; address: string }
  | { kind: 'persist_data_plane'; id: string; proxyAddress: string; internalAddress: string };

export interface SandboxRec {
  id: string;
  fn: string;
  workerId: string;
  address: string;
  state: 'creating' | 'ready' | 'draining';
  resources: Resources;
  requestedAtMs: number;
  readyAtMs: number;
  /** DPs that still have to report this draining sandbox idle. */
  drainPending: Set<string>;
  drainStartedAtMs: number;
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
  lastHeartbeatMs: number;
  sandboxes: Set<string>;
}

export interface DataPlaneRec {
  id: string;
  proxyAddress: string;
  internalAddress: string;
  connected: boolean;
  /** Routing version this DP reported as applied. */
  ackedVersion: number;
}

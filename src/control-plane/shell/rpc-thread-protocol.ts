/**
 * @module control-plane/shell/rpc-thread-protocol
 * Messages between `RpcThreadLinks` (the CP's loop) and `rpc-thread` (the worker thread that
 * serves the streams). Each side posts what one event-loop turn produced as one message.
 */
import type { RoutingUpdate, WorkerCommand } from '../../gen/dirigent/v1/cluster_pb.js';
import type { ServerTls } from '../../shared/grpc-link/server.js';
import type { LogFields } from '../../shared/logger.js';
import type { CpEvent } from '../core/types.js';

export interface RpcThreadInit {
  clusterTokenSha256Hex: string;
  pingLimits: { burstMax: number; refillMs: number } | null;
  /** `RpcHooks.standbyLeader` at start; later values come as `standby_leader`. */
  standbyLeader: string | null;
  /** Whether the CP's logger takes debug events (the thread's are posted to it). */
  debugLogs: boolean;
  /**
   * One Int32: events the thread posted that the loop has not handled yet. The thread adds,
   * the loop subtracts; past `eventsPendingMax` the thread stops reading its streams, and
   * reads again once they are down to half of it.
   */
  pending: SharedArrayBuffer;
  eventsPendingMax: number;
}

/**
 * Events posted to the loop and not yet handled, past which the thread stops reading peer
 * streams (each event is a few hundred bytes once cloned: tens of MiB at most). A loop this far
 * behind is overloaded; the peers' messages then wait on their side, as they do when the
 * streams are served on the loop itself.
 */
export const rpcEventsPendingMax = 100_000;
/** How often a paused thread looks whether the loop caught up. */
export const rpcPausedCheckMs = 5;

/** One outgoing item, as `RpcLinks` was given it. */
export type RpcOut =
  | { to: 'worker'; id: string; command: WorkerCommand; deferrable: boolean }
  | { to: 'data_plane'; id: string; update: RoutingUpdate; deferrable: boolean }
  | { to: 'data_planes'; update: RoutingUpdate; deferrable: boolean };

export type ToRpcThread =
  | { kind: 'listen'; host: string; port: number; tls: ServerTls | null }
  /** `term`: the leader's term when the items were sent, written on their batches. */
  | { kind: 'send'; term: number; items: RpcOut[] }
  | { kind: 'standby_leader'; leader: string | null }
  | { kind: 'close' };

export type FromRpcThread =
  | { kind: 'listening'; port: number }
  | { kind: 'listen_failed'; message: string; code: string }
  /** Valid events from the streams, in the order they arrived. */
  | { kind: 'events'; events: CpEvent[] }
  | { kind: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; event: string; fields: LogFields }
  | { kind: 'closed' };

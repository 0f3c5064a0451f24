/**
 * @module control-plane/shell/rpc-links
 * The CP's worker and DP streams as the runtime sees them, served either on the decision loop
 * (`RpcServer`) or on a worker thread (`RpcThreadLinks`, `rpcThread`). Either way the runtime
 * hands over encoded commands and updates, and gets validated core events back in order.
 */
import { availableParallelism } from 'node:os';
import type { RoutingUpdate, WorkerCommand } from '../../gen/dirigent/v1/cluster_pb.js';
import type { ServerTls } from '../../shared/grpc-link/server.js';
import { autoRpcThreadCoresMin } from '../../config/defaults.js';

export interface RpcLinks {
  /** Listens for worker and DP streams; resolves with the port bound. */
  listen(host: string, port: number, tls: ServerTls | null): Promise<number>;
  /** Ends every stream and stops listening (peers see the connection go and dial again). */
  close(): Promise<void>;
  /** `deferrable`: nothing waits on it (see `Batcher.push`). */
  sendWorker(workerId: string, command: WorkerCommand, deferrable?: boolean): void;
  sendDataPlane(dataPlaneId: string, update: RoutingUpdate, deferrable?: boolean): void;
  broadcastDataPlanes(update: RoutingUpdate, deferrable?: boolean): void;
}

/** `rpcThread` as configured ('auto', 'thread' or 'loop'; checked by the config), for a machine of `cores` cores. */
export function rpcOnThread(mode: string, cores: number = availableParallelism()): boolean {
  if (mode === 'auto') return cores >= autoRpcThreadCoresMin;
  return mode === 'thread';
}

/**
 * @module control-plane/shell/peer-events
 * How a decoded stream message from a worker or a data plane becomes a control-plane core event.
 * One mapping, used by the gRPC stream server and by the simulator, so the simulator drives the
 * core exactly as the real shell does. Messages arrive here already validated by the codec.
 */
import type { DataPlaneEventMsg, WorkerEventMsg } from '../../api/cluster.js';
import type { CpEvent } from '../core/types.js';

/** `workerId` is the stream's worker (for a hello, the id it announces). */
export function workerEventToCp(workerId: string, e: WorkerEventMsg): CpEvent {
  switch (e.case) {
    case 'hello': return { kind: 'worker_connected', hello: e.value };
    case 'heartbeat': return { kind: 'worker_heartbeat', workerId, heartbeat: e.value };
    case 'ready':
      // The codec refuses a ready event without its sandbox.
      return { kind: 'sandbox_ready', workerId, sandbox: e.value.sandbox!, creationMs: e.value.breakdown?.totalMs ?? 0 };
    case 'failed':
      return { kind: 'sandbox_failed', workerId, sandboxId: e.value.sandboxId, failure: e.value.kind, reason: e.value.reason };
    case 'deleted': return { kind: 'sandbox_deleted', workerId, sandboxId: e.value.sandboxId };
  }
}

export function dataPlaneEventToCp(dataPlaneId: string, e: DataPlaneEventMsg): CpEvent {
  switch (e.case) {
    case 'hello': return { kind: 'dp_connected', hello: e.value };
    case 'demand': return { kind: 'dp_demand', dataPlaneId, report: e.value };
    case 'drained': return { kind: 'dp_drained', dataPlaneId, sandboxIds: e.value.sandboxIds };
    case 'resync': return { kind: 'dp_resync', dataPlaneId };
    case 'ack': return { kind: 'dp_ack', dataPlaneId, version: e.value.version };
  }
}

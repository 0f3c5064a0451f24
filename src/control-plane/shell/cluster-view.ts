/**
 * @module control-plane/shell/cluster-view
 * The body of `GET /v1/cluster`: the leader's addresses, workers and data planes as the core
 * knows them (peers remembered from the store show as disconnected until they return), and the
 * placements no worker could take since this leader started.
 */
import type { ControlPlaneConfig } from '../../config/compile.js';
import type { ControlPlaneCore } from '../core/control-plane.js';

export function clusterView(core: ControlPlaneCore, cfg: ControlPlaneConfig, ports: { api: number; rpc: number }, nowMs: number, id = 'control-plane-0') {
  return {
    leader: { id, apiAddress: `${cfg.host}:${ports.api}`, rpcAddress: `${cfg.host}:${ports.rpc}` },
    workers: [...core.workers.values()].map((w) => ({
      id: w.id,
      address: w.address,
      connected: w.connected,
      schedulable: w.schedulable,
      capacity: w.capacity,
      allocated: w.allocated,
      sandboxes: w.sandboxes.size,
      sandboxIds: [...w.sandboxes],
      lastHeartbeatAgoMs: Math.round(nowMs - w.lastHeartbeatMs),
    })),
    dataPlanes: [...core.dataPlanes.values()].map((d) => ({ id: d.id, proxyAddress: d.proxyAddress, connected: d.connected })),
    placementRefusals: { ...core.placementRefusals },
  };
}

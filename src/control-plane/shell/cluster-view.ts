/**
 * @module control-plane/shell/cluster-view
 * The body of `GET /v1/cluster`: the leader's addresses, workers and data planes as the core
 * knows them (peers remembered from the store show as disconnected until they return), and the
 * placements no worker could take since this leader started. Each worker lists its sandbox ids
 * unless `?sandboxIds=false`: with 64,000 sandboxes that list is 1.9 MB of JSON and about 8 ms
 * of the CP's loop per answer, and the HA front end and `bench cold`, which read the answer
 * every second or around each run, need only the data planes and the capacity.
 */
import type { ControlPlaneConfig } from '../../config/compile.js';
import type { ControlPlaneCore } from '../core/control-plane.js';

export interface ClusterViewOptions {
  /** List each worker's sandbox ids (default). */
  sandboxIds: boolean;
}

/** The view a query asks for, or the field it got wrong. */
export function clusterViewOptionsOf(query: URLSearchParams):
  { kind: 'ok'; view: ClusterViewOptions } | { kind: 'invalid'; field: string; message: string } {
  const ids = query.getAll('sandboxIds');
  if (ids.length === 0) return { kind: 'ok', view: { sandboxIds: true } };
  if (ids.length === 1 && (ids[0] === 'true' || ids[0] === 'false')) return { kind: 'ok', view: { sandboxIds: ids[0] === 'true' } };
  return { kind: 'invalid', field: 'sandboxIds', message: `sandboxIds must be true or false (once), got ${JSON.stringify(ids.join(',').slice(0, 64))}` };
}

export function clusterView(core: ControlPlaneCore, cfg: ControlPlaneConfig, ports: { api: number; rpc: number }, nowMs: number,
  id = 'control-plane-0', view: ClusterViewOptions = { sandboxIds: true }) {
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
      ...(view.sandboxIds ? { sandboxIds: [...w.sandboxes] } : {}),
      lastHeartbeatAgoMs: Math.round(nowMs - w.lastHeartbeatMs),
    })),
    dataPlanes: [...core.dataPlanes.values()].map((d) => ({ id: d.id, proxyAddress: d.proxyAddress, connected: d.connected })),
    placementRefusals: { ...core.placementRefusals },
  };
}

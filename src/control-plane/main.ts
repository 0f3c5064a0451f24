/**
 * @module control-plane/main
 * Wires the control-plane core to its shells: the store, the gRPC stream server, the management
 * API, the monitor ticker and metrics. Owns every timer of the CP.
 */
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { FunctionSpec, FunctionStatus } from '../api/types.js';
import { ConfigError, type ControlPlaneConfig } from '../config/compile.js';
import { apiDefaults } from '../config/defaults.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { bindServer } from '../shared/grpc.js';
import type { Logger } from '../shared/logger.js';
import { seededRng } from '../shared/rng.js';
import { ControlPlaneCore } from './core/control-plane.js';
import type { ApiResult } from './core/types.js';
import { startApiServer, type ApiBackend } from './shell/api-server.js';
import { clusterView } from './shell/cluster-view.js';
import { HttpError } from './shell/http-util.js';
import { createMetrics } from './shell/metrics.js';
import { RpcServer } from './shell/rpc-server.js';
import { CpRuntime } from './shell/runtime.js';
import { openSqliteStore } from './store/sqlite-store.js';
import type { Store } from './store/store.js';

export interface RunningControlPlane {
  apiPort: number;
  rpcPort: number;
  core: ControlPlaneCore;
  close(): Promise<void>;
}

/** Creations failing this many times in a row fail the function's queued requests. */
const failFastAfterFailures = 3;

export async function startControlPlane(cfg: ControlPlaneConfig, log: Logger, store?: Store): Promise<RunningControlPlane> {
  const clock = systemClock;
  const db = store ?? (await openSqliteStore(join(cfg.stateDir, 'control-plane.db')));
  const seed = cfg.seed !== 0 ? cfg.seed : Math.floor(Math.random() * 2 ** 31);
  const core = new ControlPlaneCore(
    {
      placement: toPlacementPolicy(cfg.placement),
      heartbeatTimeoutMs: cfg.heartbeatTimeoutMs,
      creationTimeoutMs: cfg.creationTimeoutMs,
      drainTimeoutMs: cfg.drainTimeoutMs,
      creatingPerFunctionMax: cfg.creatingPerFunctionMax,
      retryBackoffMs: cfg.retryBackoffMs,
      failFastAfter: failFastAfterFailures,
      peerForgetAfterMs: cfg.peerForgetAfterMs,
      unschedulableFailAfterMs: cfg.unschedulableFailAfterMs,
      registryQueuePerNameMax: cfg.registryQueuePerNameMax,
    },
    seededRng(seed),
    log,
  );
  const metrics = createMetrics(core);
  const runtime = new CpRuntime(core, db, clock, metrics, log);
  const rpc = new RpcServer(runtime, log);
  runtime.rpc = rpc;

  const loaded = await db.load();
  for (const record of loaded.functions) runtime.handle({ kind: 'function_upserted', record, reconstructed: true });
  core.loadPeers(loaded.workers, loaded.dataPlanes, clock.nowMs());
  log.info('control_plane.restored', { functions: loaded.functions.length, workers: loaded.workers.length, dataPlanes: loaded.dataPlanes.length });

  const ports = { api: cfg.apiPort, rpc: 0 };
  const backend = apiBackend(runtime, clock, () => clusterView(core, cfg, ports, clock.nowMs()), metrics.registry);
  ports.rpc = await bindServer(cfg.host, cfg.rpcPort, rpc.server);
  let api: Server;
  try {
    api = await startApiServer({ host: cfg.host, port: cfg.apiPort, bodyBytesMax: apiDefaults.bodyBytesMax, backend, log });
  } catch (err) {
    rpc.server.forceShutdown();
    throw err;
  }
  ports.api = (api.address() as { port: number }).port;
  const ticker = setInterval(() => runtime.tick(), cfg.monitorPeriodMs);
  log.info('control_plane.started', { api: `${cfg.host}:${ports.api}`, rpc: `${cfg.host}:${ports.rpc}`, placement: cfg.placement, seed });

  return {
    apiPort: ports.api,
    rpcPort: ports.rpc,
    core,
    async close() {
      clearInterval(ticker);
      runtime.close();
      api.closeAllConnections();
      await new Promise<void>((r) => api.close(() => r()));
      rpc.server.forceShutdown();
      await db.close();
    },
  };
}

/** The management API's view of the CP: registry operations go through the core, in order. */
function apiBackend(runtime: CpRuntime, clock: Clock, cluster: () => unknown, registry: ReturnType<typeof createMetrics>['registry']): ApiBackend {
  const core = runtime.core;
  const item = (name: string) => {
    const r = core.record(name);
    return r ? { function: r.spec, status: wallTimes(core.status(name), clock) } : null;
  };
  return {
    async createFunction(spec: FunctionSpec) {
      const result = orThrow(await runtime.submit({ kind: 'api_create', spec }));
      return result === 'exists' ? 'exists' : 'created';
    },
    async updateFunction(name, patch) {
      // The patch runs inside the core when the operation's turn comes; it must not throw there.
      let thrown: unknown = null;
      const safe = (current: FunctionSpec): FunctionSpec => {
        try {
          return patch(current);
        } catch (err) {
          thrown = err;
          return current;
        }
      };
      const result = orThrow(await runtime.submit({ kind: 'api_update', name, patch: safe }));
      if (thrown) throw thrown;
      return result !== 'not_found';
    },
    async deleteFunction(name) {
      return orThrow(await runtime.submit({ kind: 'api_delete', name })) !== 'not_found';
    },
    getFunction: item,
    listFunctions() {
      return core.records().map((r) => item(r.spec.name)!);
    },
    cluster,
    dataPlaneAddresses() {
      return [...core.dataPlanes.values()].filter((d) => d.connected).map((d) => d.proxyAddress);
    },
    async metrics() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}

/** The core counts in monotonic time; people read epoch milliseconds. */
function wallTimes(status: FunctionStatus | null, clock: Clock): FunctionStatus | null {
  if (!status || status.unschedulableSinceMs === undefined) return status;
  const sinceWallMs = Math.round(clock.wallMs() - (clock.nowMs() - status.unschedulableSinceMs));
  return { ...status, unschedulableSinceMs: sinceWallMs };
}

function orThrow(result: ApiResult): ApiResult {
  if (result === 'queue_full') throw new HttpError(503, 'queue_full', 'too many operations queued on this function; retry');
  if (result === 'store_failed') throw new HttpError(503, 'store_failure', 'the store did not accept the change; retry');
  return result;
}

const placementPolicies = ['kubernetes', 'random', 'round-robin'] as const;

function toPlacementPolicy(name: string): (typeof placementPolicies)[number] {
  const found = placementPolicies.find((p) => p === name);
  if (!found) throw new ConfigError(`control plane: placement must be one of ${placementPolicies.join(', ')}, got ${name}`);
  return found;
}

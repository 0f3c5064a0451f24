/**
 * @module control-plane/main
 * Wires the control-plane core to its shells: the SQLite store, the gRPC stream server, the
 * management API, the monitor ticker and Prometheus metrics. Owns every timer of the CP.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { join } from 'node:path';
import client from 'prom-client';
import type { FunctionRecord, FunctionSpec } from '../api/types.js';
import { ConfigError, type ControlPlaneConfig } from '../config/compile.js';
import { apiDefaults } from '../config/defaults.js';
import { bindServer } from '../shared/grpc.js';
import type { Logger } from '../shared/logger.js';
import { systemClock } from '../shared/clock.js';
import { seededRng } from '../shared/rng.js';
import { ControlPlaneCore } from './core/control-plane.js';
import type { CpEffect, CpEvent } from './core/types.js';
import { startApiServer, type ApiBackend } from './shell/api-server.js';
import { RpcServer } from './shell/rpc-server.js';
import { SqliteStore } from './store/sqlite-store.js';
import type { Store } from './store/store.js';

export interface RunningControlPlane {
  apiPort: number;
  rpcPort: number;
  core: ControlPlaneCore;
  close(): Promise<void>;
}

/** Longest wait for data planes to acknowledge a new function before answering the API. */
const routingAckWaitMsMax = 2_000;
/** Creations failing this many times in a row fail the function's queued requests. */
const failFastAfterFailures = 3;

export async function startControlPlane(cfg: ControlPlaneConfig, log: Logger, store?: Store): Promise<RunningControlPlane> {
  const clock = systemClock;
  const db = store ?? new SqliteStore(join(cfg.stateDir, 'control-plane.db'));
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
    },
    seededRng(seed),
    log,
  );
  const metrics = createMetrics(core);
  const records = new Map<string, FunctionRecord>();
  const knownDataPlanes = new Map<string, { proxyAddress: string }>();
  const pending = new Set<string>();

  const exec = (effects: CpEffect[]): void => {
    for (const e of effects) {
      switch (e.kind) {
        case 'worker_send': rpc.sendWorker(e.workerId, e.command); break;
        case 'dp_send': rpc.sendDataPlane(e.dataPlaneId, e.update); break;
        case 'dp_broadcast': rpc.broadcastDataPlanes(e.update); break;
        case 'persist_worker':
          db.putWorker({ id: e.id, address: e.address }).catch((err) => log.error('store.failed', { error: String(err) }));
          break;
        case 'persist_data_plane':
          knownDataPlanes.set(e.id, { proxyAddress: e.proxyAddress });
          db.putDataPlane({ id: e.id, proxyAddress: e.proxyAddress, internalAddress: e.internalAddress })
            .catch((err) => log.error('store.failed', { error: String(err) }));
          break;
      }
    }
  };
  const routingWaiters = new Set<{ version: number; resolve: () => void }>();
  const handle = (event: CpEvent): void => {
    if (event.kind === 'sandbox_ready') metrics.onReady(event.creationMs);
    if (event.kind === 'sandbox_failed') metrics.failures.inc();
    exec(core.handle(event, clock.nowMs()));
    if ((event.kind === 'dp_ack' || event.kind === 'dp_disconnected') && routingWaiters.size > 0) {
      for (const w of routingWaiters) if (core.routingAppliedEverywhere(w.version)) w.resolve();
    }
  };
  /**
   * Resolves once every connected DP applied the current routing version, or after
   * routingAckWaitMsMax (a slow DP must not block registration forever).
   */
  const routingApplied = (): Promise<void> => {
    const version = core.routing.version;
    if (core.routingAppliedEverywhere(version)) return Promise.resolve();
    return new Promise((resolve) => {
      const w = { version, resolve: () => { clearTimeout(t); routingWaiters.delete(w); resolve(); } };
      const t = setTimeout(w.resolve, routingAckWaitMsMax);
      routingWaiters.add(w);
    });
  };
  const rpc = new RpcServer({ handle }, log);

  const loaded = await db.load();
  for (const r of loaded.functions) {
    records.set(r.spec.name, r);
    exec(core.handle({ kind: 'function_upserted', record: r, reconstructed: true }, clock.nowMs()));
  }
  for (const dp of loaded.dataPlanes) knownDataPlanes.set(dp.id, { proxyAddress: dp.proxyAddress });
  log.info('control_plane.restored', { functions: loaded.functions.length, workers: loaded.workers.length, dataPlanes: loaded.dataPlanes.length });

  const backend: ApiBackend = {
    async createFunction(spec: FunctionSpec) {
      if (records.has(spec.name) || pending.has(spec.name)) return 'exists';
      pending.add(spec.name);
      try {
        const now = clock.wallMs();
        const record: FunctionRecord = { spec, uid: randomUUID(), generation: 1, createdAtMs: now, updatedAtMs: now };
        await db.putFunction(record);
        records.set(spec.name, record);
        handle({ kind: 'function_upserted', record });
        await routingApplied();
        return 'created';
      } finally {
        pending.delete(spec.name);
      }
    },
    async updateFunction(name, patch) {
      const current = records.get(name);
      if (!current) return false;
      const spec = patch(current.spec);
      if (spec === current.spec) return true;
      const record: FunctionRecord = { ...current, spec, generation: current.generation + 1, updatedAtMs: clock.wallMs() };
      await db.putFunction(record);
      records.set(name, record);
      handle({ kind: 'function_upserted', record });
      await routingApplied();
      return true;
    },
    async deleteFunction(name) {
      if (!records.has(name)) return false;
      await db.deleteFunction(name);
      records.delete(name);
      handle({ kind: 'function_deleted', name });
      await routingApplied();
      return true;
    },
    getFunction(name) {
      const r = records.get(name);
      return r ? { function: r.spec, status: core.status(name) } : null;
    },
    listFunctions() {
      return [...records.values()].map((r) => ({ function: r.spec, status: core.status(r.spec.name) }));
    },
    cluster() {
      return clusterView(core, cfg, clock.nowMs(), knownDataPlanes);
    },
    dataPlaneAddresses() {
      return [...core.dataPlanes.values()].filter((d) => d.connected).map((d) => d.proxyAddress);
    },
    async metrics() {
      return { contentType: metrics.registry.contentType, body: await metrics.registry.metrics() };
    },
  };

  const rpcPort = await bindServer(cfg.host, cfg.rpcPort, rpc.server);
  let api: Server;
  try {
    api = await startApiServer({ host: cfg.host, port: cfg.apiPort, bodyBytesMax: apiDefaults.bodyBytesMax, backend, log });
  } catch (err) {
    rpc.server.forceShutdown();
    throw err;
  }
  const apiPort = (api.address() as { port: number }).port;
  const ticker = setInterval(() => exec(core.tick(clock.nowMs())), cfg.monitorPeriodMs);
  log.info('control_plane.started', { api: `${cfg.host}:${apiPort}`, rpc: `${cfg.host}:${rpcPort}`, placement: cfg.placement, seed });

  return {
    apiPort,
    rpcPort,
    core,
    async close() {
      clearInterval(ticker);
      api.closeAllConnections();
      await new Promise<void>((r) => api.close(() => r()));
      rpc.server.forceShutdown();
      await db.close();
    },
  };
}

const placementPolicies = ['kubernetes', 'random', 'round-robin'] as const;

function toPlacementPolicy(name: string): (typeof placementPolicies)[number] {
  const found = placementPolicies.find((p) => p === name);
  if (!found) throw new ConfigError(`control plane: placement must be one of ${placementPolicies.join(', ')}, got ${name}`);
  return found;
}

function clusterView(core: ControlPlaneCore, cfg: ControlPlaneConfig, nowMs: number, knownDps: Map<string, { proxyAddress: string }>) {
  return {
    leader: { id: 'control-plane-0', apiAddress: `${cfg.host}:${cfg.apiPort}`, rpcAddress: `${cfg.host}:${cfg.rpcPort}` },
    workers: [...core.workers.values()].map((w) => ({
      id: w.id,
      address: w.address,
      connected: w.connected,
      schedulable: w.schedulable,
      capacity: w.capacity,
      allocated: w.allocated,
      sandboxes: w.sandboxes.size,
      lastHeartbeatAgoMs: Math.round(nowMs - w.lastHeartbeatMs),
    })),
    dataPlanes: [...knownDps.entries()].map(([id, d]) => ({
      id,
      proxyAddress: d.proxyAddress,
      connected: core.dataPlanes.get(id)?.connected ?? false,
    })),
  };
}

function createMetrics(core: ControlPlaneCore) {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'dirigent_cp_' });
  const failures = new client.Counter({ name: 'dirigent_sandbox_failures_total', help: 'Sandbox creations or runs that failed', registers: [registry] });
  const created = new client.Counter({ name: 'dirigent_sandboxes_created_total', help: 'Sandboxes that became ready', registers: [registry] });
  const creation = new client.Histogram({
    name: 'dirigent_sandbox_creation_seconds',
    help: 'Sandbox creation time on the worker (runtime start plus readiness)',
    buckets: [0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12],
    registers: [registry],
  });
  new client.Gauge({
    name: 'dirigent_functions', help: 'Registered functions', registers: [registry],
    collect() { this.set(core.functions.size); },
  });
  new client.Gauge({
    name: 'dirigent_sandboxes', help: 'Sandboxes by state', labelNames: ['state'], registers: [registry],
    collect() {
      const counts = { creating: 0, ready: 0, draining: 0 };
      for (const sb of core.sandboxes.values()) counts[sb.state] += 1;
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
    },
  });
  new client.Gauge({
    name: 'dirigent_workers', help: 'Workers by health', labelNames: ['state'], registers: [registry],
    collect() {
      let up = 0;
      let down = 0;
      for (const w of core.workers.values()) if (w.schedulable) up += 1; else down += 1;
      this.set({ state: 'schedulable' }, up);
      this.set({ state: 'unschedulable' }, down);
    },
  });
  return {
    registry,
    failures,
    onReady(creationMs: number) {
      created.inc();
      creation.observe(creationMs / 1000);
    },
  };
}

/**
 * @module worker/main
 * Starts one worker daemon (or N emulated ones sharing a process, a gRPC channel and one HTTP
 * responder) with its runtime, plus a small health server on the worker port (`/health`, and
 * `/metrics` with the process's event-loop delay: one monitor however many emulated workers).
 */
import { createServer, type Server } from 'node:http';
import { cpus, hostname, totalmem } from 'node:os';
import type { WorkerConfig } from '../config/compile.js';
import { ConfigError } from '../config/compile.js';
import { systemClock } from '../shared/clock.js';
import { join } from 'node:path';
import { listenBacklog } from '../shared/listen-backlog.js';
import { makeClient, type LinkSecurity } from '../shared/grpc.js';
import { registerLeanHttpGauge } from '../shared/http1/lean-metrics.js';
import { caOf, clusterTokenReader } from '../shared/tls-files.js';
import type { Logger } from '../shared/logger.js';
import { WorkerDaemon } from './daemon.js';
import { startRealRuntimes } from './runtime-setup.js';
import { createEmulatedRuntime, startEmulatedResponder } from './runtime/emulated-runtime.js';
import { runtimeCapabilities } from './runtime/multi-runtime.js';
import type { SandboxRuntime } from './runtime/runtime.js';
import client from 'prom-client';
import { registerLoopDelayMetrics } from '../shared/loop-delay.js';
import { defaultMetricsPrefix } from '../shared/metric-prefix.js';
import { collectProcessMetrics } from '../shared/process-metrics.js';
import { serveMetrics, splitTarget } from '../shared/metrics-select.js';

export interface RunningWorker {
  port: number;
  daemons: WorkerDaemon[];
  close(): Promise<void>;
}

/** More emulated workers than this in one process is a configuration mistake. */
const emulatedWorkersMax = 100_000;

export async function startWorker(cfg: WorkerConfig, log: Logger): Promise<RunningWorker> {
  const emulated = cfg.runtime === 'emulated';
  if (cfg.count < 1 || cfg.count > emulatedWorkersMax) {
    throw new ConfigError(`worker: count must be in [1, ${emulatedWorkersMax}], got ${cfg.count}`);
  }
  if (cfg.count > 1 && !emulated) {
    throw new ConfigError('worker: --count above 1 needs --runtime emulated');
  }
  const capacity = {
    cpuMillis: cfg.cpuMillis > 0 ? cfg.cpuMillis : emulated ? cfg.emulatedNodeCpuMillis : cpus().length * 1000,
    memoryMiB: cfg.memoryMiB > 0 ? cfg.memoryMiB : emulated ? cfg.emulatedNodeMemoryMiB : Math.floor(totalmem() / 1_048_576),
  };
  const security = linkSecurity(cfg);
  const registry = new client.Registry();
  collectProcessMetrics(registry, defaultMetricsPrefix.worker);
  const stopLoopDelay = registerLoopDelayMetrics(registry);
  const health = await startHealth(cfg, registry).catch((err: Error) => {
    stopLoopDelay();
    throw err;
  });
  const port = (health.address() as { port: number }).port;
  const baseId = cfg.id || `worker-${hostname()}-${port}`;
  const daemons: WorkerDaemon[] = [];
  const closers: (() => Promise<void>)[] = [];
  if (!emulated) {
    // Host checks come first inside: a refusal leaves nothing running but the health port.
    const real = await startRealRuntimes(cfg, baseId, log).catch(async (err: Error) => {
      await new Promise<void>((r) => health.close(() => r()));
      stopLoopDelay();
      throw err;
    });
    closers.push(() => real.close()); // after the daemons closed, so after their sandboxes
    daemons.push(newDaemon(cfg, baseId, `${cfg.host}:${port}`, capacity, real.capabilities, real.runtime, security, log));
  } else {
    const responder = await startEmulatedResponder({ host: cfg.host, port: 0, log });
    closers.push(() => responder.close());
    registerLeanHttpGauge(registry, 'dirigent_worker_responder_lean_http',
      "The emulated sandboxes' responder: requests its lean HTTP/1.1 path answered, and connections it handed to Node's server by reason",
      () => responder.lean);
    const client = cfg.count > 1 && !cfg.controlPlane.includes(',') ? makeClient(cfg.controlPlane, security.caPem) : undefined;
    if (client) closers.push(async () => client.close());
    const capabilities = runtimeCapabilities('emulated');
    for (let i = 0; i < cfg.count; i += 1) {
      const id = cfg.count > 1 ? `${baseId}-${i + 1}` : baseId;
      const runtime = createEmulatedRuntime({ createMs: cfg.emulatedCreateMs, responder, clock: systemClock });
      daemons.push(newDaemon(cfg, id, `${cfg.host}:${port}`, capacity, capabilities, runtime, security, log, client));
    }
  }
  for (const d of daemons) d.start();
  log.info('worker.started', { id: baseId, count: daemons.length, runtime: cfg.runtime, port, controlPlane: cfg.controlPlane, capacity });
  return {
    port,
    daemons,
    async close() {
      await Promise.all(daemons.map((d) => d.close()));
      for (const c of closers) await c();
      health.closeAllConnections();
      await new Promise<void>((r) => health.close(() => r()));
      stopLoopDelay();
    },
  };
}

function newDaemon(
  cfg: WorkerConfig,
  id: string,
  address: string,
  capacity: { cpuMillis: number; memoryMiB: number },
  capabilities: string[],
  runtime: SandboxRuntime,
  security: LinkSecurity,
  log: Logger,
  client?: ReturnType<typeof makeClient>,
): WorkerDaemon {
  return new WorkerDaemon(
    {
      id,
      address,
      controlPlane: cfg.controlPlane,
      capacity,
      capabilities,
      heartbeatPeriodMs: cfg.heartbeatPeriodMs,
      backoffMs: cfg.reconnectBackoffMs,
      replayEventsMax: cfg.replayEventsMax,
      security,
      ...(client ? { client } : {}),
    },
    runtime,
    systemClock,
    log,
  );
}

/** The cluster token (default <stateDir>/cluster.token) and the CP's CA, read before anything starts. */
function linkSecurity(cfg: WorkerConfig): LinkSecurity {
  const clusterTokenFile = cfg.clusterTokenFile !== '' ? cfg.clusterTokenFile : join(cfg.stateDir, 'cluster.token');
  return { clusterToken: clusterTokenReader(clusterTokenFile), clusterTokenFile, caPem: caOf(cfg.tlsCaFile) };
}

function startHealth(cfg: WorkerConfig, registry: client.Registry): Promise<Server> {
  const server = createServer((req, res) => {
    const target = splitTarget(req.url ?? '');
    if (target?.path === '/metrics') {
      serveMetrics(registry, target.query, res);
      return;
    }
    const health = target?.path === '/health';
    res.writeHead(health ? 200 : 404, { 'content-type': 'application/json' });
    res.end(health ? '{"status":"ok"}' : '{"error":{"code":"not_found","message":"try /health or /metrics"}}');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // Unauthenticated: on internalHost (loopback by default), not where the sandboxes listen.
    server.listen({ port: cfg.port, host: cfg.internalHost, backlog: listenBacklog }, () => resolve(server));
  });
}

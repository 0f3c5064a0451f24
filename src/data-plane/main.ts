/**
 * @module data-plane/main
 * Wires the data-plane core to the proxy, the CP link, timers (demand reports, queue expiry)
 * and the internal server (:8081, `/health` and `/metrics`). Every core call returns effects;
 * `runEffects` carries them out.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { Server } from 'node:net';
import client from 'prom-client';
import type { DataPlaneConfig } from '../config/compile.js';
import { ConfigError } from '../config/compile.js';
import { availableParallelism } from 'node:os';
import { systemClock } from '../shared/clock.js';
import { Batcher } from '../shared/grpc.js';
import { registerLeanHttpGauge } from '../shared/http1/lean-metrics.js';
import { listenOptions } from '../shared/listen-backlog.js';
import type { Logger } from '../shared/logger.js';
import { isLoopbackHost } from '../shared/loopback.js';
import { seededRng } from '../shared/rng.js';
import { caOf, clusterTokenReader, serverTlsOf } from '../shared/tls-files.js';
import { isAsyncWaiter } from './async/executor.js';
import { startAsync } from './async/wiring.js';
import { coreAuthorizer, startAsyncCompat } from './async/compat.js';
import { withPeerReads } from './async/peer-reads.js';
import { DataPlaneCore, newWaiter, type DpEffect } from './core/data-plane.js';
import { isHubWaiter, ProxyHub, resolveProxyThreads } from './core/proxy-link.js';
import { ProxyProcesses } from './shell/proxy-processes.js';
import { ControlPlaneLink } from './shell/cp-link.js';
import { guarded } from '../shared/guard.js';
import { InvocationProxy } from './shell/proxy.js';
import { toLbPolicy } from './shell/lb-policy.js';
import { registerLoopDelayMetrics } from '../shared/loop-delay.js';
import { defaultMetricsPrefix } from '../shared/metric-prefix.js';
import { collectProcessMetrics } from '../shared/process-metrics.js';
import { serveMetrics, splitTarget } from '../shared/metrics-select.js';
import { TimedWorkTimers } from './shell/timed-work.js';

export interface RunningDataPlane {
  proxyPort: number;
  internalPort: number;
  core: DataPlaneCore;
  /** Pids of the proxy processes running now (`proxyThreads` - 1 of them once started). */
  proxyPids(): number[];
  close(): Promise<void>;
}

/** Demand reports are polled this many times per period, so each batch stays small. */
const demandPollsPerPeriod = 10;
const demandPollMsMin = 20;
/** How often queued requests are checked against the wait limit. */
const expiryPeriodMs = 50;

export async function startDataPlane(cfg: DataPlaneConfig, log: Logger): Promise<RunningDataPlane> {
  checkAuthHost(cfg);
  const clock = systemClock;
  const security = { clusterToken: clusterTokenReader(cfg.clusterTokenFile), clusterTokenFile: cfg.clusterTokenFile, caPem: caOf(cfg.tlsCaFile) };
  const tls = serverTlsOf('data plane', cfg.tlsCertFile, cfg.tlsKeyFile);
  const core = new DataPlaneCore(
    { queueDepthMax: cfg.queueDepthMax, queueWaitMsMax: cfg.queueWaitMsMax, loadBalancing: toLbPolicy(cfg.loadBalancing), urgentReportMsMin: cfg.urgentReportMsMin, upstreamRetriesMax: cfg.upstreamRetriesMax },
    seededRng(Math.floor(Math.random() * 2 ** 31)),
    log,
  );
  // Proxy processes (--proxy-threads), forked once everything they delegate is served here.
  let processes: ProxyProcesses | null = null;
  let delegateServer: Server | null = null;
  let hub: ProxyHub | null = null;
  const timed = new TimedWorkTimers([
    {
      periodMs: Math.max(demandPollMsMin, cfg.demandReportPeriodMs / demandPollsPerPeriod),
      run: guarded(log, 'timer', 'demand', () => {
        const functions = core.takeDemand(clock.nowMs(), cfg.demandReportPeriodMs);
        if (functions.length > 0) link.send({ case: 'demand', value: { functions, firstDemand: false } });
      }),
    },
    {
      periodMs: expiryPeriodMs,
      run: guarded(log, 'timer', 'expiry', () => {
        runEffects(core.expire(clock.nowMs()));
        // A queue that outlasts a recall's hold-off is recalled again (held slots would keep it waiting).
        if (processes && core.functionsWithQueue.size > 0) processes.recall([...core.functionsWithQueue]);
      }),
    },
  ], () => core.hasTimedWork);
  const runEffects = effectRunner(core, log, () => proxy, () => link, () => processes, () => timed.wake());
  const proxy = new InvocationProxy(core, cfg, clock, log, runEffects, tls);
  proxy.starting = true;
  const proxyPort = await listen(proxy.server, cfg.proxyPort, cfg.host, cfg.proxyFd);
  const registry = createMetrics(core, proxy, () => hub, () => processes);
  const stopLoopDelay = registerLoopDelayMetrics(registry);
  const internal = createInternalServer(core, registry, () => link.connected, () => processes?.pids.length ?? 0);
  const internalPort = await listen(internal, cfg.internalPort, cfg.internalHost);
  const id = cfg.id || `dp-${cfg.host}-${proxyPort}`;
  // One ack per event-loop turn, carrying the latest applied version.
  const ack = new Batcher<number>((versions) => link.send({ case: 'ack', value: { version: Math.max(...versions) } }));
  const resync = (): void => link.send({ case: 'resync', value: { haveVersion: core.version } });
  const link: ControlPlaneLink = new ControlPlaneLink(
    {
      address: cfg.controlPlane,
      hello: { dataPlaneId: id, proxyAddress: `${cfg.host}:${proxyPort}`, internalAddress: `${cfg.internalHost}:${internalPort}` },
      backoffMs: cfg.reconnectBackoffMs,
      onUpdate: (u) => {
        const r = core.applyRouting(u, clock.nowMs());
        if (!r.ok) resync();
        else {
          ack.push(core.version);
          processes?.routing(core.term, u);
        }
        runEffects(r.effects);
        proxy.routingApplied();
      },
      onInvalid: resync,
      admitTerm: (term) => core.admitTerm(term),
      seenTerm: () => core.term,
      security,
    },
    log,
  );
  link.start();
  const asyncInv = await startAsync(cfg, id, proxyPort, core, proxy, runEffects, clock, log, registry).catch(async (err: unknown) => {
    // No async store (e.g. Redis down): fail the start without leaving the listeners open.
    timed.close();
    link.close();
    await closeServer(proxy.server);
    await closeServer(internal);
    await proxy.close();
    stopLoopDelay();
    throw err;
  });
  const compat = await startAsyncCompat(cfg, withPeerReads(asyncInv.service, asyncInv.peers), coreAuthorizer(core, cfg.auth === 'none' ? 'none' : 'token'), log, tls).catch(async (err: unknown) => {
    await asyncInv.close();
    timed.close();
    link.close();
    await closeServer(proxy.server);
    await closeServer(internal);
    await proxy.close();
    stopLoopDelay();
    throw err;
  });
  proxy.compatSubmit = compat.submit;
  const proxyThreads = resolveProxyThreads(cfg.proxyThreads, availableParallelism());
  if (proxyThreads > 1) {
    delegateServer = proxy.delegateListener();
    const delegatePort = await listen(delegateServer, 0, '127.0.0.1');
    hub = new ProxyHub(core, newWaiter);
    core.trackQueued = true;
    processes = new ProxyProcesses({ count: proxyThreads - 1, cfg, listener: proxy.server, delegateAddress: `127.0.0.1:${delegatePort}`, core, hub, run: runEffects, clock, log });
    processes.start();
  }
  proxy.starting = false;
  log.info('data_plane.started', { id, proxy: `${cfg.host}:${proxyPort}`, internal: `${cfg.internalHost}:${internalPort}`, controlPlane: cfg.controlPlane, loadBalancing: cfg.loadBalancing, auth: cfg.auth, proxyThreads });
  return {
    proxyPort,
    internalPort,
    core,
    proxyPids: () => processes?.pids ?? [],
    async close() {
      await processes?.close();
      if (delegateServer) await closeServer(delegateServer);
      await compat.close();
      await asyncInv.close();
      timed.close();
      link.close();
      await closeServer(proxy.server);
      await closeServer(internal);
      await proxy.close();
      stopLoopDelay();
    },
  };
}

/** Invocation auth may be off only where nobody but this machine can reach the port. */
export function checkAuthHost(cfg: Pick<DataPlaneConfig, 'auth' | 'host'>): void {
  if (cfg.auth === 'none' && !isLoopbackHost(cfg.host)) {
    throw new ConfigError(`data plane: auth none is allowed only on a loopback host (127.0.0.0/8, ::1, localhost), got host ${cfg.host}; use auth token`);
  }
}

/** Carries out what a core call returned: proxy work, drain acks, the first-demand report. */
function effectRunner(
  core: DataPlaneCore, log: Logger, proxy: () => InvocationProxy, link: () => ControlPlaneLink, processes: () => ProxyProcesses | null, wakeTimers: () => void,
): (effects: DpEffect[]) => void {
  let coldReportScheduled = false;
  const reportFirstDemand = guarded(log, 'timer', 'first_demand', () => {
    coldReportScheduled = false;
    const functions = core.firstDemandReport();
    if (functions.length > 0) link().send({ case: 'demand', value: { functions, firstDemand: true } });
  });
  return (effects) => {
    const sandboxIds: string[] = [];
    for (const fx of effects) {
      if (fx.kind === 'dispatch' && isAsyncWaiter(fx.waiter)) fx.waiter.onDispatch();
      else if (fx.kind === 'dispatch' && isHubWaiter(fx.waiter)) processes()!.dispatched(fx.waiter);
      else if (fx.kind === 'dispatch') proxy().start(fx.waiter as Parameters<InvocationProxy['start']>[0]);
      else if (fx.kind === 'fail' && isAsyncWaiter(fx.waiter)) fx.waiter.onFail(fx.status, fx.code, fx.message);
      else if (fx.kind === 'fail' && isHubWaiter(fx.waiter)) processes()!.failed(fx.waiter, fx.status, fx.code, fx.message);
      else if (fx.kind === 'fail') proxy().fail(fx.waiter, fx.status, fx.code, fx.message);
      else if (fx.kind === 'close_pool') proxy().closePool(fx.endpoint);
      else if (fx.kind === 'drained') sandboxIds.push(fx.sandboxId);
      else if (fx.kind === 'timed_work') wakeTimers();
      else if (!coldReportScheduled) {
        // One first-demand report per event-loop turn, so a burst arriving together goes whole.
        coldReportScheduled = true;
        setImmediate(reportFirstDemand);
      }
    }
    const p = processes();
    if (p) {
      const queued = core.takeNewlyQueued();
      if (queued.length > 0) p.recall(queued);
    }
    if (sandboxIds.length > 0) {
      log.info('sandbox.drained', { sandboxIds });
      link().send({ case: 'drained', value: { sandboxIds } }, true);
    }
  };
}

function createInternalServer(core: DataPlaneCore, metrics: client.Registry, connected: () => boolean, proxyProcesses: () => number): HttpServer {
  return createServer((req, res) => {
    const target = splitTarget(req.url ?? '');
    if (target?.path === '/health') {
      const ok = connected();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: ok ? 'ok' : 'control plane unreachable', routingVersion: core.version, proxyProcesses: proxyProcesses() }));
    } else if (target?.path === '/metrics') {
      serveMetrics(metrics, target.query, res);
    } else {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'not_found', message: 'try /health or /metrics' } }));
    }
  });
}

function listen(server: Server | HttpServer, port: number, host: string, fd = -1): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenOptions(host, port, fd), () => resolve((server.address() as { port: number }).port));
  });
}

function closeServer(server: Server | HttpServer): Promise<void> {
  if ('closeAllConnections' in server) server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function createMetrics(core: DataPlaneCore, proxy: InvocationProxy, hub: () => ProxyHub | null, processes: () => ProxyProcesses | null) {
  const registry = new client.Registry();
  collectProcessMetrics(registry, defaultMetricsPrefix.dataPlane);
  new client.Gauge({
    name: 'dirigent_dp_inflight', help: 'Requests in flight to sandboxes', registers: [registry],
    collect() { this.set(core.inflightTotal); },
  });
  new client.Gauge({
    name: 'dirigent_dp_queued', help: 'Requests waiting for a sandbox', registers: [registry],
    collect() { this.set(core.queuedTotal); },
  });
  new client.Gauge({
    name: 'dirigent_dp_endpoints', help: 'Routable sandboxes', registers: [registry],
    collect() { this.set(core.endpoints.size); },
  });
  new client.Gauge({
    name: 'dirigent_dp_proxy_process_requests', help: 'Requests each proxy process (--proxy-threads) asked this primary a slot for since it started (a request on a slot the process held is not counted)', labelNames: ['process'], registers: [registry],
    collect() { for (const [k, n] of hub()?.admitted ?? []) this.set({ process: String(k) }, n); },
  });
  new client.Gauge({
    name: 'dirigent_dp_proxy_process_ipc', help: 'Messages to and from the proxy processes and the batches carrying them (one IPC write or read per batch)',
    labelNames: ['direction', 'unit'], registers: [registry],
    collect() {
      const c = processes()?.ipc;
      if (!c) return;
      this.set({ direction: 'out', unit: 'batches' }, c.batchesOut);
      this.set({ direction: 'out', unit: 'messages' }, c.messagesOut);
      this.set({ direction: 'in', unit: 'batches' }, c.batchesIn);
      this.set({ direction: 'in', unit: 'messages' }, c.messagesIn);
    },
  });
  registerLeanHttpGauge(registry, 'dirigent_dp_lean_http',
    "The lean HTTP/1.1 path of this process's invocation port: requests it served, and connections it handed to Node's server by reason",
    () => proxy.leanStats());
  new client.Gauge({
    name: 'dirigent_dp_routing_version', help: 'Routing table version applied', registers: [registry],
    collect() { this.set(core.version); },
  });
  return registry;
}

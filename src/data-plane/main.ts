/**
 * @module data-plane/main
 * Wires the data-plane core to the proxy, the CP link, timers (demand reports, queue expiry)
 * and the internal server (:8081, `/health` and `/metrics`).
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { Server } from 'node:net';
import client from 'prom-client';
import type { DataPlaneConfig } from '../config/compile.js';
import { ConfigError } from '../config/compile.js';
import { lbPolicyNames, type LbPolicyName } from '../policy/load-balancing/lb.js';
import { systemClock } from '../shared/clock.js';
import { Batcher } from '../shared/grpc.js';
import type { Logger } from '../shared/logger.js';
import { seededRng } from '../shared/rng.js';
import { DataPlaneCore } from './core/data-plane.js';
import { ControlPlaneLink } from './shell/cp-link.js';
import { InvocationProxy } from './shell/proxy.js';

export interface RunningDataPlane {
  proxyPort: number;
  internalPort: number;
  core: DataPlaneCore;
  close(): Promise<void>;
}

/** Demand reports are polled this many times per period, so each batch stays small. */
const demandPollsPerPeriod = 10;
const demandPollMsMin = 20;
/** How often queued requests are checked against the wait limit. */
const expiryPeriodMs = 50;

export async function startDataPlane(cfg: DataPlaneConfig, log: Logger): Promise<RunningDataPlane> {
  const clock = systemClock;
  const core = new DataPlaneCore(
    { queueDepthMax: cfg.queueDepthMax, queueWaitMsMax: cfg.queueWaitMsMax, loadBalancing: toLbPolicy(cfg.loadBalancing) },
    seededRng(Math.floor(Math.random() * 2 ** 31)),
    log,
  );
  let link: ControlPlaneLink;
  let coldReportScheduled = false;
  // Carries out whatever the last core call left in its outboxes.
  const afterCoreCall = (): void => {
    if (core.dispatched.length > 0) {
      const d = core.dispatched;
      core.dispatched = [];
      for (const w of d) proxy.start(w as Parameters<InvocationProxy['start']>[0]);
    }
    if (core.failed.length > 0) {
      const f = core.failed;
      core.failed = [];
      for (const x of f) proxy.fail(x.waiter, x.status, x.code, x.message);
    }
    if (core.retired.length > 0) {
      for (const ep of core.retired) proxy.closePool(ep);
      core.retired = [];
    }
    if (core.drained.length > 0) {
      link.send({ case: 'drained', value: { sandboxIds: core.drained } });
      core.drained = [];
    }
    if (core.firstDemand.size > 0 && !coldReportScheduled) {
      // One report per event-loop turn, so a burst arriving together is reported whole.
      coldReportScheduled = true;
      setImmediate(() => {
        coldReportScheduled = false;
        const functions = core.firstDemandReport();
        if (functions.length > 0) link.send({ case: 'demand', value: { functions, firstDemand: true } });
      });
    }
  };
  const proxy = new InvocationProxy(core, cfg, clock, log, afterCoreCall);
  const proxyPort = await listen(proxy.server, cfg.proxyPort, cfg.host);
  const metrics = createMetrics(core);
  const internal = createServer(async (req, res) => {
    if (req.url === '/health') {
      const ok = link.connected;
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: ok ? 'ok' : 'control plane unreachable', routingVersion: core.version }));
    } else if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': metrics.contentType });
      res.end(await metrics.metrics());
    } else {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'not_found', message: 'try /health or /metrics' } }));
    }
  });
  const internalPort = await listen(internal, cfg.internalPort, cfg.host);
  const id = cfg.id || `dp-${cfg.host}-${proxyPort}`;
  // One ack per event-loop turn, carrying the latest applied version.
  const ack = new Batcher<number>((versions) => link.send({ case: 'ack', value: { version: Math.max(...versions) } }));
  link = new ControlPlaneLink(
    {
      address: cfg.controlPlane,
      hello: { dataPlaneId: id, proxyAddress: `${cfg.host}:${proxyPort}`, internalAddress: `${cfg.host}:${internalPort}` },
      backoffMs: cfg.reconnectBackoffMs,
      onUpdate: (u) => {
        if (!core.applyRouting(u, clock.nowMs())) link.send({ case: 'resync', value: { haveVersion: core.version } });
        else ack.push(core.version);
        afterCoreCall();
      },
    },
    log,
  );
  link.start();
  const demandTimer = setInterval(() => {
    const functions = core.takeDemand(clock.nowMs(), cfg.demandReportPeriodMs);
    if (functions.length > 0) link.send({ case: 'demand', value: { functions, firstDemand: false } });
  }, Math.max(demandPollMsMin, cfg.demandReportPeriodMs / demandPollsPerPeriod));
  const expiryTimer = setInterval(() => {
    core.expire(clock.nowMs());
    afterCoreCall();
  }, expiryPeriodMs);
  log.info('data_plane.started', { id, proxy: `${cfg.host}:${proxyPort}`, internal: `${cfg.host}:${internalPort}`, controlPlane: cfg.controlPlane, loadBalancing: cfg.loadBalancing });
  return {
    proxyPort,
    internalPort,
    core,
    async close() {
      clearInterval(demandTimer);
      clearInterval(expiryTimer);
      link.close();
      await closeServer(proxy.server);
      await closeServer(internal);
      await proxy.close();
    },
  };
}

function toLbPolicy(name: string): LbPolicyName {
  const found = lbPolicyNames.find((p) => p === name);
  if (!found) throw new ConfigError(`data plane: loadBalancing must be one of ${lbPolicyNames.join(', ')}, got ${name}`);
  return found;
}

function listen(server: Server | HttpServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as { port: number }).port));
  });
}

function closeServer(server: Server | HttpServer): Promise<void> {
  if ('closeAllConnections' in server) server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function createMetrics(core: DataPlaneCore) {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'dirigent_dp_' });
  new client.Gauge({
    name: 'dirigent_dp_inflight', help: 'Requests in flight to sandboxes', registers: [registry],
    collect() { let n = 0; for (const f of core.functions.values()) n += f.inflight; this.set(n); },
  });
  new client.Gauge({
    name: 'dirigent_dp_queued', help: 'Requests waiting for a sandbox', registers: [registry],
    collect() { let n = 0; for (const f of core.functions.values()) n += f.queued; this.set(n); },
  });
  new client.Gauge({
    name: 'dirigent_dp_endpoints', help: 'Routable sandboxes', registers: [registry],
    collect() { this.set(core.endpoints.size); },
  });
  new client.Gauge({
    name: 'dirigent_dp_routing_version', help: 'Routing table version applied', registers: [registry],
    collect() { this.set(core.version); },
  });
  return registry;
}

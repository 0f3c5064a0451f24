/**
 * The invocation proxy in-process for integration tests: the real DataPlaneCore and
 * InvocationProxy, routing applied directly to the core, and a real upstream HTTP server on
 * loopback whose handler the test sets. Used by proxy.test and lean-proxy.test.
 */
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FunctionSpecMsg, RoutingUpdateMsg } from '../api/cluster.js';
import { dataPlaneDefaults } from '../config/defaults.js';
import { DataPlaneCore, type DpEffect } from '../data-plane/core/data-plane.js';
import { InvocationProxy, type ProxyConfig } from '../data-plane/shell/proxy.js';
import { systemClock } from '../shared/clock.js';
import { silentLogger } from '../shared/logger.js';
import { seededRng } from '../shared/rng.js';

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export const bodyBytesMax = 6 * 1_048_576;
export const headersTimeoutMs = 300;

export class ProxyRig {
  constructor(private readonly httpParser: 'lean' | 'node' = 'lean', private readonly overrides: Partial<ProxyConfig> = {}) {}
  readonly core = new DataPlaneCore({ queueDepthMax: 100, queueWaitMsMax: 10_000, loadBalancing: 'least-loaded' }, seededRng(1), silentLogger);
  readonly drained: string[] = [];
  readonly upstreamSeen: { path: string; closedEarly: boolean; bytes: number; headers: IncomingMessage['headers'] }[] = [];
  handler: Handler = (_req, res) => res.end('ok');
  proxy!: InvocationProxy;
  upstream!: Server;
  proxyPort = 0;
  upstreamPort = 0;
  private version = 0;

  async start(): Promise<void> {
    const cfg: ProxyConfig = {
      ...dataPlaneDefaults, requestBodyBytesMax: bodyBytesMax, invocationHeadersTimeoutMs: headersTimeoutMs, httpParser: this.httpParser,
      ...this.overrides,
    };
    this.proxy = new InvocationProxy(this.core, cfg, systemClock, silentLogger, (fx) => this.run(fx));
    this.upstream = createServer((req, res) => {
      const seen = { path: req.url ?? '', closedEarly: false, bytes: 0, headers: req.headers };
      this.upstreamSeen.push(seen);
      req.on('data', (b: Buffer) => { seen.bytes += b.length; });
      res.on('close', () => { if (!res.writableFinished) seen.closedEarly = true; });
      this.handler(req, res);
    });
    this.upstreamPort = await listen(this.upstream);
    this.proxyPort = await listen(this.proxy.server);
  }

  route(timeoutMs = 10_000, concurrency = 1): void {
    this.routeTo([['s1', `127.0.0.1:${this.upstreamPort}`]], timeoutMs, concurrency);
  }

  /** A snapshot with function f on these sandboxes ([id, address]). */
  routeTo(sandboxes: [string, string][], timeoutMs = 10_000, concurrency = 1): void {
    const spec: FunctionSpecMsg = {
      name: 'f', uid: 'u1', generation: 1, image: '', command: ['x'], port: 0, env: {}, egress: false, auth: 'none', concurrency, timeoutMs, workingDir: '',
    };
    const endpoints = sandboxes.map(([sandboxId, address]) => ({ sandboxId, function: 'f', functionUid: 'u1', address, workerId: 'w' }));
    this.apply({ case: 'snapshot', value: { version: ++this.version, functions: [spec], endpoints, drainEndpoints: [], tokens: [] } });
  }

  addSandbox(id: string, address: string): void {
    const empty = { upsertFunctions: [], deleteFunctions: [], removeEndpoints: [], drainEndpoints: [], failures: [], upsertTokens: [], revokeTokens: [] };
    this.apply({ case: 'delta', value: { ...empty, version: ++this.version, addEndpoints: [{ sandboxId: id, function: 'f', functionUid: 'u1', address, workerId: 'w' }] } });
  }

  apply(u: RoutingUpdateMsg): void {
    const r = this.core.applyRouting(u, systemClock.nowMs());
    assert.ok(r.ok);
    this.run(r.effects);
    this.proxy.routingApplied();
  }

  deleteF(): void {
    const empty = { upsertFunctions: [], addEndpoints: [], removeEndpoints: [], failures: [], upsertTokens: [], revokeTokens: [] };
    this.apply({ case: 'delta', value: { ...empty, version: ++this.version, drainEndpoints: ['s1'], deleteFunctions: [{ name: 'f', uid: 'u1' }] } });
  }

  inflight(): number {
    return this.core.functions.get('f')?.inflight ?? -1;
  }

  async stop(): Promise<void> {
    this.upstream.closeAllConnections();
    await new Promise((r) => this.upstream.close(r));
    await new Promise((r) => this.proxy.server.close(r));
    await this.proxy.close();
  }

  private run(effects: DpEffect[]): void {
    for (const fx of effects) {
      if (fx.kind === 'dispatch') this.proxy.start(fx.waiter as Parameters<InvocationProxy['start']>[0]);
      else if (fx.kind === 'fail') this.proxy.fail(fx.waiter, fx.status, fx.code, fx.message);
      else if (fx.kind === 'close_pool') this.proxy.closePool(fx.endpoint);
      else if (fx.kind === 'drained') this.drained.push(fx.sandboxId);
    }
  }
}

export function listen(server: Server | import('node:net').Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

export interface Answer { status: number; body: string; error?: string }

/** A request to the proxy; `onRequest` gets the client request to write, abort or end. */
export function call(port: number, opts: { path?: string; method?: string; headers?: Record<string, string | number>; body?: Buffer; expectContinue?: boolean } = {}): Promise<Answer> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: `/function/f${opts.path ?? '/'}`, method: opts.method ?? (opts.body ? 'POST' : 'GET'), headers: opts.headers, agent: false });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (e) => resolve({ status: res.statusCode ?? 0, body, error: e.message }));
    });
    req.on('error', (e) => resolve({ status: 0, body: '', error: e.message }));
    if (opts.expectContinue) req.on('continue', () => req.end(opts.body));
    else req.end(opts.body);
  });
}


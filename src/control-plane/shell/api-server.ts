/**
 * @module control-plane/shell/api-server
 * The management API of DESIGN §8 on :9091 (JSON), plus the Dirigent-compatible form
 * registration on `/` and `/registerService` so tools written for Dirigent (InVitro) work.
 * Every route but the health checks needs a bearer token (api-auth); a standby forwards
 * requests with their Authorization header and only the leader authenticates them.
 *
 * Requests are read on the shared lean HTTP/1.1 path (shared/http1/lean-h1: no Node request
 * and response streams per call; issue 12, part 5), over plain TCP or TLS alike; what it does not
 * take (a body over 64 KiB, chunked, HTTP/1.0, ...) and every connection to a standby, which
 * forwards request streams, go to Node's server with the connection.
 */
import { createServer, request as httpRequest, type IncomingMessage, type RequestOptions, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { pipeline } from 'node:stream';
import { ErrorCode } from '../../api/types.js';
import { apiDefaults } from '../../config/defaults.js';
import { systemClock } from '../../shared/clock.js';
import { runGuardedAs } from '../../shared/guard.js';
import { LeanConnections, LeanRequest, type LeanHost, type LeanStats } from '../../shared/http1/lean-h1.js';
import { startLeanListener } from '../../shared/http1/lean-listener.js';
import type { Logger } from '../../shared/logger.js';
import { answerClientError } from '../../shared/http-client-error.js';
import { metricsSelection } from '../../shared/metrics-select.js';
import type { ServerTls } from '../../shared/grpc.js';
import type { Tenancy } from './api-auth.js';
import { methodNotAllowed, requireScope, type ApiBackend, type RequestContext } from './api-context.js';
import { createFunctionForm, createFunctionJson, functionItem, listFunctions } from './api-functions.js';
import { namespaceRoutes } from './api-namespaces.js';
import { tokenRoutes } from './api-tokens.js';
import { clusterViewOptionsOf } from './cluster-view.js';
import { decodePathSegment, HttpError, parseTarget, sendError, sendJson, type ApiRequest, type ApiResponse } from './http-util.js';

export type { ApiBackend } from './api-context.js';

/** Requests a standby answers itself; everything else is the leader's business. */
const localPaths = new Set(['/health', '/health/leader', '/metrics']);
/** Longest wait for the leader's answer to a forwarded request. */
const forwardTimeoutMs = 30_000;
/** Connection timeouts, on both paths: Node's server defaults, with a keep-alive past 60 s load balancers. */
const apiKeepAliveTimeoutMs = 65_000;
const apiHeadersTimeoutMs = 60_000;
const apiRequestTimeoutMs = 300_000;
/** How often the lean path checks its connections' timeouts. */
const apiLeanSweepPeriodMs = 1_000;
/** Largest body the lean path reads whole (a registration is ~1 KiB); a larger one streams through Node. */
const apiLeanBodyBytesMax = 65_536;

const functionPath = /^\/v1\/functions\/([^/]+)$/;

export interface ApiServerOptions {
  host: string;
  port: number;
  /** An inherited socket bound to the API port, listened on instead of host:port (-1 or absent: none). */
  fd?: number;
  bodyBytesMax: number;
  /** Defaults: config/defaults.ts apiDefaults. */
  bodyDiscardBytesMax?: number;
  jsonNestingDepthMax?: number;
  backend: ApiBackend;
  /** Tokens and quotas; the leader's is loaded in lead(). */
  tenancy: Tenancy;
  log: Logger;
  /** Serve HTTPS with this certificate (absent: plain HTTP). */
  tls?: ServerTls | null;
  /** With tls: the CA the leader's certificate chains to, for forwarding (null: system roots). */
  leaderCaPem?: Buffer | null;
}

type RouteContext = Omit<RequestContext, 'req' | 'res' | 'method' | 'query' | 'principal'> & {
  /** How a standby reaches the leader: plain HTTP, or HTTPS trusting this CA. */
  leaderLink: { https: boolean; ca: Buffer | null };
};

/** A listening management API. */
export interface ApiServer {
  readonly port: number;
  /** What the lean path did. */
  readonly lean: LeanStats;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

export function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const ctx: RouteContext = {
    limits: {
      bodyBytesMax: opts.bodyBytesMax,
      bodyDiscardBytesMax: opts.bodyDiscardBytesMax ?? apiDefaults.bodyDiscardBytesMax,
    },
    jsonNestingDepthMax: opts.jsonNestingDepthMax ?? apiDefaults.jsonNestingDepthMax,
    backend: opts.backend,
    tenancy: opts.tenancy,
    leaderLink: { https: Boolean(opts.tls), ca: opts.leaderCaPem ?? null },
  };
  const handler = (req: ApiRequest, res: ApiResponse): void => {
    route(req, res, ctx).catch((err: unknown) => {
      if (res.headersSent) return;
      if (err instanceof HttpError) {
        // An unread or partly read body must not be taken for the next request.
        if (!(req instanceof LeanRequest) && !req.complete) res.setHeader('connection', 'close');
        sendError(res, err.status, err.code, err.message, err.field);
        return;
      }
      opts.log.error('api.failed', { method: req.method, url: req.url, error: String(err) });
      sendError(res, 500, 'internal', 'internal error; see control-plane log');
    });
  };
  // Node's server never listens itself: the TCP listener hands it the connections the lean path
  // does not keep.
  const h1 = createServer({ keepAlive: true, noDelay: true }, handler);
  withTimeouts(h1);
  const host: LeanHost = {
    name: 'api',
    guard: (kind, event, fn) => runGuardedAs('cp', opts.log, kind, event, fn),
    // A standby streams requests to the leader: Node's request objects do that.
    accepts: () => (opts.backend.leaderApi?.() ?? null) === null,
    serve: handler,
    handOff: (socket) => h1.emit('connection', socket),
  };
  const lean = new LeanConnections(host, { bodyBytesMax: Math.min(apiLeanBodyBytesMax, opts.bodyBytesMax) }, {
    headersTimeoutMs: apiHeadersTimeoutMs,
    requestTimeoutMs: apiRequestTimeoutMs,
    keepAliveTimeoutMs: apiKeepAliveTimeoutMs,
  }, systemClock, opts.log, apiLeanSweepPeriodMs);
  // The handshake counts against the header timeout, as on the DP's TLS listener.
  const tls = opts.tls ? { certPem: opts.tls.certPem, keyPem: opts.tls.keyPem, handshakeTimeoutMs: apiHeadersTimeoutMs } : null;
  return startLeanListener(lean, h1, opts.host, opts.port, tls, opts.fd ?? -1).then((l) => ({ port: l.port, lean: lean.stats, close: () => l.close() }));
}

function withTimeouts(server: Server): void {
  server.keepAliveTimeout = apiKeepAliveTimeoutMs;
  server.headersTimeout = apiHeadersTimeoutMs;
  server.requestTimeout = apiRequestTimeoutMs;
  server.on('clientError', answerClientError);
}

async function route(req: ApiRequest, res: ApiResponse, opts: RouteContext): Promise<void> {
  const url = parseTarget(req.url ?? '/');
  const path = url.path;
  const method = req.method ?? 'GET';
  const b = opts.backend;
  const leaderApi = b.leaderApi?.() ?? null;
  if (leaderApi !== null && !localPaths.has(path)) {
    // The lean path takes no connection of a standby (accepts); one that was read as this CP
    // lost the lead is answered as any call during a change of leader.
    if (req instanceof LeanRequest) return sendError(res, 503, 'leader_unknown', 'this control plane stopped leading; retry');
    return forward(req, res as ServerResponse, leaderApi, opts.leaderLink);
  }
  if (path === '/health') return sendJson(res, 200, { status: 'ok', ...(b.health?.() ?? { role: 'leader' }) });
  if (path === '/health/leader') {
    const role = b.health?.().role ?? 'leader';
    return sendJson(res, role === 'leader' ? 200 : 503, { role });
  }
  const principal = opts.tenancy.authenticate(req.headers.authorization);
  if (principal === null) {
    res.setHeader('www-authenticate', 'Bearer');
    const given = req.headers.authorization === undefined ? 'no bearer token' : 'an unknown, revoked or malformed bearer token';
    throw new HttpError(401, 'unauthorized', `${given}: send Authorization: Bearer <token> (dirigent token create, or the admin token file)`);
  }
  // Spelled out: on Node 20's V8 each property added after a spread takes a slow path (about
  // 1-3 us each; this line was 17 us of every API call in the registration profile).
  const ctx: RequestContext = {
    limits: opts.limits, jsonNestingDepthMax: opts.jsonNestingDepthMax, backend: b, tenancy: opts.tenancy,
    req, res, method, query: url.query, principal,
  };
  if (path === '/metrics' && method === 'GET') {
    requireScope(principal, 'cluster.read', 'read metrics');
    const selection = metricsSelection(url.query);
    if (selection.kind === 'invalid') throw new HttpError(400, ErrorCode.invalidField, selection.message, selection.field);
    const m = await b.metrics(selection);
    res.writeHead(200, { 'content-type': m.contentType });
    res.end(m.body);
    return;
  }
  if (path === '/v1/cluster' && method === 'GET') {
    requireScope(principal, 'cluster.read', 'read the cluster status');
    const view = clusterViewOptionsOf(url.query);
    if (view.kind === 'invalid') throw new HttpError(400, ErrorCode.invalidField, view.message, view.field);
    return sendJson(res, 200, await b.cluster(view.view));
  }
  if (path === '/v1/functions') {
    if (method === 'GET') return listFunctions(ctx);
    if (method === 'POST') return createFunctionJson(ctx);
    throw methodNotAllowed(method, path);
  }
  const m = functionPath.exec(path);
  if (m) return functionItem(ctx, decodePathSegment(m[1]!, path));
  if (await tokenRoutes(ctx, path)) return;
  if (await namespaceRoutes(ctx, path)) return;
  if (path === '/' || path === '/registerService') {
    if (method !== 'POST') throw methodNotAllowed(method, path);
    return createFunctionForm(ctx);
  }
  throw new HttpError(404, 'not_found', `no route ${method} ${path}`);
}

/**
 * A standby passes a management call to the leader unchanged (method, path, headers, body) and
 * relays its answer, so clients and the front end may talk to any CP (forwarding rather than 307:
 * curl and most HTTP clients do not resend a POST body on a redirect without extra flags).
 */
function forward(req: IncomingMessage, res: ServerResponse, leader: string, link: RouteContext['leaderLink']): Promise<void> {
  if (leader === '') {
    sendError(res, 503, 'leader_unknown', 'no control-plane leader is known yet; retry');
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const [host, port] = [leader.slice(0, leader.lastIndexOf(':')), Number(leader.slice(leader.lastIndexOf(':') + 1))];
    const headers = { ...withoutHopHeaders(req.headers), 'x-dirigent-forwarded-by': 'standby' };
    const options: RequestOptions = { host, port, method: req.method, path: req.url, headers, timeout: forwardTimeoutMs };
    const relay = (answer: IncomingMessage): void => {
      res.writeHead(answer.statusCode ?? 502, withoutHopHeaders(answer.headers));
      pipeline(answer, res, () => resolve());
    };
    // The certificate is checked against the leader's host, not the Host header passed along.
    const tls = { servername: isIP(host) ? '' : host, ...(link.ca ? { ca: link.ca } : {}) };
    const up = link.https ? httpsRequest({ ...options, ...tls }, relay) : httpRequest(options, relay);
    up.on('timeout', () => up.destroy(new Error('leader did not answer in time')));
    up.on('error', (err) => {
      if (!res.headersSent) sendError(res, 503, 'leader_unavailable', `the leader at ${leader} did not answer: ${err.message}; retry`);
      else res.destroy();
      resolve();
    });
    pipeline(req, up, () => undefined);
  });
}

/** Headers about one connection (RFC 9110 §7.6.1) are not passed on by a forwarder. */
const hopHeaders = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade'];

function withoutHopHeaders(headers: IncomingMessage['headers']): IncomingMessage['headers'] {
  const out = { ...headers };
  for (const h of hopHeaders) delete out[h];
  return out;
}

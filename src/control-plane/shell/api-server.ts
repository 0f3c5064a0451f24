/**
 * @module control-plane/shell/api-server
 * The management API of DESIGN §8 on :9091 (JSON), plus the Dirigent-compatible form
 * registration on `/` and `/registerService` so tools written for Dirigent (InVitro) work.
 */
import { createServer, request as httpRequest, type IncomingMessage, type RequestOptions, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { pipeline } from 'node:stream';
import type { FunctionSpec } from '../../api/types.js';
import { parseRegistrationForm } from '../../api/form.js';
import { validateFunctionCreate, validateFunctionPatch } from '../../api/validate.js';
import { apiDefaults } from '../../config/defaults.js';
import type { Logger } from '../../shared/logger.js';
import { answerClientError } from '../../shared/http-client-error.js';
import type { ServerTls } from '../../shared/grpc.js';
import { decodePathSegment, HttpError, parseJson, readBody, requireJson, sendError, sendJson } from './http-util.js';

/** What the API needs from the control plane. */
export interface ApiBackend {
  createFunction(spec: FunctionSpec): Promise<'created' | 'exists'>;
  updateFunction(name: string, patch: (current: FunctionSpec) => FunctionSpec): Promise<boolean>;
  deleteFunction(name: string): Promise<boolean>;
  getFunction(name: string): { function: FunctionSpec; status: unknown } | null;
  listFunctions(): { function: FunctionSpec; status: unknown }[];
  cluster(): unknown;
  dataPlaneAddresses(): string[];
  metrics(): Promise<{ contentType: string; body: string }>;
  /** This CP's role for `GET /health` (absent: a lone CP, always the leader). */
  health?(): { role: 'leader' | 'standby'; term: number; pid: number; id: string };
  /** null while this CP leads; on a standby the leader's API `host:port` ('' = unknown). */
  leaderApi?(): string | null;
}

/** Requests a standby answers itself; everything else is the leader's business. */
const localPaths = new Set(['/health', '/health/leader', '/metrics']);
/** Longest wait for the leader's answer to a forwarded request. */
const forwardTimeoutMs = 30_000;

const functionPath = /^\/v1\/functions\/([^/]+)$/;

export interface ApiServerOptions {
  host: string;
  port: number;
  bodyBytesMax: number;
  /** Defaults: config/defaults.ts apiDefaults. */
  bodyDiscardBytesMax?: number;
  jsonNestingDepthMax?: number;
  backend: ApiBackend;
  log: Logger;
  /** Serve HTTPS with this certificate (absent: plain HTTP). */
  tls?: ServerTls | null;
  /** With tls: the CA the leader's certificate chains to, for forwarding (null: system roots). */
  leaderCaPem?: Buffer | null;
}

interface RouteContext {
  limits: { bodyBytesMax: number; bodyDiscardBytesMax: number };
  jsonNestingDepthMax: number;
  backend: ApiBackend;
  /** How a standby reaches the leader: plain HTTP, or HTTPS trusting this CA. */
  leaderLink: { https: boolean; ca: Buffer | null };
}

export function startApiServer(opts: ApiServerOptions): Promise<Server> {
  const ctx: RouteContext = {
    limits: {
      bodyBytesMax: opts.bodyBytesMax,
      bodyDiscardBytesMax: opts.bodyDiscardBytesMax ?? apiDefaults.bodyDiscardBytesMax,
    },
    jsonNestingDepthMax: opts.jsonNestingDepthMax ?? apiDefaults.jsonNestingDepthMax,
    backend: opts.backend,
    leaderLink: { https: Boolean(opts.tls), ca: opts.leaderCaPem ?? null },
  };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    route(req, res, ctx).catch((err: unknown) => {
      if (res.headersSent) return;
      if (err instanceof HttpError) {
        // An unread or partly read body must not be taken for the next request.
        if (!req.complete) res.setHeader('connection', 'close');
        sendError(res, err.status, err.code, err.message, err.field);
        return;
      }
      opts.log.error('api.failed', { method: req.method, url: req.url, error: String(err) });
      sendError(res, 500, 'internal', 'internal error; see control-plane log');
    });
  };
  const server = opts.tls ? createHttpsServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, handler) : createServer(handler);
  server.keepAliveTimeout = 65_000;
  server.on('clientError', answerClientError);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve(server));
  });
}

async function route(req: IncomingMessage, res: ServerResponse, opts: RouteContext): Promise<void> {
  const path = pathOf(req.url ?? '/');
  const method = req.method ?? 'GET';
  const b = opts.backend;
  const leaderApi = b.leaderApi?.() ?? null;
  if (leaderApi !== null && !localPaths.has(path)) return forward(req, res, leaderApi, opts.leaderLink);
  if (path === '/health') return sendJson(res, 200, { status: 'ok', ...(b.health?.() ?? { role: 'leader' }) });
  if (path === '/health/leader') {
    const role = b.health?.().role ?? 'leader';
    return sendJson(res, role === 'leader' ? 200 : 503, { role });
  }
  if (path === '/metrics' && method === 'GET') {
    const m = await b.metrics();
    res.writeHead(200, { 'content-type': m.contentType });
    res.end(m.body);
    return;
  }
  if (path === '/v1/cluster' && method === 'GET') return sendJson(res, 200, await b.cluster());
  if (path === '/v1/functions') {
    if (method === 'GET') return sendJson(res, 200, { functions: b.listFunctions() });
    if (method === 'POST') return createJson(req, res, opts);
    throw methodNotAllowed(method, path);
  }
  const m = functionPath.exec(path);
  if (m) return functionItem(req, res, decodePathSegment(m[1]!, path), opts);
  if (path === '/' || path === '/registerService') {
    if (method !== 'POST') throw methodNotAllowed(method, path);
    return createForm(req, res, opts);
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

/** The path of a request target, still percent-encoded (segments are decoded one by one). */
function pathOf(target: string): string {
  try {
    return new URL(target, 'http://api').pathname;
  } catch {
    throw new HttpError(400, 'invalid_path', `request target ${JSON.stringify(target.slice(0, 200))} is not a valid URL path`, 'path');
  }
}

async function readJson(req: IncomingMessage, opts: RouteContext): Promise<unknown> {
  requireJson(req);
  return parseJson(await readBody(req, opts.limits), opts.jsonNestingDepthMax);
}

async function createJson(req: IncomingMessage, res: ServerResponse, opts: RouteContext): Promise<void> {
  const body = await readJson(req, opts);
  const v = validateFunctionCreate(body);
  if (!v.ok) throw new HttpError(400, v.error.code, v.error.message, v.error.field);
  if ((await opts.backend.createFunction(v.value)) === 'exists') {
    throw new HttpError(409, 'already_exists', `function ${v.value.name} already exists`, 'name');
  }
  sendJson(res, 201, opts.backend.getFunction(v.value.name));
}

async function createForm(req: IncomingMessage, res: ServerResponse, opts: RouteContext): Promise<void> {
  const v = parseRegistrationForm(await readBody(req, opts.limits));
  if (!v.ok) throw new HttpError(400, v.error.code, v.error.message, v.error.field);
  if ((await opts.backend.createFunction(v.value)) === 'exists') {
    res.writeHead(409, { 'content-type': 'text/plain' });
    res.end('Failed to register service.');
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(opts.backend.dataPlaneAddresses().join(';'));
}

async function functionItem(
  req: IncomingMessage,
  res: ServerResponse,
  name: string,
  opts: RouteContext,
): Promise<void> {
  const b = opts.backend;
  const method = req.method ?? 'GET';
  if (method === 'GET') {
    const item = b.getFunction(name);
    if (!item) throw notFound(name);
    return sendJson(res, 200, item);
  }
  if (method === 'DELETE') {
    if (!(await b.deleteFunction(name))) throw notFound(name);
    res.writeHead(204);
    res.end();
    return;
  }
  if (method === 'PATCH') {
    const body = await readJson(req, opts);
    let failure: HttpError | null = null;
    const found = await b.updateFunction(name, (current) => {
      const v = validateFunctionPatch(current, body);
      if (v.ok) return v.value;
      failure = new HttpError(400, v.error.code, v.error.message, v.error.field);
      return current;
    });
    if (failure) throw failure;
    if (!found) throw notFound(name);
    return sendJson(res, 200, b.getFunction(name));
  }
  throw methodNotAllowed(method, `/v1/functions/${name}`);
}

function notFound(name: string): HttpError {
  return new HttpError(404, 'not_found', `function ${name} not found`, 'name');
}

function methodNotAllowed(method: string, path: string): HttpError {
  return new HttpError(405, 'method_not_allowed', `${method} is not allowed on ${path}`);
}

/**
 * @module data-plane/async/compat
 * The reference Dirigent's async mode (issue #11 part 2), so InVitro's async driver works
 * unchanged. With `asyncMode: all` every request on the proxy port is stored through the
 * AsyncService and answered 200 with the invocation id as a plain-text body (the reference's
 * "code"); results are read on `asyncResultsPort` by sending the id as the request body:
 * 200 with the function's body when done, 204 while queued or running.
 *
 * Differences from the reference, on purpose: an unknown (or garbage-collected) id is a 404
 * instead of an endless 204, and a dead invocation without a response answers 200 with
 * "dead: <reason>" (the reference writes "Server failed many times"). The function's own
 * status and our status ride along in headers the driver ignores.
 */
import type { SubmitInput, SubmitResult } from './service.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { ServerTls } from '../../shared/grpc.js';
import { ConfigError } from '../../config/compile.js';
import type { Logger } from '../../shared/logger.js';
import { forwardHeaders, resolveFunction, sendError } from '../shell/http-util.js';
import { bearerOf, sha256Hex, tokenId } from '../../shared/secrets.js';
import type { DataPlaneCore, InvokeVerdict } from '../core/data-plane.js';
import { submitTokenHeader, submitTokenOf } from './submit-token.js';
import type { AsyncInvocation } from './types.js';
import { OwnerUnavailable } from './peer-forward.js';

/**
 * The invocation auth of the proxy, for a request that bypasses it: the verdict for a function
 * key and the request's Authorization header.
 */
export type Authorize = (functionKey: string, authorization: string | undefined) => InvokeVerdict;

/** Everything allowed: a DP with `auth: none` (loopback only, see checkAuthHost). */
export const allowAll: Authorize = () => 'allowed';

/** The same check as the proxy's: only `auth: token` functions need a bearer token of theirs. */
export function coreAuthorizer(core: Pick<DataPlaneCore, 'functions' | 'invokeVerdict'>, auth: 'token' | 'none'): Authorize {
  if (auth === 'none') return allowAll;
  return (functionKey, authorization) => {
    const fn = core.functions.get(functionKey);
    if (fn === undefined || fn.spec.auth !== 'token') return 'allowed';
    const bearer = bearerOf(authorization);
    const id = bearer === null ? null : tokenId(bearer);
    return core.invokeVerdict(fn, id === null ? null : { id, sha256Hex: sha256Hex(bearer!) });
  };
}

/** What AsyncService.submit takes and answers: the service's own types. */
export type CompatSubmitInput = SubmitInput;
export type CompatSubmitResult = SubmitResult;

/** The part of AsyncService this module uses; the real service satisfies it. */
export interface AsyncServicePort {
  submit(input: CompatSubmitInput, nowMs: number): Promise<CompatSubmitResult>;
  get(id: string): Promise<AsyncInvocation | undefined>;
}

export interface CompatOptions {
  host: string;
  /** 0 = any free port (tests). */
  asyncResultsPort: number;
  asyncBodyBytesMax: number;
  /** Default: allowAll. */
  authorize?: Authorize;
}

/** A results-port request carries only an id: anything longer is not one. */
const resultRequestBytesMax = 1_024;
export const asyncStatusHeader = 'x-dirigent-async-status';
export const functionStatusHeader = 'x-dirigent-function-status';

/** Wall time for ids and event age; the caller passes it so tests can fix it. */
export type WallClock = () => number;

/** Request handler for the proxy port in compatibility mode: store, then 200 with the id. */
export function compatSubmitHandler(service: AsyncServicePort, opts: CompatOptions, wallNowMs: WallClock, log: Logger) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    void submitOne(service, opts, wallNowMs, req, res).catch((err: unknown) => {
      log.warn('async_compat.submit_failed', { error: err instanceof Error ? err.message : String(err) });
      sendError(res, 503, 'async_store_unavailable', 'the async store did not take the invocation');
    });
  };
}

async function submitOne(service: AsyncServicePort, opts: CompatOptions, wallNowMs: WallClock, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const route = resolveFunction(req);
  if (!route) {
    sendError(res, 404, 'function_not_found', 'no function named: use the Host header or /function/<name>/');
    return;
  }
  const verdict = (opts.authorize ?? allowAll)(route.fn, req.headers.authorization);
  if (verdict !== 'allowed') {
    req.resume();
    if (verdict === 'unauthorized') res.setHeader('www-authenticate', 'Bearer');
    sendError(res, verdict === 'unauthorized' ? 401 : 403, verdict, verdict === 'unauthorized'
      ? `function ${route.fn} needs a bearer token that may invoke it` : `this token may not invoke function ${route.fn}`);
    return;
  }
  const body = await readLimited(req, opts.asyncBodyBytesMax);
  if (body === null) {
    res.setHeader('connection', 'close');
    sendError(res, 413, 'async_body_too_large', `request body exceeds asyncBodyBytesMax (${opts.asyncBodyBytesMax} bytes)`);
    return;
  }
  const headers = singleValued(forwardHeaders(req));
  // The token was checked here: the function never sees it, and the store never keeps it. As on
  // the normal async path, its id and digest stay, so each attempt checks it again.
  delete headers.authorization;
  delete headers[submitTokenHeader];
  const submitToken = (opts.authorize ?? allowAll) === allowAll ? undefined : submitTokenOf(req.headers.authorization);
  if (submitToken !== undefined) headers[submitTokenHeader] = submitToken;
  const question = route.path.indexOf('?');
  const result = await service.submit({
    functionKey: route.fn,
    method: req.method ?? 'GET',
    path: question < 0 ? route.path : route.path.slice(0, question),
    query: question < 0 ? '' : route.path.slice(question + 1),
    headers,
    body,
    ...(headers['idempotency-key'] ? { idempotencyKey: headers['idempotency-key'] } : {}),
    ...(headers['x-callback-url'] ? { callbackUrl: headers['x-callback-url'] } : {}),
  }, wallNowMs());
  if (result.kind === 'refused') {
    sendError(res, result.status, result.code, result.message);
    return;
  }
  sendText(res, 200, result.id, {});
}

/** Request handler for the results port: the body is an id. */
export function compatResultsHandler(service: AsyncServicePort, log: Logger) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    void readResult(service, req, res).catch((err: unknown) => {
      // Another DP holds it (per-DP store) and did not answer: not lost, only unreachable.
      if (err instanceof OwnerUnavailable) return sendError(res, 503, 'owner_unavailable', err.message);
      log.warn('async_compat.read_failed', { error: err instanceof Error ? err.message : String(err) });
      sendError(res, 503, 'async_store_unavailable', 'the async store could not be read');
    });
  };
}

async function readResult(service: AsyncServicePort, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readLimited(req, resultRequestBytesMax);
  const id = body === null ? '' : Buffer.from(body).toString('utf8').trim();
  if (!/^[0-9a-z-]{1,200}$/i.test(id)) {
    sendError(res, 400, 'invalid_invocation_id', 'send the invocation id (the body the proxy port answered) as the request body');
    return;
  }
  const inv = await service.get(id);
  if (inv === undefined) {
    sendError(res, 404, 'invocation_not_found', `no invocation ${id} (unknown, or dropped after the retention time)`);
    return;
  }
  res.setHeader(asyncStatusHeader, inv.status);
  if (inv.status === 'queued' || inv.status === 'running') {
    res.writeHead(204);
    res.end();
    return;
  }
  if (inv.result) {
    res.setHeader(functionStatusHeader, String(inv.result.statusCode));
    sendBytes(res, 200, inv.result.body, inv.result.headers['content-type'] ?? 'application/octet-stream');
    return;
  }
  sendText(res, 200, `${inv.status}: ${inv.deadReason ?? 'no response'}`, {});
}

export interface RunningResultsServer {
  port: number;
  server: Server;
  close(): Promise<void>;
}

/**
 * Starts the results port (the reference's 8082). With `tls` (the DP's certificate) it speaks
 * HTTPS only: results are function output and travel as privately as the invocations did.
 */
export async function startResultsServer(service: AsyncServicePort, opts: CompatOptions, log: Logger, tls: ServerTls | null = null): Promise<RunningResultsServer> {
  const handler = compatResultsHandler(service, log);
  const server: Server = tls ? createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, handler) : createServer(handler);
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.asyncResultsPort, opts.host, () => resolve((server.address() as { port: number }).port));
  });
  log.info('async_compat.results_listening', { address: `${opts.host}:${port}`, tls: tls !== null });
  return {
    port,
    server,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** The proxy-port server of compatibility mode (plain HTTP/1.1, as the reference's). */
export function createCompatProxyServer(service: AsyncServicePort, opts: CompatOptions, wallNowMs: WallClock, log: Logger): Server {
  return createServer(compatSubmitHandler(service, opts, wallNowMs, log));
}

/** The DP knobs compatibility mode reads (adp adds them to dataPlaneDefaults). */
export interface CompatConfig {
  host: string;
  asyncMode: string;
  asyncResultsPort: number;
  asyncBodyBytesMax: number;
}

export interface RunningCompat {
  /**
   * In mode all, the invocation proxy hands every request (but its readiness check) to this,
   * so the proxy port keeps its listener, TLS and limits; null when mode off.
   */
  submit: ((req: IncomingMessage, res: ServerResponse) => void) | null;
  results: RunningResultsServer | null;
  close(): Promise<void>;
}

/**
 * Compatibility mode from the DP's config: `asyncMode: all` gives the proxy-port server to
 * listen with and starts the results port; `off` starts nothing. Called from data-plane/main.
 */
export async function startAsyncCompat(
  cfg: CompatConfig, service: AsyncServicePort, authorize: Authorize, log: Logger, tls: ServerTls | null = null,
): Promise<RunningCompat> {
  if (cfg.asyncMode !== 'off' && cfg.asyncMode !== 'all') {
    throw new ConfigError(`data plane: asyncMode must be off or all, got ${cfg.asyncMode}`);
  }
  if (cfg.asyncMode === 'off') return { submit: null, results: null, close: async () => undefined };
  const opts: CompatOptions = { host: cfg.host, asyncResultsPort: cfg.asyncResultsPort, asyncBodyBytesMax: cfg.asyncBodyBytesMax, authorize };
  const submit = compatSubmitHandler(service, opts, Date.now, log);
  const results = await startResultsServer(service, opts, log, tls);
  log.info('async_compat.started', { resultsPort: results.port });
  return { submit, results, close: () => results.close() };
}

/** The body, or null when it is longer than `bytesMax` (the rest is drained, not kept). */
function readLimited(req: IncomingMessage, bytesMax: number): Promise<Uint8Array | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes <= bytesMax) chunks.push(chunk);
    });
    req.on('end', () => resolve(bytes > bytesMax ? null : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function singleValued(headers: Record<string, string | string[]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string>): void {
  sendBytes(res, status, Buffer.from(text, 'utf8'), 'text/plain; charset=utf-8', headers);
}

function sendBytes(res: ServerResponse, status: number, body: Uint8Array, type: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { ...headers, 'content-type': type, 'content-length': body.length });
  res.end(body);
}

/**
 * @module data-plane/shell/proxy
 * The invocation proxy on :8080. One TCP listener speaks HTTP/1.1 and h2c (prior knowledge): the
 * first bytes of a connection decide which server gets it. The function comes from the
 * `/function/<name>/...` path prefix or the Host header. Bodies stream both ways; upstream
 * connections come from a keep-alive pool per sandbox.
 */
import { createServer as createH1Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createH2Server, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { Header } from '../../api/types.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import type { DataPlaneCore, DpEndpoint, Waiter } from '../core/data-plane.js';

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

export interface ProxyConfig {
  requestBodyBytesMax: number;
  upstreamConnectionsMax: number;
  upstreamConnectTimeoutMs: number;
}

/** An invocation in flight in the shell: the core's waiter plus the HTTP exchange. */
interface Exchange extends Waiter {
  req: Req;
  res: Res;
  path: string;
}

const h2Preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const hopByHop = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer',
  'proxy-authenticate', 'proxy-authorization', 'http2-settings', 'host',
]);
const functionPrefix = '/function/';

export class InvocationProxy {
  readonly server: Server;
  /**
   * Keep-alive pools keyed by upstream address, shared by the sandboxes behind it (emulated
   * sandboxes of one worker share its responder), with a count of the sandboxes using each.
   */
  private readonly pools = new Map<string, { pool: Pool; users: Set<string> }>();

  constructor(
    private readonly core: DataPlaneCore,
    private readonly cfg: ProxyConfig,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly afterCoreCall: () => void,
  ) {
    const onRequest = (req: Req, res: Res): void => this.onRequest(req, res);
    const h1 = createH1Server({ keepAliveTimeout: 65_000 }, onRequest);
    const h2 = createH2Server({ maxSessionMemory: 64 }, onRequest);
    this.server = createNetServer((socket: Socket) => {
      socket.setNoDelay(true);
      socket.once('readable', () => {
        const head: Buffer | null = socket.read();
        if (head) socket.unshift(head);
        const isH2 = head !== null && head.length >= 3 && head.subarray(0, Math.min(head.length, h2Preface.length)).equals(h2Preface.subarray(0, Math.min(head.length, h2Preface.length)));
        (isH2 ? h2 : h1).emit('connection', socket);
      });
    });
  }

  /** Starts the request on a sandbox the core assigned (now or after queueing). */
  start(x: Exchange): void {
    const ep = x.endpoint!;
    const pool = this.poolFor(ep);
    const queueMs = x.dispatchedAtMs - x.arrivalMs;
    const headers = forwardHeaders(x.req);
    headers[Header.sandbox] = ep.id;
    const timeoutMs = this.core.functions.get(x.fn)?.spec.timeoutMs ?? 0;
    const body = bodyOf(x.req, this.cfg.requestBodyBytesMax);
    pool.request(
      {
        method: x.req.method as Dispatcher.HttpMethod,
        path: x.path,
        headers,
        body: body ?? null,

        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      },
      (err, data) => {
        if (err) return this.upstreamFailed(x, err, timeoutMs);
        this.relay(x, data, queueMs);
      },
    );
  }

  /** Answers a request the core failed (queue timeout, function deleted, creation failing). */
  fail(w: Waiter, status: number, code: string, message: string): void {
    const x = w as Exchange;
    sendError(x.res, status, code, message);
  }

  closePool(ep: DpEndpoint): void {
    const entry = this.pools.get(ep.address);
    if (!entry || !entry.users.delete(ep.id) || entry.users.size > 0) return;
    this.pools.delete(ep.address);
    entry.pool.close().catch(() => {});
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((e) => e.pool.destroy().catch(() => {})));
    this.pools.clear();
  }

  private onRequest(req: Req, res: Res): void {
    const route = resolveFunction(req);
    if (!route) {
      sendError(res, 404, 'function_not_found', 'no function named: use the Host header or /function/<name>/');
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > this.cfg.requestBodyBytesMax) {
      sendError(res, 413, 'body_too_large', `request body of ${declared} bytes exceeds ${this.cfg.requestBodyBytesMax}`);
      return;
    }
    const x: Exchange = {
      fn: route.fn, arrivalMs: this.clock.nowMs(), state: 'queued', endpoint: null, cold: false,
      dispatchedAtMs: 0, req, res, path: route.path,
    };
    const r = this.core.admit(route.fn, x, x.arrivalMs);
    if (r.kind === 'dispatched') {
      this.start(x);
    } else if (r.kind === 'not_found') {
      sendError(res, 404, 'function_not_found', `function ${route.fn} not found`);
    } else if (r.kind === 'queue_full') {
      sendError(res, 503, 'queue_full', `queue of ${route.fn} is full (${r.depth} waiting)`);
    } else {
      res.once('close', () => {
        if (x.state === 'queued') {
          this.core.cancel(x, this.clock.nowMs());
          this.afterCoreCall();
        }
      });
    }
    this.afterCoreCall();
  }

  private relay(x: Exchange, data: Dispatcher.ResponseData, queueMs: number): void {
    const { res } = x;
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(data.headers)) {
      if (v !== undefined && !hopByHop.has(k)) out[k] = v;
    }
    out[Header.coldStart] = x.cold ? 'true' : 'false';
    out[Header.queueMs] = queueMs.toFixed(3);
    if (res.headersSent || res.destroyed) {
      data.body.destroy();
      this.done(x);
      return;
    }
    res.writeHead(data.statusCode, out);
    data.body.on('error', () => res.destroy());
    data.body.pipe(res as NodeJS.WritableStream);
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      this.done(x);
    };
    res.once('finish', finish);
    res.once('close', () => {
      if (!data.body.destroyed) data.body.destroy();
      finish();
    });
  }

  private upstreamFailed(x: Exchange, err: Error, timeoutMs: number): void {
    const code = (err as { code?: string }).code ?? '';
    if (code === 'DIRIGENT_BODY_TOO_LARGE') {
      sendError(x.res, 413, 'body_too_large', err.message);
    } else if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      sendError(x.res, 504, 'function_timeout', `function ${x.fn} did not answer within ${timeoutMs} ms`);
    } else {
      if (this.log.isDebugEnabled()) this.log.debug('proxy.upstream_failed', { fn: x.fn, sandbox: x.endpoint?.id, error: err.message });
      sendError(x.res, 502, 'sandbox_failure', `sandbox of ${x.fn} failed: ${err.message}`);
    }
    this.done(x);
  }

  private done(x: Exchange): void {
    this.core.release(x, this.clock.nowMs());
    this.afterCoreCall();
  }

  private poolFor(ep: DpEndpoint): Pool {
    let entry = this.pools.get(ep.address);
    if (!entry) {
      const pool = new Pool(`http://${ep.address}`, {
        connections: this.cfg.upstreamConnectionsMax,
        pipelining: 1,
        keepAliveTimeout: 60_000,
        keepAliveMaxTimeout: 600_000,
        connectTimeout: this.cfg.upstreamConnectTimeoutMs,
      });
      entry = { pool, users: new Set() };
      this.pools.set(ep.address, entry);
    }
    entry.users.add(ep.id);
    return entry.pool;
  }
}

function resolveFunction(req: Req): { fn: string; path: string } | null {
  const url = req.url ?? '/';
  if (url.startsWith(functionPrefix)) {
    const rest = url.slice(functionPrefix.length);
    const cut = rest.search(/[/?]/);
    const fn = cut < 0 ? rest : rest.slice(0, cut);
    const tail = cut < 0 ? '/' : rest.slice(cut);
    return fn ? { fn, path: tail.startsWith('/') ? tail : `/${tail}` } : null;
  }
  const host = (req.headers[':authority'] as string | undefined) ?? req.headers.host;
  if (!host) return null;
  const colon = host.lastIndexOf(':');
  const fn = colon > 0 && !host.endsWith(']') ? host.slice(0, colon) : host;
  return { fn, path: url };
}

function forwardHeaders(req: Req): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || k.startsWith(':') || hopByHop.has(k)) continue;
    out[k] = v;
  }
  const host = (req.headers[':authority'] as string | undefined) ?? req.headers.host;
  if (host) out['x-forwarded-host'] = host;
  return out;
}

/** The request body as a stream with a byte limit, or undefined when there is none. */
function bodyOf(req: Req, bytesMax: number): Transform | undefined {
  const method = req.method ?? 'GET';
  const length = req.headers['content-length'];
  const hasBody =
    length !== undefined
      ? Number(length) > 0
      : 'stream' in req
        ? method !== 'GET' && method !== 'HEAD'
        : req.headers['transfer-encoding'] !== undefined;
  if (!hasBody) return undefined;
  return (req as NodeJS.ReadableStream).pipe(new ByteLimit(bytesMax));
}

class ByteLimit extends Transform {
  private seen = 0;
  constructor(private readonly bytesMax: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.bytesMax) {
      const err = Object.assign(new Error(`request body exceeds ${this.bytesMax} bytes`), { code: 'DIRIGENT_BODY_TOO_LARGE' });
      cb(err);
      return;
    }
    cb(null, chunk);
  }
}

export function sendError(res: Res, status: number, code: string, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (res.destroyed) return;
  const text = JSON.stringify({ error: { code, message } });
  (res as ServerResponse).writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/**
 * @module data-plane/shell/http-util
 * HTTP helpers of the invocation proxy: which function a request is for, which headers go
 * upstream, the request body with a byte limit, and JSON error answers.
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { Transform, type TransformCallback } from 'node:stream';
import { canonicalFunctionKey } from '../../api/tenancy.js';
import { Header } from '../../api/types.js';

export type Req = IncomingMessage | Http2ServerRequest;
export type Res = ServerResponse | Http2ServerResponse;
/** What the invocation path reads of a request: Node's (h1, h2) or the lean path's. */
export interface RequestHead {
  method?: string;
  url?: string;
  headers: IncomingHttpHeaders;
}
/**
 * What the invocation path does with an answer: Node's responses (h1, h2) and the lean path's
 * (shared/http1/lean-h1) all have this shape.
 */
export interface ProxyRes {
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  readonly writableFinished: boolean;
  setHeader(name: string, value: string | number | readonly string[]): unknown;
  writeHead(statusCode: number, headers?: OutgoingHttpHeaders): unknown;
  /** False: wait for 'drain'. */
  write(chunk: Buffer): boolean;
  end(): unknown;
  end(chunk: string): unknown;
  destroy(): unknown;
  once(event: 'close' | 'finish' | 'drain', listener: () => void): unknown;
}

/**
 * Request header carrying the key for `consistent-hash` load balancing: requests with the same
 * key go to the same sandbox while its load stays within the bound. Without it, the function
 * name is the key.
 */
export const hashKeyHeader = 'x-dirigent-hash-key';
/**
 * A request carrying this header is the front end's readiness check, answered by the DP itself:
 * 200 once it has its routing table, 503 before. It is never proxied.
 */
export const readyCheckHeader = 'x-dirigent-ready-check';

/**
 * Not forwarded: hop-by-hop headers, and `expect` (the proxy answers `100 Continue` itself; a
 * sandbox server seeing it would wait for a continue or refuse).
 */
export const hopByHop = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer',
  'proxy-authenticate', 'proxy-authorization', 'http2-settings', 'host', 'expect',
]);

/**
 * Set by the DP on async executions only: a client's own would let it pose as an async attempt
 * (a function deduplicating on them would drop a real request), so they never pass through.
 */
export const asyncOnlyHeaders = new Set<string>([Header.asyncInvocationId, Header.asyncAttempt]);

const functionPrefix = '/function/';
/** The client's Host, as the sandbox sees it (its own Host is its address). */
const forwardedHostHeader = 'x-forwarded-host';

/**
 * The function key a request is for, and the path to send upstream. `<name>.<namespace>` is a
 * function of that namespace; `<name>` and `<name>.default` are the same default-namespace one.
 */
export function resolveFunction(req: RequestHead): { fn: string; path: string } | null {
  const url = req.url ?? '/';
  if (url.startsWith(functionPrefix)) {
    const rest = url.slice(functionPrefix.length);
    const cut = rest.search(/[/?]/);
    const fn = cut < 0 ? rest : rest.slice(0, cut);
    const tail = cut < 0 ? '/' : rest.slice(cut);
    return fn ? { fn: canonicalFunctionKey(fn), path: tail.startsWith('/') ? tail : `/${tail}` } : null;
  }
  const host = (req.headers[':authority'] as string | undefined) ?? req.headers.host;
  if (!host) return null;
  const colon = host.lastIndexOf(':');
  const fn = colon > 0 && !host.endsWith(']') ? host.slice(0, colon) : host;
  return { fn: canonicalFunctionKey(fn), path: url };
}

export function forwardHeaders(req: RequestHead): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || k.startsWith(':') || hopByHop.has(k) || asyncOnlyHeaders.has(k)) continue;
    out[k] = v;
  }
  const host = (req.headers[':authority'] as string | undefined) ?? req.headers.host;
  if (host) out[forwardedHostHeader] = host;
  return out;
}

/**
 * `forwardHeaders` as the head of an HTTP/1.1 request to a sandbox, for the lean path: its
 * method, path and header values were checked by the lean reader (no CR, LF or controls), so
 * they are written as they are.
 */
export function upstreamRequestHead(req: RequestHead, path: string, hostHeader: string, sandboxId: string, stripAuth: boolean): string {
  let text = `${req.method ?? 'GET'} ${path} HTTP/1.1\r\nhost: ${hostHeader}\r\n`;
  const h = req.headers;
  for (const k in h) {
    const v = h[k];
    if (v === undefined || k.startsWith(':') || hopByHop.has(k) || asyncOnlyHeaders.has(k) || k === forwardedHostHeader || k === Header.sandbox) continue;
    if (stripAuth && k === 'authorization') continue;
    if (typeof v === 'string') text += `${k}: ${v}\r\n`;
    else for (const one of v) text += `${k}: ${one}\r\n`;
  }
  const host = h.host;
  if (host) text += `${forwardedHostHeader}: ${host}\r\n`;
  return `${text}${Header.sandbox}: ${sandboxId}\r\n\r\n`;
}

export function hashKeyOf(req: RequestHead): string | undefined {
  const v = req.headers[hashKeyHeader];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** Declared body length, or NaN when absent or not a number. */
export function declaredLength(req: RequestHead): number {
  const v = req.headers['content-length'];
  return v === undefined ? Number.NaN : Number(v);
}

export function hasBody(req: RequestHead): boolean {
  const method = req.method ?? 'GET';
  const length = req.headers['content-length'];
  if (length !== undefined) return Number(length) > 0;
  if ('stream' in req) return method !== 'GET' && method !== 'HEAD';
  return req.headers['transfer-encoding'] !== undefined;
}

export const bodyTooLargeCode = 'DIRIGENT_BODY_TOO_LARGE';

/** Passes bytes through until `bytesMax`; past it, calls `onExceeded` then fails the stream. */
export class ByteLimit extends Transform {
  private seen = 0;
  constructor(private readonly bytesMax: number, private readonly onExceeded: (err: Error, then: () => void) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen <= this.bytesMax) {
      cb(null, chunk);
      return;
    }
    const err = Object.assign(new Error(`request body exceeds ${this.bytesMax} bytes`), { code: bodyTooLargeCode });
    // The 413 goes out before the error tears both sides down.
    this.onExceeded(err, () => cb(err));
  }
}

export function sendError(res: ProxyRes, status: number, code: string, message: string): void {
  sendJson(res, status, { error: { code, message } });
}

export function sendJson(res: ProxyRes, status: number, body: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

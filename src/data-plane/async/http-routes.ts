/**
 * @module data-plane/async/http-routes
 * The async HTTP surface on the invocation port: submitting (`Prefer: respond-async` or
 * `x-dirigent-invocation: async`) and `/v1/invocations` (get, list, retry). Input comes from
 * clients: every field is validated here and refused with a JSON error naming it.
 */
import { isIP } from 'node:net';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { declaredLength, hopByHop, sendError, sendJson, type Req, type RequestHead, type Res } from '../shell/http-util.js';
import type { AsyncPeers } from './peer-forward.js';
import { asyncStatuses } from './routes-util.js';
import { submitTokenHeader, submitTokenOf } from './submit-token.js';
import { AsyncService, invocationView, summaryView } from './service.js';

export const invocationsPrefix = '/v1/invocations';
/** Longest accepted Idempotency-Key and X-Callback-Url. */
export const idempotencyKeyCharsMax = 256;
export const callbackUrlCharsMax = 2_048;
/** Headers that steer the async intake itself and are not part of the stored request. */
const intakeHeaders = new Set(['prefer', 'x-dirigent-invocation', 'idempotency-key', 'x-callback-url', 'content-length', submitTokenHeader]);


export function wantsAsync(req: RequestHead): boolean {
  const prefer = req.headers.prefer;
  const mode = req.headers['x-dirigent-invocation'];
  return (typeof prefer === 'string' && /(^|[,\s])respond-async($|[,;\s])/i.test(prefer)) || mode === 'async';
}

export interface AsyncHttpDeps {
  service: AsyncService;
  clock: Clock;
  log: Logger;
  bodyBytesMax: number;
  callbackAllowPrivate: boolean;
  /** Checks the caller may invoke `fnKey` (auth: token functions); answers 401/403/404 itself. */
  authorize(req: Req, res: Res, fnKey: string): boolean;
  /** The same check without an answer: which items a list without `function=` may show. */
  mayRead(req: Req, fnKey: string): boolean;
  /** With a per-DP store: forwards reads and re-drives of another DP's ids to it (null: shared store). */
  peers?: AsyncPeers | null;
}

/** Accepts one async invocation: buffers the body (bounded), stores it durably, answers 202. */
export async function submitAsync(d: AsyncHttpDeps, req: Req, res: Res, fn: { key: string; uid: string; keepAuth: boolean }, path: string): Promise<void> {
  if (declaredLength(req) > d.bodyBytesMax) {
    sendError(res, 413, 'async_body_too_large', `body: request body of ${declaredLength(req)} bytes exceeds asyncBodyBytesMax ${d.bodyBytesMax}`);
    return;
  }
  const body = await readBody(req, d.bodyBytesMax);
  if (body === null) {
    res.setHeader('connection', 'close');
    sendError(res, 413, 'async_body_too_large', `body: request body exceeds asyncBodyBytesMax ${d.bodyBytesMax}`);
    return;
  }
  const idem = header(req, 'idempotency-key');
  if (idem !== undefined && (idem.length === 0 || idem.length > idempotencyKeyCharsMax)) {
    sendError(res, 400, 'invalid_idempotency_key', `Idempotency-Key: must be 1..${idempotencyKeyCharsMax} characters`);
    return;
  }
  const callbackUrl = header(req, 'x-callback-url');
  if (callbackUrl !== undefined) {
    const problem = callbackProblem(callbackUrl, d.callbackAllowPrivate);
    if (problem) {
      sendError(res, 400, 'invalid_callback_url', `X-Callback-Url: ${problem}`);
      return;
    }
  }
  const q = path.indexOf('?');
  const r = await d.service.submit({
    functionKey: fn.key, functionUid: fn.uid, method: req.method ?? 'GET',
    path: q < 0 ? path : path.slice(0, q), query: q < 0 ? '' : path.slice(q + 1),
    headers: storedHeaders(req, fn.keepAuth), body,
    ...(idem !== undefined ? { idempotencyKey: idem } : {}),
    ...(callbackUrl !== undefined ? { callbackUrl } : {}),
  }, d.clock.nowMs());
  if (r.kind === 'refused') {
    sendError(res, r.status, r.code, r.message);
    return;
  }
  res.setHeader('location', `${invocationsPrefix}/${r.id}`);
  sendJson(res, 202, { id: r.id });
}

/** GET /v1/invocations/{id}, GET /v1/invocations?..., POST /v1/invocations/{id}/retry. */
export async function invocationRoutes(d: AsyncHttpDeps, req: Req, res: Res): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://dp');
  const rest = url.pathname.slice(invocationsPrefix.length).split('/').filter((s) => s !== '');
  const method = req.method ?? 'GET';
  if (rest.length === 0 && method === 'GET') return list(d, req, res, url);
  // Another DP's invocation (its store is its own): that DP answers, one hop away. Only the two
  // id routes are forwarded, on a path rebuilt from the parsed id (nothing else of the URL).
  const isGet = rest.length === 1 && method === 'GET';
  const isRetry = rest.length === 2 && rest[1] === 'retry' && method === 'POST';
  const owner = (isGet || isRetry) && d.peers ? d.peers.route(rest[0]!, req) : null;
  if (owner?.kind === 'forward') {
    return d.peers!.forward(req, res, owner.peer, `${invocationsPrefix}/${encodeURIComponent(rest[0]!)}${isRetry ? '/retry' : ''}`);
  }
  if (rest.length === 1 && method === 'GET') {
    const inv = await d.service.get(rest[0]!);
    if (!inv) return sendError(res, 404, 'invocation_not_found', `no invocation ${rest[0]}`);
    // A DP reading for its compatibility results port (cluster token) reads as that port does.
    if (!d.peers?.isPeerRead(req) && !d.authorize(req, res, inv.functionKey)) return;
    return sendJson(res, 200, invocationView(inv));
  }
  if (rest.length === 2 && rest[1] === 'retry' && method === 'POST') {
    const inv = await d.service.get(rest[0]!);
    if (!inv) return sendError(res, 404, 'invocation_not_found', `no invocation ${rest[0]}`);
    if (!d.authorize(req, res, inv.functionKey)) return;
    const r = await d.service.retry(inv.id, d.clock.nowMs());
    if (r === 'not_found') return sendError(res, 404, 'invocation_not_found', `no invocation ${inv.id}`);
    if (r === 'not_redrivable') return sendError(res, 409, 'not_redrivable', `invocation ${inv.id} is ${inv.status}: only failed or dead ones can be retried`);
    return sendJson(res, 202, { id: inv.id, status: 'queued' });
  }
  sendError(res, 404, 'not_found', `no route ${method} ${url.pathname}`);
}

async function list(d: AsyncHttpDeps, req: Req, res: Res, url: URL): Promise<void> {
  const status = url.searchParams.get('status') ?? undefined;
  if (status !== undefined && !asyncStatuses.includes(status)) {
    return sendError(res, 400, 'invalid_status', `status: must be one of ${asyncStatuses.join(', ')}`);
  }
  const limitRaw = url.searchParams.get('limit');
  const limit = limitRaw === null ? 100 : Number(limitRaw);
  if (!Number.isInteger(limit) || limit < 1) return sendError(res, 400, 'invalid_limit', 'limit: must be a positive integer');
  const fnRaw = url.searchParams.get('function') ?? undefined;
  const functionKey = fnRaw === undefined ? undefined : fnRaw.endsWith('.default') ? fnRaw.slice(0, -'.default'.length) : fnRaw;
  // Listing names functions only: a function's invocations need its invoke permission.
  if (functionKey !== undefined && !d.authorize(req, res, functionKey)) return;
  const cursor = url.searchParams.get('cursor') ?? undefined;
  const page = await d.service.list({
    limit, ...(functionKey ? { functionKey } : {}), ...(status ? { status: status as 'queued' } : {}), ...(cursor ? { cursor } : {}),
  });
  // Unfiltered, a page shows only the invocations of functions the caller may read (it may come
  // out shorter than `limit`; the cursor still moves on).
  const items = functionKey !== undefined ? page.items : page.items.filter((i) => d.mayRead(req, i.functionKey));
  sendJson(res, 200, { items: items.map(summaryView), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) });
}

function header(req: Req, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
}

/**
 * The headers kept with the request: no hop-by-hop or intake headers, never Authorization. An
 * auth: token function's request keeps the token's id and digest instead (submitTokenHeader), so
 * each execution passes the same token check the submit did.
 */
function storedHeaders(req: Req, keepToken: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || k.startsWith(':') || hopByHop.has(k) || intakeHeaders.has(k) || k === 'authorization') continue;
    out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  const token = keepToken ? submitTokenOf(req.headers.authorization) : undefined;
  if (token !== undefined) out[submitTokenHeader] = token;
  return out;
}

/** Why a callback URL is refused, or null. Literal private addresses are refused here. */
export function callbackProblem(raw: string, allowPrivate: boolean): string | null {
  if (raw.length > callbackUrlCharsMax) return `longer than ${callbackUrlCharsMax} characters`;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return 'not a URL';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'must be http or https';
  if (!allowPrivate && isPrivateHost(u.hostname)) return 'loopback and private addresses are refused (asyncCallbackAllowPrivate)';
  return null;
}

export function isPrivateHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost') || h === '0.0.0.0' || h === '::' || h === '::1') return true;
  if (isIP(h) === 4) {
    const [a, b] = h.split('.').map(Number) as [number, number];
    return a === 10 || a === 127 || a === 0 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127);
  }
  if (isIP(h) === 6) return h.startsWith('fc') || h.startsWith('fd') || h.startsWith('fe80') || h.startsWith('::ffff:');
  return false;
}

function readBody(req: Req, bytesMax: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > bytesMax) over = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(over ? null : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

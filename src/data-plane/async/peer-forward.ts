/**
 * @module data-plane/async/peer-forward
 * The shell half of reading another DP's async invocations (the pure half is owner.ts): the
 * peers the CP sent, by owner tag (rebuilt when the routing table's peers change), and one
 * forwarded HTTP exchange with a bounded time. The caller's own Authorization goes along, so the
 * owner checks it as if the caller had come to it directly. A peer that does not answer within
 * the bound is 503 `owner_unavailable` naming it: the invocation is not lost, only unreachable.
 */
import { Agent, request } from 'undici';
import type { Logger } from '../../shared/logger.js';
import { bearerOf, sameDigest, sha256Hex } from '../../shared/secrets.js';
import { sendError, type Req, type Res } from '../shell/http-util.js';
import { forwardedFromHeader, ownerTagOf, peersByTag, routeById, type OwnerRoute, type Peer } from './owner.js';

/** A forwarded read or re-drive must be answered within this, or the owner counts as down. */
export const peerForwardTimeoutMs = 5_000;
/** Idle connections to peers are kept this long (reads through a front end come in bursts). */
const peerKeepAliveMs = 10_000;
/** A forwarded answer larger than this is refused (results are bounded far below it). */
export const peerAnswerBytesMax = 64 * 1024 * 1024;
/** Request headers a forwarded request keeps: what the owner's routes read. */
const keptRequestHeaders = ['authorization', 'accept', 'content-type'];
/** Answer headers passed back to the caller. */
const keptAnswerHeaders = ['content-type', 'location', 'www-authenticate', 'retry-after'];

/** What the async routes need to send a request on to the DP that holds its invocation. */
export interface AsyncPeers {
  route(id: string, req: Req): OwnerRoute;
  /** Sends `method path` (GET or POST, no body) with the caller's Authorization to `peer` and relays the answer. */
  forward(req: Req, res: Res, peer: Peer, path: string): Promise<void>;
  /**
   * GET /v1/invocations/{id} on the owner as a DP (cluster token), for the compatibility results
   * port, which reads without a caller's token (as the reference's). Throws OwnerUnavailable.
   */
  readAsPeer(peer: Peer, id: string): Promise<{ statusCode: number; json: unknown }>;
  /** A read another DP forwarded with the cluster token: the owner serves it without a caller's token. */
  isPeerRead(req: Req): boolean;
  close(): Promise<void>;
}

/** The owner DP did not answer: 503 owner_unavailable, the invocation is not lost. */
export class OwnerUnavailable extends Error {
  constructor(readonly peer: Peer, why: string) {
    super(`the invocation is held by data plane ${peer.id}, which ${why}: try again`);
  }
}

export interface PeerSource {
  readonly peers: ReadonlyMap<string, string>;
  readonly peersVersion: number;
}

export interface PeerForwardOptions {
  selfId: string;
  /** https when the DPs' invocation ports speak TLS, trusting `ca`. */
  tls: boolean;
  ca: Buffer | null;
  /** The cluster token (re-read from its file), for reads as a peer. */
  clusterToken: () => string;
  timeoutMs?: number;
}

/** Peers of a DP whose store is its own; with a shared store use null (nothing is forwarded). */
export function asyncPeers(source: PeerSource, opts: PeerForwardOptions, log: Logger): AsyncPeers {
  const selfTag = ownerTagOf(opts.selfId);
  let cached = { version: -1, byTag: new Map<string, Peer>() };
  const agent = new Agent({ connect: { ...(opts.ca ? { ca: opts.ca } : {}) }, keepAliveTimeout: peerKeepAliveMs });
  const timeoutMs = opts.timeoutMs ?? peerForwardTimeoutMs;
  const ctx: ForwardCtx = { agent, scheme: opts.tls ? 'https' : 'http', selfId: opts.selfId, timeoutMs, log };
  return {
    route(id, req) {
      if (cached.version !== source.peersVersion) cached = { version: source.peersVersion, byTag: peersByTag(source.peers, opts.selfId) };
      return routeById(id, { selfTag, forwarded: req.headers[forwardedFromHeader] !== undefined, peers: cached.byTag });
    },
    forward: (req, res, peer, path) => forwardOnce(req, res, peer, path, ctx),
    readAsPeer: (peer, id) => readAsPeer(peer, id, ctx, opts.clusterToken()),
    isPeerRead(req) {
      const bearer = bearerOf(req.headers.authorization);
      return req.method === 'GET' && req.headers[forwardedFromHeader] !== undefined && bearer !== null && sameDigest(sha256Hex(bearer), sha256Hex(opts.clusterToken()));
    },
    close: () => agent.close(),
  };
}

interface ForwardCtx {
  agent: Agent;
  scheme: string;
  selfId: string;
  timeoutMs: number;
  log: Logger;
}

async function forwardOnce(req: Req, res: Res, peer: Peer, path: string, ctx: ForwardCtx): Promise<void> {
  req.resume(); // the routes forwarded (get, retry) take no body
  const headers: Record<string, string> = { [forwardedFromHeader]: ctx.selfId };
  for (const k of keptRequestHeaders) {
    const v = req.headers[k];
    if (typeof v === 'string') headers[k] = v;
  }
  let answer;
  try {
    answer = await request(`${ctx.scheme}://${peer.address}${path}`, {
      method: req.method === 'POST' ? 'POST' : 'GET', headers, dispatcher: ctx.agent, signal: AbortSignal.timeout(ctx.timeoutMs),
    });
    const body = Buffer.from(await answer.body.arrayBuffer());
    if (body.length > peerAnswerBytesMax) throw new Error(`answer of ${body.length} bytes exceeds ${peerAnswerBytesMax}`);
    if (res.headersSent || res.destroyed) return;
    for (const k of keptAnswerHeaders) {
      const v = answer.headers[k];
      if (typeof v === 'string') res.setHeader(k, v);
    }
    res.setHeader('content-length', body.length);
    res.statusCode = answer.statusCode;
    res.end(body);
  } catch (err) {
    ctx.log.warn('async.forward_failed', { peer: peer.id, address: peer.address, path, error: (err as Error).message });
    sendError(res, 503, 'owner_unavailable', new OwnerUnavailable(peer, `did not answer within ${ctx.timeoutMs} ms`).message);
  }
}

async function readAsPeer(peer: Peer, id: string, ctx: ForwardCtx, clusterToken: string): Promise<{ statusCode: number; json: unknown }> {
  try {
    const answer = await request(`${ctx.scheme}://${peer.address}/v1/invocations/${encodeURIComponent(id)}`, {
      method: 'GET', dispatcher: ctx.agent, signal: AbortSignal.timeout(ctx.timeoutMs),
      headers: { [forwardedFromHeader]: ctx.selfId, authorization: `Bearer ${clusterToken}` },
    });
    const text = await answer.body.text();
    if (text.length > peerAnswerBytesMax) throw new Error(`answer of ${text.length} characters exceeds ${peerAnswerBytesMax}`);
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      // Not JSON: the caller treats it as no answer.
    }
    return { statusCode: answer.statusCode, json };
  } catch (err) {
    ctx.log.warn('async.forward_failed', { peer: peer.id, address: peer.address, id, error: (err as Error).message });
    throw new OwnerUnavailable(peer, `did not answer within ${ctx.timeoutMs} ms`);
  }
}

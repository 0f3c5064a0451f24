/**
 * @module data-plane/shell/proxy
 * The invocation proxy on :8080. One TCP listener speaks HTTP/1.1 and h2c (prior knowledge): the
 * first bytes of a connection decide which server gets it. The function comes from the
 * `/function/<name>/...` path prefix or the Host header. Bodies stream both ways: the request
 * body through `stream.pipeline` (with its size limit), the response through an undici dispatch
 * handler (upstream-call) with backpressure; an error on either side ends both. Upstream
 * connections come from a keep-alive pool per sandbox.
 *
 * Slots are freed at once when an exchange ends for any reason: the response finished, the
 * client went away (the upstream request is aborted), the function's `timeoutMs` passed (504,
 * upstream aborted), or the upstream failed (502). A sandbox that refuses the connection got
 * nothing of the request: the core takes it out of rotation and the request is tried on another;
 * a bodiless idempotent request whose connection closed before any answer is tried again too.
 *
 * With a certificate the listener speaks TLS instead, and ALPN (h2, http/1.1) picks the server.
 *
 * An HTTP/1.1 connection, plain or TLS, starts on the lean path (shared/http1/lean-h1, issue 12 part 2): the
 * requests of the hot path (no body or a small Content-Length one) are read without Node's HTTP
 * server and sent to the sandbox over the lean client (shell/lean-upstream); the first request
 * it does not take hands the connection to Node's server. Both paths meet in `invoke`, so
 * routing, tokens, queueing, deadlines and retries are one code.
 */
import { createServer as createH1Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createH2Server, type Http2ServerRequest, type ServerHttp2Session } from 'node:http2';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { pipeline } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import { Header } from '../../api/types.js';
import type { Clock } from '../../shared/clock.js';
import type { ServerTls } from '../../shared/grpc.js';
import { answerClientError } from '../../shared/http-client-error.js';
import type { Logger } from '../../shared/logger.js';
import { bearerOf, tokenId, TokenDigests } from '../../shared/secrets.js';
import {
  type DataPlaneCore, type DpEffect, type DpEndpoint, type DpFunction, type PresentedToken, type RetryCause, type Waiter,
} from '../core/data-plane.js';
import type { Admission } from '../core/proxy-link.js';
import { invocationRoutes, invocationsPrefix, submitAsync, wantsAsync, type AsyncHttpDeps } from '../async/http-routes.js';
import { forwardedFromHeader } from '../async/owner.js';
import { guarded, runGuarded } from '../../shared/guard.js';
import { guardPings, type PingBudget } from '../../shared/ping-budget.js';
import { UpstreamCall, type RelayedHeaders, type UpstreamEvents } from './upstream-call.js';
import { LeanConnections, LeanRequest, type LeanHost, LeanResponse, type LeanStats } from '../../shared/http1/lean-h1.js';
import { assert } from '../../shared/assert.js';
import { LeanUpstreamCall, LeanUpstreamPool } from './lean-upstream.js';
import {
  bodyTooLargeCode, ByteLimit, declaredLength, forwardHeaders, hashKeyOf, hasBody, readyCheckHeader, resolveFunction,
  sendError, sendJson, upstreamRequestHead, type ProxyRes, type Req, type RequestHead, type Res,
} from './http-util.js';

export { sendError } from './http-util.js';

export interface ProxyConfig {
  requestBodyBytesMax: number;
  upstreamConnectionsMax: number;
  upstreamConnectTimeoutMs: number;
  /** The request head must arrive within this (slowloris). */
  invocationHeadersTimeoutMs: number;
  /** The whole request (head and body) must arrive within this. */
  invocationRequestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  invocationKeepAliveTimeoutMs: number;
  invocationConnectionsMax: number;
  /** HTTP/2 pings a client may send at once, and one more per refill (shared/ping-budget). */
  invocationPingBurstMax: number;
  invocationPingRefillMs: number;
  /** Connections before the first routing snapshot wait for it until this long after start (0: no wait). */
  invocationSyncHoldMsMax: number;
  /** 'token' | 'none' ('none': every function is public; loopback only, checked at start). */
  auth: string;
  /** 'all': the reference's async mode, every request is stored (see data-plane/async/compat). */
  asyncMode?: string;
  /**
   * 'lean' (default): HTTP/1.1 requests (plain or TLS) the lean reader takes are served without Node's
   * HTTP server (shared/http1/lean-h1); 'node': Node's server reads every request.
   */
  httpParser?: string;
}

/** An invocation in flight in the shell: the core's waiter plus the HTTP exchange. */
interface Exchange extends Waiter {
  req: Req | LeanRequest;
  res: ProxyRes;
  path: string;
  upstream: { abort(reason: Error): void } | null;
  /**
   * The request body with its size limit, made at the first dispatch (undefined until then; set
   * to undefined at creation so every exchange has one shape).
   */
  body: ByteLimit | Buffer | null | undefined;
  deadline: NodeJS.Timeout | null;
  /** The caller's Authorization was checked here: function code never sees the token. */
  stripAuth: boolean;
}

/**
 * The core's waiter fields (as `newWaiter` makes them) and the exchange's, in one literal: one
 * object shape for every exchange, no properties added to a made object (0.4 % of the DP's
 * samples went to adding them with Object.assign at 32 warm connections).
 */
function newExchange(fn: string, nowMs: number, key: string | undefined, req: Req | LeanRequest, res: ProxyRes, path: string, stripAuth: boolean): Exchange {
  return {
    fn, arrivalMs: nowMs, state: 'new', owner: null, endpoint: null, cold: false, dispatchedAtMs: 0, retries: 0, key, queueNode: null, expiryNode: null,
    req, res, path, upstream: null, body: undefined, deadline: null, stripAuth,
  };
}

/** A connection that ended before any answer: reset, broken pipe, or closed by the other side (undici). */
const connectionLostCodes = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);
/** Methods a proxy may repeat on its own (RFC 9110 §9.2.2), when they carry no body. */
const idempotentMethods = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

function replayable(req: RequestHead): boolean {
  return idempotentMethods.has(req.method ?? 'GET') && !hasBody(req);
}

const h2Preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
/** How often Node checks connections against the header and request timeouts. */
const connectionsCheckingIntervalMs = 1_000;
const upstreamKeepAliveMs = 60_000;
const upstreamKeepAliveMsMax = 600_000;
/** Retry-After (s) of a not_ready answer: a restarted DP gets its snapshot within a second or so. */
const notReadyRetryAfterS = 1;
/** Headers the DP sets on every relayed answer: a sandbox cannot set (or spoof) them. */
const dpOwnedHeaders: ReadonlySet<string> = new Set([Header.coldStart, Header.queueMs]);

/** Removes, in place, the DP's own headers from a flat list of a sandbox's (lower-case names). */
function dropDpOwned(fields: string[]): void {
  let kept = 0;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (dpOwnedHeaders.has(fields[i]!)) continue;
    fields[kept++] = fields[i]!;
    fields[kept++] = fields[i + 1]!;
  }
  fields.length = kept;
}

/**
 * Largest body the lean path reads whole before dispatching (a larger one streams through Node's
 * server). Invocation payloads are mostly far below it.
 */
const leanBodyBytesMax = 65_536;

export class InvocationProxy {
  readonly server: Server;
  private readonly h1;
  /**
   * Keep-alive pools keyed by upstream address, shared by the sandboxes behind it (emulated
   * sandboxes of one worker share its responder), with the sandboxes using each.
   */
  private readonly pools = new Map<string, { pool: Pool; users: Set<string> }>();
  /** The lean path's connections to sandboxes, keyed and shared as `pools`. */
  private readonly leanPools = new Map<string, { pool: LeanUpstreamPool; users: Set<string> }>();
  /** Digests of the bearer tokens invocations present (`auth: token` functions). */
  private readonly tokenDigests = new TokenDigests();
  private leanPoolSweep: NodeJS.Timeout | null = null;
  /** Async invocations (issue #11); null until the DP wires its async service. */
  asyncHttp: Omit<AsyncHttpDeps, 'authorize' | 'mayRead'> | null = null;
  /** The reference's async mode (`asyncMode: all`): every invocation is stored and answered with its id. */
  compatSubmit: ((req: IncomingMessage, res: ServerResponse) => void) | null = null;
  /**
   * Set by data-plane/main until it has wired everything (async store, compatibility mode): the
   * port listens early (its address goes into the CP hello), but a request then would be served
   * by half a data plane (in `asyncMode: all`, synchronously instead of stored), so it gets 503.
   */
  starting = false;
  /**
   * In a proxy process (`--proxy-threads`): where requests go that only the primary serves (async
   * submissions and reads, the reference's async mode). Null in the primary.
   */
  delegate: ((req: Req, res: Res) => void) | null = null;
  private readonly admission: Admission;
  /** The lean HTTP/1.1 path's connections; null with `httpParser: node`. */
  private readonly lean: LeanConnections | null;
  /** Each h2c/h2 client connection's ping budget, credited as answers stream to it. */
  private readonly pingBudgets = new WeakMap<ServerHttp2Session, PingBudget>();
  /**
   * Connections that arrived before the first routing snapshot, unread, with what serves them
   * (see `invocationSyncHoldMsMax`). Null once the DP stopped holding: it synced, or waited long
   * enough.
   */
  private held: Map<Socket, () => void> | null = new Map();
  private holdTimer: NodeJS.Timeout | null = null;

  /**
   * `core` answers what the routing table knows (functions, tokens, readiness); `admission` (the
   * core itself unless given) decides slots and queues: in a proxy process, the primary's core.
   */
  constructor(
    private readonly core: DataPlaneCore,
    private readonly cfg: ProxyConfig,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly run: (effects: DpEffect[]) => void,
    tls: ServerTls | null = null,
    admission?: Admission,
  ) {
    this.admission = admission ?? core;
    const onRequest = guarded(log, 'callback', 'proxy.request', (req: Req, res: Res) => this.onRequest(req, res));
    const onContinue = guarded(log, 'callback', 'proxy.check_continue', (req: Req, res: Res) => this.onCheckContinue(req, res));
    this.h1 = createH1Server({
      keepAliveTimeout: cfg.invocationKeepAliveTimeoutMs,
      headersTimeout: cfg.invocationHeadersTimeoutMs,
      requestTimeout: cfg.invocationRequestTimeoutMs,
      connectionsCheckingInterval: Math.min(connectionsCheckingIntervalMs, cfg.invocationHeadersTimeoutMs),
    }, onRequest);
    this.h1.on('checkContinue', onContinue);
    // A request the parser refuses gets a JSON 4xx like every other answer (not a bare 400).
    this.h1.on('clientError', answerClientError);
    // The h1 server never listens itself (the TCP listener hands it connections); its header
    // and request timeouts are checked by a timer Node starts on 'listening'.
    this.h1.emit('listening');
    const leanHost: LeanHost = {
      name: 'proxy',
      guard: (kind, event, fn) => runGuarded(log, kind, event, fn),
      accepts: (req) => this.leanServes(req),
      serve: (req, res) => this.onLeanRequest(req, res),
      handOff: (socket) => this.h1.emit('connection', socket),
    };
    this.lean = cfg.httpParser === 'node' ? null : new LeanConnections(leanHost, { bodyBytesMax: Math.min(leanBodyBytesMax, cfg.requestBodyBytesMax) }, {
      headersTimeoutMs: cfg.invocationHeadersTimeoutMs,
      requestTimeoutMs: cfg.invocationRequestTimeoutMs,
      keepAliveTimeoutMs: cfg.invocationKeepAliveTimeoutMs,
    }, clock, log, Math.min(connectionsCheckingIntervalMs, cfg.invocationHeadersTimeoutMs));
    const h2 = createH2Server({ maxSessionMemory: 64 }, onRequest);
    // Pings cost us a frame each and need no token: a client past its budget loses its connection.
    const pingLimits = { burstMax: cfg.invocationPingBurstMax, refillMs: cfg.invocationPingRefillMs };
    h2.on('session', (session: ServerHttp2Session) => {
      this.pingBudgets.set(session, guardPings(session, pingLimits, (peer, reason) => log.warn('proxy.peer_refused', { peer, reason })));
    });
    h2.on('checkContinue', onContinue);
    h2.setTimeout(cfg.invocationKeepAliveTimeoutMs);
    if (cfg.invocationSyncHoldMsMax > 0 && !core.synced) {
      this.holdTimer = setTimeout(guarded(log, 'timer', 'proxy.sync_hold', () => this.stopHolding()), cfg.invocationSyncHoldMsMax);
      this.holdTimer.unref();
    } else {
      this.held = null;
    }
    const hold = (serve: (socket: Socket) => void) => (socket: Socket): void => this.holdUntilSynced(socket, serve);
    // Over TLS, ALPN has told the protocols apart: HTTP/1.1 starts on the lean path as over TCP.
    const serveTls = (socket: TLSSocket): void => {
      if (socket.alpnProtocol === 'h2') h2.emit('connection', socket);
      else if (this.lean !== null) this.lean.accept(socket, null);
      else this.h1.emit('connection', socket);
    };
    this.server = tls ? tlsListener(tls, cfg, log, hold, serveTls) : createNetServer(hold((socket: Socket) => {
      socket.setNoDelay(true);
      // A client may reset before the HTTP servers own the socket: without a listener that
      // error would be uncaught and end the process.
      socket.on('error', (err) => {
        if (log.isDebugEnabled()) log.debug('proxy.connection_failed', { error: err.message });
        socket.destroy();
      });
      socket.once('readable', guarded(log, 'callback', 'proxy.connection', () => {
        const head: Buffer | null = socket.read();
        const n = head === null ? 0 : Math.min(head.length, h2Preface.length);
        const isH2 = head !== null && head.length >= 3 && head.subarray(0, n).equals(h2Preface.subarray(0, n));
        if (!isH2 && this.lean !== null) {
          this.lean.accept(socket, head);
          return;
        }
        if (head) socket.unshift(head);
        (isH2 ? h2 : this.h1).emit('connection', socket);
      }));
      // Until the first bytes decide the protocol, the header timeout applies here.
      socket.setTimeout(cfg.invocationHeadersTimeoutMs, () => socket.destroy());
      socket.once('readable', () => socket.setTimeout(0));
    }));
    this.server.maxConnections = cfg.invocationConnectionsMax;
  }

  /**
   * A plain HTTP/1.1 listener for the proxy processes' delegated requests (bind it to loopback):
   * served like the invocation port's, by the same server.
   */
  delegateListener(): Server {
    return createNetServer((socket: Socket) => {
      socket.setNoDelay(true);
      socket.on('error', () => socket.destroy());
      this.h1.emit('connection', socket);
    });
  }

  /**
   * The routing table changed: once it holds a snapshot, held connections are served (call after
   * every applied update; it does nothing once the DP stopped holding).
   */
  routingApplied(): void {
    if (this.held !== null && this.core.synced) this.stopHolding();
  }

  /** Connections waiting for the first routing snapshot. */
  get heldConnections(): number {
    return this.held?.size ?? 0;
  }

  private holdUntilSynced(socket: Socket, serve: (socket: Socket) => void): void {
    const held = this.held;
    if (held === null || this.core.synced) {
      serve(socket);
      return;
    }
    // Unread meanwhile: what the client sends stays in the socket (TCP pushes back).
    const gone = (): void => {
      held.delete(socket);
      socket.destroy();
    };
    socket.on('error', gone);
    socket.on('close', gone);
    held.set(socket, () => {
      socket.removeListener('error', gone);
      socket.removeListener('close', gone);
      serve(socket);
    });
  }

  private stopHolding(): void {
    const held = this.held;
    if (held === null) return;
    this.held = null;
    if (this.holdTimer !== null) clearTimeout(this.holdTimer);
    this.holdTimer = null;
    for (const release of held.values()) runGuarded(this.log, 'callback', 'proxy.connection', release);
  }

  /** The lean path's counts (null when it is off: `httpParser: node`). */
  leanStats(): LeanStats | null {
    return this.lean?.stats ?? null;
  }

  /** Starts the request on the sandbox the core assigned (now or after queueing). */
  start(x: Exchange): void {
    const ep = x.endpoint!;
    const timeoutMs = x.owner!.spec.timeoutMs;
    if (timeoutMs > 0) x.deadline = setTimeout(guarded(this.log, 'timer', 'deadline', () => this.deadlinePassed(x, timeoutMs)), timeoutMs);
    const events: UpstreamEvents<RelayedHeaders> = {
      head: (statusCode, out) => this.relayHead(x, statusCode, out),
      end: () => this.responseEnded(x),
      failed: (err, headSent) => this.callFailed(x, err, headSent),
    };
    const req = x.req;
    if (req instanceof LeanRequest) {
      // Read whole by the lean path: its head is written as one string, its body with it.
      const pool = this.leanPoolFor(ep);
      const lean = new LeanUpstreamCall(pool, upstreamRequestHead(req, x.path, ep.address, ep.id, x.stripAuth), req.body, req.method === 'HEAD', x.res, events, this.log);
      x.upstream = lean;
      pool.dispatch(lean);
      return;
    }
    const headers = forwardHeaders(req);
    if (x.stripAuth) delete headers.authorization;
    headers[Header.sandbox] = ep.id;
    const pings = req.httpVersionMajor === 2 ? this.pingBudgets.get((req as Http2ServerRequest).stream.session as ServerHttp2Session) ?? null : null;
    const call = new UpstreamCall(x.res, events, this.log, pings);
    x.upstream = call;
    // One deadline (above) bounds the whole exchange; undici's own timers stay off.
    // A try after a refused connection sends the same body: the refusal came before any of it was read.
    if (x.body === undefined) x.body = this.bodyOf(x);
    this.poolFor(ep).dispatch({
      method: x.req.method as Dispatcher.HttpMethod, path: x.path, headers, body: x.body, headersTimeout: 0, bodyTimeout: 0,
    }, call);
  }

  /** Answers a request the core failed (queue timeout, function deleted, creation failing). */
  fail(w: Waiter, status: number, code: string, message: string): void {
    sendError((w as Exchange).res, status, code, message);
  }

  closePool(ep: DpEndpoint): void {
    const lean = this.leanPools.get(ep.address);
    if (lean && lean.users.delete(ep.id) && lean.users.size === 0) {
      this.leanPools.delete(ep.address);
      lean.pool.close();
    }
    const entry = this.pools.get(ep.address);
    if (!entry || !entry.users.delete(ep.id) || entry.users.size > 0) return;
    this.pools.delete(ep.address);
    entry.pool.close().catch(() => {});
  }

  async close(): Promise<void> {
    if (this.holdTimer !== null) clearTimeout(this.holdTimer);
    this.holdTimer = null;
    for (const socket of this.held?.keys() ?? []) socket.destroy();
    this.held = null;
    this.h1.close(() => {}); // stops the timeout-checking timer
    this.lean?.close();
    if (this.leanPoolSweep !== null) clearInterval(this.leanPoolSweep);
    for (const e of this.leanPools.values()) e.pool.destroy();
    this.leanPools.clear();
    await Promise.all([...this.pools.values()].map((e) => e.pool.destroy().catch(() => {})));
    this.pools.clear();
  }

  private onCheckContinue(req: Req, res: Res): void {
    const declared = declaredLength(req);
    if (declared > this.cfg.requestBodyBytesMax) {
      // No 100 Continue: the client never sends the body it announced.
      res.setHeader('connection', 'close');
      sendError(res, 413, 'body_too_large', `request body of ${declared} bytes exceeds ${this.cfg.requestBodyBytesMax}`);
      return;
    }
    res.writeContinue();
    this.onRequest(req, res);
  }

  /**
   * The lean path serves a request unless it needs Node's full request: the async routes (and
   * the reference's async mode) read bodies as streams and are served by the primary.
   */
  private leanServes(req: LeanRequest): boolean {
    if (this.cfg.asyncMode === 'all' || this.compatSubmit !== null) return false;
    return !req.url.startsWith(invocationsPrefix) && !wantsAsync(req);
  }

  private onLeanRequest(req: LeanRequest, res: LeanResponse): void {
    if (req.headers[readyCheckHeader] !== undefined) this.readyCheck(res);
    else this.invoke(req, res);
  }

  /** The front end's readiness check (answered here, never proxied). */
  private readyCheck(res: ProxyRes): void {
    // Until the async side is wired, in compatibility mode even the readiness check waits.
    const ready = this.core.synced && !(this.starting && this.cfg.asyncMode === 'all');
    if (ready) sendJson(res, 200, { ready: true, routingVersion: this.core.version });
    else sendError(res, 503, 'not_ready', this.core.synced ? 'the data plane is starting' : 'no routing table from a control plane yet');
  }

  private onRequest(req: Req, res: Res): void {
    // Until the async side is wired, what needs it waits (503) instead of being served by half a
    // data plane; in compatibility mode that is every request.
    const compatMode = this.cfg.asyncMode === 'all';
    if (req.headers[readyCheckHeader] !== undefined) {
      this.readyCheck(res);
      return;
    }
    if (this.delegate && (compatMode || wantsAsync(req) || (req.url ?? '').startsWith(invocationsPrefix))) {
      this.delegate(req, res);
      return;
    }
    if (this.starting && (compatMode || wantsAsync(req) || (req.url ?? '').startsWith(invocationsPrefix))) {
      sendError(res, 503, 'not_ready', 'the data plane is starting; retry');
      return;
    }
    // In compatibility mode too, another DP's forwarded read of an invocation held here is answered.
    if (this.compatSubmit && !(req.headers[forwardedFromHeader] !== undefined && (req.url ?? '').startsWith(invocationsPrefix))) {
      this.compatSubmit(req as IncomingMessage, res as ServerResponse);
      return;
    }
    if (this.asyncHttp && (req.url ?? '').startsWith(invocationsPrefix)) {
      const route = resolveFunction(req);
      if (route === null || !this.core.functions.has(route.fn)) {
        // Object.assign, not a spread with added properties (a slow path in Node 20's V8); ours win.
        this.runAsync('proxy.invocations', invocationRoutes(Object.assign({}, this.asyncHttp, {
          authorize: (q: Req, s: Res, fnKey: string) => this.readAllowed(q, s, fnKey), mayRead: (q: Req, fnKey: string) => this.mayRead(q, fnKey),
        }), req, res), res);
        return;
      }
    }
    this.invoke(req, res);
  }

  /** A synchronous invocation (or an async submission on Node's path): routed, checked, admitted. */
  private invoke(req: Req | LeanRequest, res: ProxyRes): void {
    const route = resolveFunction(req);
    if (!route) {
      sendError(res, 404, 'function_not_found', 'no function named: use the Host header or /function/<name>/');
      return;
    }
    // One map lookup for public functions; only `auth: token` ones pay for hashing.
    const fn = this.cfg.auth === 'token' ? this.core.functions.get(route.fn) : undefined;
    const stripAuth = fn !== undefined && fn.spec.auth === 'token';
    if (stripAuth && !this.invokeAllowed(req, res, fn)) return;
    if (this.asyncHttp && !(req instanceof LeanRequest) && wantsAsync(req)) {
      this.submitAsync(req, res as Res, route);
      return;
    }
    const declared = declaredLength(req);
    if (declared > this.cfg.requestBodyBytesMax) {
      sendError(res, 413, 'body_too_large', `request body of ${declared} bytes exceeds ${this.cfg.requestBodyBytesMax}`);
      return;
    }
    const nowMs = this.clock.nowMs();
    const x = newExchange(route.fn, nowMs, hashKeyOf(req), req, res, route.path, stripAuth);
    res.once('close', guarded(this.log, 'callback', 'proxy.client_closed', () => this.clientClosed(x)));
    const r = this.admission.admit(route.fn, x, nowMs);
    if (r.kind === 'not_found') sendError(res, 404, 'function_not_found', `function ${route.fn} not found`);
    else if (r.kind === 'not_ready') this.notReady(res);
    else if (r.kind === 'queue_full') sendError(res, 503, 'queue_full', `queue of ${route.fn} is full (${r.depth} waiting)`);
    this.run(r.effects);
  }

  private submitAsync(req: Req, res: Res, route: { fn: string; path: string }): void {
    const fn = this.core.functions.get(route.fn);
    if (!fn) {
      if (this.core.synced) sendError(res, 404, 'function_not_found', `function ${route.fn} not found`);
      else this.notReady(res);
      return;
    }
    // auth: token functions keep the caller's Authorization, so each execution passes the same check.
    const keepAuth = this.cfg.auth === 'token' && fn.spec.auth === 'token';
    this.runAsync('proxy.async_submit', submitAsync(Object.assign({}, this.asyncHttp!, { authorize: () => true, mayRead: () => true }), req, res, { key: fn.name, uid: fn.uid, keepAuth }, route.path), res);
  }

  /** A restarted DP before its first routing snapshot: the function may exist, so not a 404. */
  private notReady(res: ProxyRes): void {
    res.setHeader('retry-after', String(notReadyRetryAfterS));
    sendError(res, 503, 'not_ready', 'no routing table from a control plane yet; retry');
  }

  /** Reading or re-driving an invocation needs what invoking its function needs. */
  private readAllowed(req: Req, res: Res, fnKey: string): boolean {
    if (this.cfg.auth !== 'token') return true;
    const fn = this.core.functions.get(fnKey);
    if (!fn) {
      // Its auth setting is unknown once the function is gone: only a namespace-less check is impossible.
      sendError(res, 403, 'forbidden', `function ${fnKey} is not known to this data plane: its invocations cannot be authorized`);
      return false;
    }
    return fn.spec.auth !== 'token' || this.invokeAllowed(req, res, fn);
  }

  /** readAllowed without answering: public functions, or a token that may invoke this one. Gone functions are hidden. */
  private mayRead(req: Req, fnKey: string): boolean {
    if (this.cfg.auth !== 'token') return true;
    const fn = this.core.functions.get(fnKey);
    if (!fn) return false;
    if (fn.spec.auth !== 'token') return true;
    const bearer = bearerOf(req.headers.authorization);
    const id = bearer === null ? null : tokenId(bearer);
    return id !== null && this.core.invokeVerdict(fn, { id, sha256Hex: this.tokenDigests.of(bearer!) }) === 'allowed';
  }

  private runAsync(what: string, work: Promise<void>, res: Res): void {
    work.catch((err: Error) => {
      this.log.warn(what.replace('proxy.', 'async.') + '_failed', { error: err.message });
      sendError(res, 503, 'async_store_unavailable', 'the async store is unavailable, try again');
    });
  }

  /** Checks the bearer token of a request for an `auth: token` function; answers 401/403 itself. */
  private invokeAllowed(req: RequestHead, res: ProxyRes, fn: DpFunction): boolean {
    const bearer = bearerOf(req.headers.authorization);
    const id = bearer === null ? null : tokenId(bearer);
    const presented: PresentedToken | null = id === null ? null : { id, sha256Hex: this.tokenDigests.of(bearer!) };
    const verdict = this.core.invokeVerdict(fn, presented);
    if (verdict === 'allowed') return true;
    if (this.log.isDebugEnabled()) this.log.debug('proxy.invoke_refused', { fn: fn.name, verdict, tokenId: id ?? '' });
    if (verdict === 'unauthorized') {
      res.setHeader('www-authenticate', 'Bearer');
      sendError(res, 401, 'unauthorized', `function ${fn.name} needs a bearer token that may invoke it`);
    } else {
      sendError(res, 403, 'forbidden', `this token may not invoke function ${fn.name}`);
    }
    return false;
  }

  /** The response is closed: finished, or the client went away first. */
  private clientClosed(x: Exchange): void {
    if (x.state === 'queued') this.run(this.admission.cancel(x, this.clock.nowMs()));
    else if (x.state === 'dispatched') this.done(x, x.res.writableFinished ? 'ok' : 'client_gone');
  }

  private deadlinePassed(x: Exchange, timeoutMs: number): void {
    if (x.state !== 'dispatched') return;
    sendError(x.res, 504, 'function_timeout', `function ${x.fn} did not answer within ${timeoutMs} ms`);
    this.done(x, 'deadline');
  }

  private bodyOf(x: Exchange): ByteLimit | Buffer | null {
    if (x.req instanceof LeanRequest) return x.req.body;
    if (!hasBody(x.req)) return null;
    const limit = new ByteLimit(this.cfg.requestBodyBytesMax, (err, then) => {
      if (x.res.headersSent || x.res.destroyed) return then();
      x.res.setHeader('connection', 'close');
      sendError(x.res, 413, 'body_too_large', err.message);
      x.res.once('finish', then);
      this.done(x, 'body_too_large');
    });
    pipeline(x.req as NodeJS.ReadableStream, limit, guarded(this.log, 'callback', 'proxy.request_body', (err: Error | null | undefined) => {
      // A client that stops sending mid-body: the upstream request cannot complete.
      if (err && x.state === 'dispatched') this.done(x, 'request_body_failed');
    }));
    return limit;
  }

  /** The sandbox's response head: relayed unless the exchange is over or the client left. */
  private relayHead(x: Exchange, statusCode: number, out: RelayedHeaders): boolean {
    if (x.state !== 'dispatched') return false;
    const { res } = x;
    if (res.headersSent || res.destroyed) {
      this.done(x, 'client_gone');
      return false;
    }
    const cold = x.cold ? 'true' : 'false';
    const queueMs = (x.dispatchedAtMs - x.arrivalMs).toFixed(3);
    if (Array.isArray(out)) {
      assert(res instanceof LeanResponse, 'a flat header list comes from the lean upstream, which serves lean requests only');
      dropDpOwned(out);
      out.push(Header.coldStart, cold, Header.queueMs, queueMs);
      res.writeHead(statusCode, out);
      return true;
    }
    out[Header.coldStart] = cold;
    out[Header.queueMs] = queueMs;
    res.writeHead(statusCode, out);
    return true;
  }

  /** The sandbox finished its answer: the slot is free now; the client gets the rest buffered. */
  private responseEnded(x: Exchange): void {
    if (x.state !== 'dispatched') return;
    x.res.end();
    this.done(x, 'ok');
  }

  private callFailed(x: Exchange, err: Error, headSent: boolean): void {
    if (x.state !== 'dispatched') return;
    if (!headSent) {
      this.upstreamFailed(x, err);
      return;
    }
    // Mid-body: the status is out already, so the client sees the response cut short.
    x.res.destroy();
    this.done(x, 'response_body_failed');
  }

  private upstreamFailed(x: Exchange, err: Error): void {
    const code = (err as { code?: string }).code ?? '';
    if (code === 'ECONNREFUSED' || (connectionLostCodes.has(code) && replayable(x.req))) {
      this.retry(x, code === 'ECONNREFUSED' ? 'refused' : 'reset', err);
      return;
    }
    if (code === bodyTooLargeCode) {
      sendError(x.res, 413, 'body_too_large', err.message);
    } else {
      if (this.log.isDebugEnabled()) this.log.debug('proxy.upstream_failed', { fn: x.fn, sandbox: x.endpoint?.id, error: err.message });
      sendError(x.res, 502, 'sandbox_failure', `sandbox of ${x.fn} failed: ${err.message}`);
    }
    this.done(x, 'upstream_failed');
  }

  /**
   * Nothing came back and nothing was lost by trying again: the sandbox refused the connection
   * (nothing listens: it got none of the request), or the connection closed before any answer to
   * a request HTTP lets a proxy repeat (RFC 9110 §9.2.2: idempotent; and without a body, which is
   * consumed by then). The core tries again (or fails it: 502).
   */
  private retry(x: Exchange, cause: RetryCause, err: Error): void {
    const ep = x.endpoint!;
    if (cause === 'refused' && ep.state === 'routable') this.log.warn('proxy.sandbox_refused', { fn: x.fn, sandbox: ep.id, address: ep.address });
    else if (this.log.isDebugEnabled()) this.log.debug('proxy.upstream_retry', { fn: x.fn, sandbox: ep.id, cause, error: err.message });
    if (x.deadline) clearTimeout(x.deadline);
    x.deadline = null;
    x.upstream = null;
    runGuarded(this.log, 'callback', 'proxy.retry', () => this.run(this.admission.retry(x, this.clock.nowMs(), cause)));
  }

  /** Ends the exchange once: aborts the upstream call if still running, frees the slot. */
  private done(x: Exchange, outcome: string): void {
    if (x.state !== 'dispatched') return;
    if (x.deadline) clearTimeout(x.deadline);
    x.deadline = null;
    if (outcome !== 'ok' && x.upstream) x.upstream.abort(new Error(`exchange ended: ${outcome}`));
    if (outcome !== 'ok' && outcome !== 'upstream_failed' && this.log.isDebugEnabled()) {
      this.log.debug('proxy.exchange_ended', { fn: x.fn, sandbox: x.endpoint?.id, outcome });
    }
    runGuarded(this.log, 'callback', 'proxy.release', () => this.run(this.admission.release(x, this.clock.nowMs())));
  }

  private leanPoolFor(ep: DpEndpoint): LeanUpstreamPool {
    let entry = this.leanPools.get(ep.address);
    if (!entry) {
      const colon = ep.address.lastIndexOf(':');
      const host = ep.address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
      const pool = new LeanUpstreamPool(host, Number(ep.address.slice(colon + 1)), {
        connectionsMax: this.cfg.upstreamConnectionsMax,
        connectTimeoutMs: this.cfg.upstreamConnectTimeoutMs,
        keepAliveMs: upstreamKeepAliveMs,
        keepAliveMsMax: upstreamKeepAliveMsMax,
      }, this.clock);
      entry = { pool, users: new Set() };
      this.leanPools.set(ep.address, entry);
      if (this.leanPoolSweep === null) {
        // Idle sandbox connections past their time are dropped now and then, not only when next used.
        this.leanPoolSweep = setInterval(guarded(this.log, 'timer', 'proxy.lean_pool_sweep', () => {
          const nowMs = this.clock.nowMs();
          for (const e of this.leanPools.values()) e.pool.sweep(nowMs);
        }), connectionsCheckingIntervalMs);
        this.leanPoolSweep.unref();
      }
    }
    entry.users.add(ep.id);
    return entry.pool;
  }

  poolFor(ep: DpEndpoint): Pool {
    let entry = this.pools.get(ep.address);
    if (!entry) {
      const pool = new Pool(`http://${ep.address}`, {
        connections: this.cfg.upstreamConnectionsMax,
        pipelining: 1,
        keepAliveTimeout: upstreamKeepAliveMs,
        keepAliveMaxTimeout: upstreamKeepAliveMsMax,
        connectTimeout: this.cfg.upstreamConnectTimeoutMs,
      });
      entry = { pool, users: new Set() };
      this.pools.set(ep.address, entry);
    }
    entry.users.add(ep.id);
    return entry.pool;
  }
}

/** The TLS invocation listener: the protocol ALPN settled on (h2 or http/1.1) picks the server. */
function tlsListener(tls: ServerTls, cfg: ProxyConfig, log: Logger, hold: (serve: (socket: Socket) => void) => (socket: Socket) => void,
  serve: (socket: TLSSocket) => void): Server {
  const server = createTlsServer({
    cert: tls.certPem,
    key: tls.keyPem,
    ALPNProtocols: ['h2', 'http/1.1'],
    // The handshake counts against the header timeout (slowloris before the first request byte).
    handshakeTimeout: cfg.invocationHeadersTimeoutMs,
  }, guarded(log, 'callback', 'proxy.tls_connection', (socket: TLSSocket) => {
    socket.setNoDelay(true);
    socket.on('error', (err) => {
      if (log.isDebugEnabled()) log.debug('proxy.connection_failed', { error: err.message });
      socket.destroy();
    });
    hold((s) => serve(s as TLSSocket))(socket);
  }));
  server.on('tlsClientError', (err) => {
    if (log.isDebugEnabled()) log.debug('proxy.tls_failed', { error: err.message });
  });
  return server;
}

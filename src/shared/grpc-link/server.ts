/**
 * @module shared/grpc-link/server
 * The server end of our internal gRPC links (the CP's worker and data-plane streams), on
 * node:http2 directly, as channel.ts is for the clients. grpc-js's server runs every message
 * through its interceptor chain, metadata objects and stream wrappers; on the CP that was the
 * largest share of a stream message's cost after the codec (BENCHMARKS, "A lean gRPC server").
 *
 * What it speaks is gRPC over HTTP/2 as PROTOCOL-HTTP2.md defines it, for bidi streaming methods:
 * a POST with content-type application/grpc, messages framed with the 5-byte prefix both ways,
 * the call's status in the trailers (or in the headers alone when the call ends before any
 * message). Unknown methods end UNIMPLEMENTED; a request that is not gRPC gets HTTP 415.
 * Liveness comes from HTTP/2 pings: a connection whose peer does not answer one is closed, and
 * with it every call on it. A peer that sends pings faster than its budget (ping-budget) gets
 * GOAWAY ENHANCE_YOUR_CALM "too_many_pings" and loses its connection, as gRPC servers do; a ping
 * that follows something the server sent (headers or a message) is free, as gRPC servers count
 * them, since gRPC clients ping as data arrives to size their windows.
 */
import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { listenBacklog } from '../listen-backlog.js';
import { MessageDeframer, grpcStatus, statusTrailers, type CallStatus, type HeaderBag } from './frames.js';
import { startKeepalive } from './keepalive.js';
import { guardPings, type PingBudget } from '../ping-budget.js';

/** Limits of one server. */
export interface ServerLimits {
  /** A ping goes out on each connection after this long; one unanswered for keepaliveTimeoutMs ends it. */
  keepaliveMs: number;
  keepaliveTimeoutMs: number;
  /** The largest message accepted. */
  messageBytesMax: number;
  /** Streams one connection may hold open: the emulated workers of one process share it. */
  concurrentStreamsMax: number;
  /** Memory nghttp2 may hold for one connection. */
  sessionMemoryMiBMax: number;
  /** Flow-control windows we grant. */
  streamWindowBytes: number;
  connectionWindowBytes: number;
  /** Pings a peer may send at once, and one more per pingRefillMs (ping-budget). */
  pingBurstMax: number;
  pingRefillMs: number;
}

export const defaultServerLimits: ServerLimits = {
  keepaliveMs: 10_000,
  keepaliveTimeoutMs: 5_000,
  messageBytesMax: 64 * 1024 * 1024,
  concurrentStreamsMax: 100_000,
  sessionMemoryMiBMax: 256,
  streamWindowBytes: 1024 * 1024,
  connectionWindowBytes: 16 * 1024 * 1024,
  pingBurstMax: 10,
  pingRefillMs: 1_000,
};

/** PEM certificate chain and key the server presents (null = plain TCP). */
export interface ServerTls {
  certPem: Buffer;
  keyPem: Buffer;
}

/**
 * One call as its handler sees it. Events: 'data' (a decoded message), 'end' (the client
 * half-closed), 'close' (the call is over, for whatever reason; exactly once, last).
 */
export interface ServerCall<Out> extends EventEmitter {
  /** The request headers (authorization among them). */
  readonly metadata: HeaderBag;
  /** host:port of the client. */
  readonly peer: string;
  /** Whether messages can still be written. */
  readonly writable: boolean;
  /** Sends the response headers now (they otherwise go with the first message). */
  sendHeaders(): void;
  write(message: Out): boolean;
  /** Ends the call with `status` (OK unless given). */
  end(status?: CallStatus): void;
  /** Stops reading the client's messages (HTTP/2 flow control then stops the client) until `resume`. */
  pause(): void;
  resume(): void;
}

export interface ServerMethod<In, Out> {
  path: string;
  decode: (body: Uint8Array) => In;
  encodeFramed: (message: Out) => Buffer;
  handler: (call: ServerCall<Out>) => void;
}

const grpcContentType = 'application/grpc';
/** HTTP status for a request that is not gRPC (PROTOCOL-HTTP2.md: 415 Unsupported Media Type). */
const httpUnsupportedMediaType = 415;

/** What a service needs of a server: `GrpcServer`, or `ThreadGrpcServer` (thread-server). */
export interface GrpcServing {
  addMethod<In, Out>(method: ServerMethod<In, Out>): void;
  /** Listens on host:port (0 = any free port); resolves with the port bound. */
  listen(host: string, port: number, tls?: ServerTls | null): Promise<number>;
  /** Stops listening and ends every call. */
  close(): void | Promise<void>;
}

export class GrpcServer implements GrpcServing {
  private readonly methods = new Map<string, ServerMethod<unknown, unknown>>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  /** Each connection's ping budget, credited by what its calls send. */
  private readonly pingBudgets = new WeakMap<http2.ServerHttp2Session, PingBudget>();
  private server: http2.Http2Server | http2.Http2SecureServer | null = null;

  /**
   * `onError`: what the listening socket reports after listen (e.g. EMFILE on accept).
   * `onPeerRefused`: a connection was ended for its peer's behaviour (reason: too_many_pings).
   */
  constructor(
    private readonly limits: ServerLimits = defaultServerLimits,
    private readonly onError: (err: Error) => void = () => undefined,
    private readonly onPeerRefused: (peer: string, reason: string) => void = () => undefined,
  ) {}

  addMethod<In, Out>(method: ServerMethod<In, Out>): void {
    if (this.methods.has(method.path)) throw new Error(`method ${method.path} added twice`);
    this.methods.set(method.path, method as ServerMethod<unknown, unknown>);
  }

  /** Listens on host:port (0 = any free port); resolves with the port bound. */
  listen(host: string, port: number, tls: ServerTls | null = null): Promise<number> {
    if (this.server) throw new Error('the server listens already');
    const options: http2.ServerOptions = {
      maxSessionMemory: this.limits.sessionMemoryMiBMax,
      settings: { maxConcurrentStreams: this.limits.concurrentStreamsMax, initialWindowSize: this.limits.streamWindowBytes, enablePush: false },
    };
    const server = tls
      ? http2.createSecureServer({ ...options, cert: tls.certPem, key: tls.keyPem, allowHTTP1: false })
      : http2.createServer(options);
    this.server = server;
    server.on('session', (session: http2.ServerHttp2Session) => this.onSession(session));
    server.on('stream', (stream: http2.ServerHttp2Stream, headers: HeaderBag) => this.onStream(stream, headers));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host, backlog: listenBacklog }, () => {
        server.off('error', reject);
        server.on('error', this.onError);
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  /** Stops listening and ends every connection now; calls on them close (clients see UNAVAILABLE). */
  close(): void {
    this.server?.close();
    for (const s of this.sessions) s.destroy();
    this.sessions.clear();
  }

  private onSession(session: http2.ServerHttp2Session): void {
    this.sessions.add(session);
    const limits = this.limits;
    // A client may have gone before the connection is set up; a window of a closed one is moot.
    if (!session.destroyed) session.setLocalWindowSize(limits.connectionWindowBytes);
    const stopKeepalive = startKeepalive(session, limits.keepaliveMs, limits.keepaliveTimeoutMs);
    this.pingBudgets.set(session, guardPings(session, { burstMax: limits.pingBurstMax, refillMs: limits.pingRefillMs }, this.onPeerRefused));
    session.on('error', () => undefined); // the session closes next; its calls see that
    session.once('close', () => {
      stopKeepalive();
      this.sessions.delete(session);
    });
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: HeaderBag): void {
    stream.on('error', () => undefined); // a reset or a lost connection: 'close' follows
    const contentType = String(headers['content-type'] ?? '');
    if (headers[':method'] !== 'POST' || !(contentType === grpcContentType || contentType.startsWith(`${grpcContentType}+`) || contentType.startsWith(`${grpcContentType};`))) {
      stream.respond({ ':status': httpUnsupportedMediaType }, { endStream: true });
      return;
    }
    const method = this.methods.get(String(headers[':path']));
    if (!method) {
      stream.respond({ ':status': 200, 'content-type': grpcContentType, ...statusTrailers({ code: grpcStatus.UNIMPLEMENTED, details: `unknown method ${String(headers[':path']).slice(0, 200)}` }) }, { endStream: true });
      return;
    }
    method.handler(new LeanServerCall(stream, headers, method, this.limits.messageBytesMax, this.pingBudgets.get(stream.session as http2.ServerHttp2Session) ?? null));
  }
}

/** Emits a call's next message; one that fails to decode ends the call INTERNAL instead. */
export function emitDecoded<In>(call: ServerCall<unknown>, decode: (body: Uint8Array) => In, body: Uint8Array): void {
  let message: In;
  try {
    message = decode(body);
  } catch (err) {
    call.end({ code: grpcStatus.INTERNAL, details: `a message failed to decode: ${(err as Error).message}` });
    return;
  }
  call.emit('data', message);
}

class LeanServerCall<In, Out> extends EventEmitter implements ServerCall<Out> {
  readonly peer: string;
  private readonly deframer: MessageDeframer;
  private headersSent = false;
  /** The status the trailers carry, once the call is ending. */
  private status: CallStatus | null = null;
  private closed = false;
  private readonly deliver = (body: Buffer): void => {
    if (!this.status) emitDecoded(this, this.method.decode, body);
  };

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    readonly metadata: HeaderBag,
    private readonly method: ServerMethod<In, Out>,
    messageBytesMax: number,
    /** The connection's ping budget: what this call sends earns its peer a ping. */
    private readonly pings: PingBudget | null,
  ) {
    super();
    const socket = stream.session?.socket;
    this.peer = `${socket?.remoteAddress ?? '?'}:${socket?.remotePort ?? '?'}`;
    this.deframer = new MessageDeframer(messageBytesMax);
    stream.on('data', (chunk: Buffer) => {
      if (this.status) return;
      const fault = this.deframer.push(chunk, this.deliver);
      if (fault) this.end(fault);
    });
    stream.on('end', () => {
      if (!this.status) this.emit('end');
    });
    stream.on('wantTrailers', () => stream.sendTrailers(statusTrailers(this.status ?? { code: grpcStatus.OK, details: '' })));
    stream.on('close', () => {
      if (this.closed) return;
      this.closed = true;
      this.emit('close');
    });
  }

  get writable(): boolean {
    return this.status === null && !this.stream.destroyed && this.stream.writable;
  }

  sendHeaders(): void {
    if (this.headersSent || this.status || this.stream.destroyed) return;
    this.headersSent = true;
    this.pings?.credit();
    this.stream.respond({ ':status': 200, 'content-type': grpcContentType }, { waitForTrailers: true });
  }

  write(message: Out): boolean {
    if (!this.writable) return false;
    this.sendHeaders();
    this.pings?.credit();
    return this.stream.write(this.method.encodeFramed(message));
  }

  end(status: CallStatus = { code: grpcStatus.OK, details: '' }): void {
    if (this.status || this.stream.destroyed) return;
    this.status = status;
    const stream = this.stream;
    if (!this.headersSent) {
      // Nothing sent yet: the status goes in the headers alone (a trailers-only answer).
      this.headersSent = true;
      stream.respond({ ':status': 200, 'content-type': grpcContentType, ...statusTrailers(status) }, { endStream: true });
    } else {
      stream.end(); // 'wantTrailers' sends the status
    }
    // What the client still sends is read (the 'data' listener stays) and dropped.
  }

  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }
}

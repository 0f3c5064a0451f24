/**
 * @module shared/grpc-link/channel
 * The client end of our internal gRPC links (worker -> CP, DP -> CP), on node:http2 directly.
 * grpc-js's client puts every message through a call stack of filters, a retry buffer and its own
 * stream objects; on this link that cost a worker 2-3x the CPU per message of plain HTTP/2 and
 * 9 KiB of heap per open stream (BENCHMARKS, "A lean gRPC client"). The server end is server.ts.
 *
 * One channel is one HTTP/2 connection to one address, dialled when first needed and again after
 * it is lost; many streams share it (the emulated workers of one process). Liveness comes from
 * HTTP/2 pings, as grpc-js's keepalive did.
 */
import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import { MessageDeframer, grpcStatus, statusName, statusOfReset, statusOfTrailers, type CallStatus, type HeaderBag } from './frames.js';
import { startKeepalive } from './keepalive.js';

/** Limits of one channel. */
export interface ChannelLimits {
  /** A ping goes out after this long; an unanswered one ends the connection after keepaliveTimeoutMs. */
  keepaliveMs: number;
  keepaliveTimeoutMs: number;
  /** The largest message accepted (a routing snapshot of many functions is the big one). */
  messageBytesMax: number;
  /** Memory nghttp2 may hold for the connection: thousands of streams share one. */
  sessionMemoryMiBMax: number;
  /** Flow-control windows we grant: a big snapshot should not wait on window updates. */
  streamWindowBytes: number;
  connectionWindowBytes: number;
}

export const defaultChannelLimits: ChannelLimits = {
  keepaliveMs: 10_000,
  keepaliveTimeoutMs: 5_000,
  messageBytesMax: 64 * 1024 * 1024,
  sessionMemoryMiBMax: 256,
  streamWindowBytes: 1024 * 1024,
  connectionWindowBytes: 16 * 1024 * 1024,
};

/** No cap of ours on concurrent streams: the server's SETTINGS decide (the CP allows 100,000). */
const peerStreamsAssumedMax = 1_000_000;

/** A call that ended with a status other than OK; `code` is gRPC's status code. */
export class CallError extends Error {
  constructor(readonly code: number, readonly details: string) {
    super(`${code} ${statusName(code)}: ${details}`);
    this.name = 'CallError';
  }
}

/**
 * What a bidi stream's user sees: messages out (write), and as events 'metadata' (the server's
 * response headers), 'data' (a decoded message),
 * 'error' (a CallError: a status other than OK, a lost connection, a message that failed to
 * decode), 'end' (the call ended with OK), then 'close' after either.
 */
export interface BidiStream<Out> extends EventEmitter {
  write(message: Out): boolean;
  /** Half-closes our side; the server's status still ends the call. */
  end(): void;
  /** Ends the call now (RST_STREAM CANCEL); it ends with CANCELLED unless it had ended already. */
  cancel(): void;
}

export interface StreamMethod<Out, In> {
  path: string;
  encodeFramed: (message: Out) => Buffer;
  decode: (body: Uint8Array) => In;
}

type Waiter = (err: Error | null) => void;

export class GrpcChannel {
  private session: http2.ClientHttp2Session | null = null;
  private connected = false;
  private waiters: Waiter[] = [];
  private closed = false;
  private readonly authority: string;

  constructor(
    readonly address: string,
    private readonly caPem: Buffer | null,
    private readonly limits: ChannelLimits = defaultChannelLimits,
  ) {
    this.authority = `${caPem ? 'https' : 'http'}://${address}`;
  }

  /**
   * Calls back once the connection is up (null), or with the reason it could not be by
   * `deadlineMs` (epoch ms). Dials if no connection is up or on its way.
   */
  waitForReady(deadlineMs: number, cb: Waiter): void {
    if (this.closed) {
      process.nextTick(cb, new Error('channel closed'));
      return;
    }
    try {
      this.current();
    } catch (err) {
      process.nextTick(cb, err as Error); // an address node:http2 cannot dial
      return;
    }
    if (this.connected) {
      process.nextTick(cb, null);
      return;
    }
    let done = false;
    const timer = setTimeout(() => finish(new Error(`no connection to ${this.address} before the deadline`)), Math.max(0, deadlineMs - Date.now()));
    const finish: Waiter = (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.waiters = this.waiters.filter((w) => w !== finish);
      cb(err);
    };
    this.waiters.push(finish);
  }

  /** Opens a bidi stream on the connection (dialling it if needed), with `authorization: Bearer <token>` unless the token is null. */
  openStream<Out, In>(method: StreamMethod<Out, In>, bearerToken: string | null): BidiStream<Out> {
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': method.path,
      'content-type': 'application/grpc+proto',
      te: 'trailers',
      'grpc-accept-encoding': 'identity',
    };
    if (bearerToken !== null) headers['authorization'] = `Bearer ${bearerToken}`;
    if (this.closed) return new LeanBidiStream<Out, In>(null, method, this.limits.messageBytesMax, { code: grpcStatus.UNAVAILABLE, details: 'channel closed' });
    let req: http2.ClientHttp2Stream;
    try {
      req = this.current().request(headers);
    } catch (err) {
      // A connection that is closing refuses new streams; the caller's retry dials again.
      this.drop(this.session);
      return new LeanBidiStream<Out, In>(null, method, this.limits.messageBytesMax, { code: grpcStatus.UNAVAILABLE, details: (err as Error).message });
    }
    return new LeanBidiStream<Out, In>(req, method, this.limits.messageBytesMax, null);
  }

  /** Ends the connection and every stream on it; the channel dials no more. */
  close(): void {
    this.closed = true;
    const session = this.session;
    this.drop(session);
    session?.destroy();
    this.failWaiters(new Error('channel closed'));
  }

  /** The connection new streams go on: the live one, or a new dial. */
  private current(): http2.ClientHttp2Session {
    if (this.session) return this.session;
    const limits = this.limits;
    const session = http2.connect(this.authority, {
      ...(this.caPem ? { ca: this.caPem } : {}),
      peerMaxConcurrentStreams: peerStreamsAssumedMax,
      maxSessionMemory: limits.sessionMemoryMiBMax,
      settings: { enablePush: false, initialWindowSize: limits.streamWindowBytes },
    });
    this.session = session;
    this.connected = false;
    let stopKeepalive: (() => void) | null = null;
    session.once('connect', () => {
      if (this.session !== session) return;
      this.connected = true;
      session.setLocalWindowSize(limits.connectionWindowBytes);
      stopKeepalive = startKeepalive(session, limits.keepaliveMs, limits.keepaliveTimeoutMs);
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w(null);
    });
    // After a GOAWAY the open streams finish, and new ones go on a new connection.
    session.on('goaway', () => this.drop(session));
    session.on('error', (err: Error) => {
      if (this.session !== session) return;
      this.drop(session);
      this.failWaiters(err);
    });
    session.once('close', () => {
      stopKeepalive?.();
      if (this.session !== session) return;
      this.drop(session);
      this.failWaiters(new Error(`connection to ${this.address} closed`));
    });
    return session;
  }

  private drop(session: http2.ClientHttp2Session | null): void {
    if (session === null || this.session !== session) return;
    this.session = null;
    this.connected = false;
  }

  private failWaiters(err: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(err);
  }
}

/**
 * One call: frames and writes messages, deframes and decodes the answer, and ends exactly once
 * with the server's status, or with why it never came.
 */
class LeanBidiStream<Out, In> extends EventEmitter implements BidiStream<Out> {
  private readonly deframer: MessageDeframer;
  private httpStatus = 0;
  private status: CallStatus | null = null;
  private ended = false;
  /** The stream was cut before the server's side ended (a reset, or the connection gone). */
  private aborted = false;
  private streamError: Error | null = null;
  private readonly deliver = (body: Buffer): void => {
    if (this.ended) return;
    let message: In;
    try {
      message = this.method.decode(body);
    } catch (err) {
      this.fail({ code: grpcStatus.INTERNAL, details: `a message failed to decode: ${(err as Error).message}` });
      return;
    }
    this.emit('data', message);
  };

  constructor(
    private readonly req: http2.ClientHttp2Stream | null,
    private readonly method: StreamMethod<Out, In>,
    messageBytesMax: number,
    refusal: CallStatus | null,
  ) {
    super();
    this.deframer = new MessageDeframer(messageBytesMax);
    if (req === null) {
      // Ends on the next tick, so the caller has attached its listeners.
      process.nextTick(() => this.finish(refusal ?? { code: grpcStatus.UNAVAILABLE, details: 'no connection' }));
      return;
    }
    req.on('response', (headers: HeaderBag) => {
      this.httpStatus = Number(headers[':status']);
      // A trailers-only answer (a refusal, an unknown method) carries the status in its headers.
      if (headers['grpc-status'] !== undefined) this.status = statusOfTrailers(headers, this.httpStatus);
      else if (this.httpStatus !== 200) this.status = statusOfTrailers(headers, this.httpStatus);
      this.emit('metadata', headers);
    });
    req.on('data', (chunk: Buffer) => {
      if (this.ended) return;
      const fault = this.deframer.push(chunk, this.deliver);
      if (fault) this.fail(fault);
    });
    req.on('trailers', (trailers: HeaderBag) => {
      this.status ??= statusOfTrailers(trailers, this.httpStatus);
    });
    req.on('error', (err: Error) => {
      this.streamError = err;
    });
    req.on('aborted', () => {
      this.aborted = true;
    });
    // The server's side is over (its status came with it): the call is, even if ours is still
    // open, and the stream is released.
    req.on('end', () => {
      // Trailers come before an orderly end; a server that sent none broke the protocol. A cut
      // stream ends too, and closedStatus says why.
      if (!this.aborted) this.status ??= statusOfTrailers({}, this.httpStatus);
      const status = this.closedStatus();
      if (!req.destroyed) req.close(http2.constants.NGHTTP2_NO_ERROR);
      this.finish(status);
    });
    req.on('close', () => this.finish(this.closedStatus()));
  }

  write(message: Out): boolean {
    const req = this.req;
    if (this.ended || req === null || req.destroyed || req.writableEnded) return false;
    return req.write(this.method.encodeFramed(message));
  }

  end(): void {
    const req = this.req;
    if (req !== null && !req.destroyed && !req.writableEnded) req.end();
  }

  cancel(): void {
    this.fail({ code: grpcStatus.CANCELLED, details: 'cancelled by the client' });
  }

  /** Why the HTTP/2 stream closed, as a call status. */
  private closedStatus(): CallStatus {
    if (this.status) {
      if (this.status.code === grpcStatus.OK && this.deframer.pendingBytes > 0) {
        return { code: grpcStatus.INTERNAL, details: `the call ended inside a message (${this.deframer.pendingBytes} bytes of it)` };
      }
      return this.status;
    }
    const req = this.req;
    // A lost connection closes its streams too (node gives them rstCode CANCEL and detaches
    // them from the session); only a reset on a live connection is the server's word on the call.
    const session = req?.session;
    if (req === null || session === undefined || session.destroyed || session.closed) {
      const why = this.streamError ? this.streamError.message : 'the connection to the server closed';
      return { code: grpcStatus.UNAVAILABLE, details: why };
    }
    return statusOfReset(req.rstCode ?? 0);
  }

  /** Ends the call from our side with `status`, resetting the HTTP/2 stream. */
  private fail(status: CallStatus): void {
    if (this.ended) return;
    this.status = status;
    const req = this.req;
    if (req !== null && !req.destroyed) req.close(http2.constants.NGHTTP2_CANCEL);
    this.finish(status);
  }

  private finish(status: CallStatus): void {
    if (this.ended) return;
    this.ended = true;
    if (status.code === grpcStatus.OK) this.emit('end');
    else this.emit('error', new CallError(status.code, status.details));
    this.emit('close');
  }
}

/**
 * @module data-plane/shell/lean-upstream
 * The lean path's client to sandboxes (issue 12, part 2): keep-alive TCP connections per sandbox
 * address, a request written as one string (head) plus its buffered body in one socket write,
 * and the response read by shared/http1/h1-response straight into the client's answer, with
 * backpressure. It serves requests the lean path read whole (shared/http1/lean-h1); requests with
 * streamed bodies go through undici (shell/upstream-call).
 *
 * What undici's pool did and this keeps: at most `connectionsMax` connections per address (more
 * requests wait in order), a connect timeout, idle connections dropped after the sandbox's own
 * `Keep-Alive: timeout` less a margin (so a request is never written to a socket the sandbox is
 * closing) or after `keepAliveMs` when it names none, and a connection that answered out of turn,
 * was cut short or said `Connection: close` is never reused. A connection lost before any answer
 * takes the address's idle connections with it (the proxy's retry then connects anew).
 */
import type { Socket } from 'node:net';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { runGuarded } from '../../shared/guard.js';
import { connectSharedReads } from '../../shared/http1/client-socket.js';
import { headWithBody, oneWriteBodyBytesMax } from '../../shared/http1/one-write.js';
import { H1ResponseReader, type ResponseHead, type ResponseSink } from '../../shared/http1/h1-response.js';
import { hopByHop, type ProxyRes } from './http-util.js';
import type { UpstreamEvents } from './upstream-call.js';

export interface LeanUpstreamLimits {
  connectionsMax: number;
  connectTimeoutMs: number;
  /** Idle time of a kept-alive connection when the sandbox names none. */
  keepAliveMs: number;
  /** Longest idle time, whatever the sandbox names. */
  keepAliveMsMax: number;
}

/** A sandbox's own keep-alive timeout is shortened by this, so we never write as it closes. */
const keepAliveMarginMs = 1_000;

function lostConnection(message: string): Error {
  return Object.assign(new Error(message), { code: 'ECONNRESET' });
}

/** One TCP connection to a sandbox address, with the call it serves (null: idle). */
class UpstreamConnection {
  call: LeanUpstreamCall | null = null;
  idleUntilMs = 0;
  readonly socket: Socket;

  constructor(host: string, port: number, private readonly pool: LeanUpstreamPool, connectTimeoutMs: number) {
    // A read's bytes live until the next read of any connection: the call's reader copies what
    // it holds across reads (detachInput) and the call copies body bytes it relays.
    const socket = connectSharedReads(host, port, connectTimeoutMs, this.onRead, () =>
      Object.assign(new Error(`connect to the sandbox timed out after ${connectTimeoutMs} ms`), { code: 'DIRIGENT_CONNECT_TIMEOUT' }));
    this.socket = socket;
    socket.on('end', () => {
      if (this.call !== null) this.call.onEnd();
      socket.destroy();
    });
    socket.on('error', (err: Error) => {
      const call = this.call;
      this.call = null;
      call?.onError(err);
    });
    socket.on('close', () => {
      const call = this.call;
      this.call = null;
      this.pool.gone(this);
      call?.onError(lostConnection('the sandbox closed the connection before the response was complete'));
    });
  }

  private readonly onRead = (bytes: number, buf: Buffer): boolean => {
    if (this.call !== null) this.call.onData(buf.subarray(0, bytes));
    else this.socket.destroy(); // bytes nobody asked for: the connection's framing is unknown now
    return true;
  };
}

/** The connections to one sandbox address (emulated sandboxes of a worker share one). */
export class LeanUpstreamPool {
  private readonly open = new Set<UpstreamConnection>();
  /** Idle connections, most recently used last (reused first: warm in the sandbox's accept queue). */
  private readonly idle: UpstreamConnection[] = [];
  private readonly waiting: LeanUpstreamCall[] = [];
  private closed = false;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly limits: LeanUpstreamLimits,
    private readonly clock: Clock,
  ) {}

  dispatch(call: LeanUpstreamCall): void {
    const nowMs = this.clock.nowMs();
    let conn: UpstreamConnection | undefined;
    while ((conn = this.idle.pop()) !== undefined) {
      if (conn.idleUntilMs >= nowMs && conn.socket.writable) {
        this.run(conn, call);
        return;
      }
      conn.socket.destroy();
    }
    if (this.open.size < this.limits.connectionsMax) {
      this.run(this.connect(), call);
      return;
    }
    this.waiting.push(call);
  }

  /** A call that waits for a connection gave up. */
  unqueue(call: LeanUpstreamCall): void {
    const i = this.waiting.indexOf(call);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  /** The call on `conn` finished and the connection may carry another request. */
  release(conn: UpstreamConnection, keepAliveMs: number): void {
    conn.call = null;
    const next = this.waiting.shift();
    if (next !== undefined) {
      this.run(conn, next);
      return;
    }
    if (this.closed) {
      conn.socket.destroy();
      return;
    }
    conn.idleUntilMs = this.clock.nowMs() + keepAliveMs;
    this.idle.push(conn);
  }

  /** Idle time for a response that named `sandboxMs` (0: none). */
  keepAliveMsFor(sandboxMs: number): number {
    const ms = sandboxMs > 0 ? sandboxMs - keepAliveMarginMs : this.limits.keepAliveMs;
    return Math.min(Math.max(ms, 0), this.limits.keepAliveMsMax);
  }

  /** A connection closed (either side). */
  gone(conn: UpstreamConnection): void {
    this.open.delete(conn);
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    // A waiting call gets a new connection in the place of the closed one.
    const next = this.waiting.shift();
    if (next !== undefined) this.run(this.connect(), next);
  }

  /**
   * A connection was lost before any answer: the sandbox (or its worker) may have died, and the
   * idle connections to it may be closed already without our having read so. The proxy tries the
   * request again at once; on one of those it would be lost again, so they go, and the next call
   * connects anew (refused if nothing listens there any more).
   */
  lostBeforeAnswer(): void {
    for (const conn of this.idle.splice(0)) conn.socket.destroy();
  }

  /** Drops idle connections past their time (called now and then). */
  sweep(nowMs: number): void {
    for (const conn of [...this.idle]) if (conn.idleUntilMs < nowMs) conn.socket.destroy();
  }

  get connections(): number {
    return this.open.size;
  }

  /** No sandbox uses this address any more: idle connections go now, busy ones when their call ends. */
  close(): void {
    this.closed = true;
    for (const conn of this.idle.splice(0)) conn.socket.destroy();
  }

  /** Shutdown: every connection goes now, and the calls on them fail. */
  destroy(): void {
    this.close();
    for (const call of this.waiting.splice(0)) call.onError(lostConnection('the data plane is shutting down'));
    for (const conn of [...this.open]) conn.socket.destroy();
  }

  private connect(): UpstreamConnection {
    const conn = new UpstreamConnection(this.host, this.port, this, this.limits.connectTimeoutMs);
    this.open.add(conn);
    return conn;
  }

  private run(conn: UpstreamConnection, call: LeanUpstreamCall): void {
    conn.call = call;
    call.start(conn);
  }
}

/**
 * One proxied request on the lean upstream: reports to `UpstreamEvents` as UpstreamCall does
 * (head, then end or failed, once), and relays the body into `res` with backpressure.
 */
export class LeanUpstreamCall implements ResponseSink {
  private conn: UpstreamConnection | null = null;
  private readonly reader: H1ResponseReader;
  private headSent = false;
  private finished = false;
  private responseDone = false;
  private waitingForDrain = false;
  private keepAlive = false;
  private keepAliveMs = 0;

  constructor(
    private readonly pool: LeanUpstreamPool,
    private readonly requestHead: string,
    private readonly body: Buffer | null,
    isHeadRequest: boolean,
    private readonly res: ProxyRes,
    private readonly events: UpstreamEvents<string[]>,
    private readonly log: Logger,
  ) {
    this.reader = new H1ResponseReader(isHeadRequest);
  }

  /** Ends the call from our side (client gone, deadline); nothing is reported after this. */
  abort(_reason: Error): void {
    if (this.finished) return;
    this.finished = true;
    const conn = this.conn;
    this.conn = null;
    if (conn === null) {
      this.pool.unqueue(this);
      return;
    }
    conn.call = null;
    conn.socket.destroy();
  }

  start(conn: UpstreamConnection): void {
    if (this.finished) {
      // Aborted while it waited: the connection goes back unused.
      this.pool.release(conn, this.pool.keepAliveMsFor(0));
      return;
    }
    this.conn = conn;
    const socket = conn.socket;
    if (this.body === null) {
      socket.write(this.requestHead, 'latin1');
      return;
    }
    if (this.body.length <= oneWriteBodyBytesMax) {
      socket.write(headWithBody(this.requestHead, this.body));
      return;
    }
    socket.cork();
    socket.write(this.requestHead, 'latin1');
    socket.write(this.body);
    socket.uncork();
  }

  onData(chunk: Buffer): void {
    if (this.finished) return;
    try {
      this.reader.feed(chunk, this);
      this.reader.detachInput();
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    if (this.responseDone) this.complete();
  }

  onEnd(): void {
    if (this.finished) return;
    try {
      this.reader.eof(this);
    } catch {
      this.fail(lostConnection('the sandbox closed the connection before the response was complete'));
      return;
    }
    if (this.responseDone) this.complete();
  }

  onError(err: Error): void {
    this.fail(err);
  }

  head(h: ResponseHead): void {
    if (this.finished) return;
    this.keepAlive = h.keepAlive;
    this.keepAliveMs = h.keepAliveTimeoutMs;
    const out: string[] = [];
    const fields = h.fields;
    for (let i = 0; i < fields.length; i += 2) if (!hopByHop.has(fields[i]!)) out.push(fields[i]!, fields[i + 1]!);
    runGuarded(this.log, 'callback', 'proxy.upstream_head', () => {
      if (this.events.head(h.statusCode, out)) this.headSent = true;
      else this.abort(new Error('exchange over before the response head'));
    });
  }

  data(chunk: Buffer): void {
    if (this.finished || chunk.length === 0) return;
    // A copy: `chunk` is a view of the shared read buffer, and a write may keep its buffer.
    if (this.res.write(Buffer.from(chunk)) || this.waitingForDrain) return;
    // The client reads slower than the sandbox writes: stop reading the sandbox until it drains.
    this.waitingForDrain = true;
    this.conn?.socket.pause();
    this.res.once('drain', () => {
      this.waitingForDrain = false;
      if (!this.finished) this.conn?.socket.resume();
    });
  }

  end(): void {
    this.responseDone = true;
  }

  /** The whole response arrived: the connection goes back (or is dropped), then the proxy hears. */
  private complete(): void {
    if (this.finished) return;
    this.finished = true;
    const conn = this.conn!;
    this.conn = null;
    if (this.keepAlive && !this.reader.trailingBytes && !this.reader.closeDelimited && conn.socket.writable) {
      if (this.waitingForDrain) conn.socket.resume();
      this.pool.release(conn, this.pool.keepAliveMsFor(this.keepAliveMs));
    } else {
      conn.call = null;
      conn.socket.destroy();
    }
    runGuarded(this.log, 'callback', 'proxy.upstream_end', () => this.events.end());
  }

  private fail(err: Error): void {
    if (this.finished) return;
    this.finished = true;
    const conn = this.conn;
    this.conn = null;
    if (conn !== null) {
      conn.call = null;
      conn.socket.destroy();
      if (!this.headSent) this.pool.lostBeforeAnswer();
    }
    runGuarded(this.log, 'callback', 'proxy.upstream_failed', () => this.events.failed(err, this.headSent));
  }
}

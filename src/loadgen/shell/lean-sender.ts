/**
 * @module loadgen/shell/lean-sender
 * The load generator's own client for the bodiless requests of `bench cold` and `bench warm` over
 * plain HTTP (issue 12: the benches' load generator shares the cores with the cluster it
 * measures). Keep-alive TCP connections to one origin, each request head written as one latin1
 * string, and the answer read by shared/http1/h1-response into one buffer shared by every
 * connection (Node's `onread`): no stream objects, no parser instance per connection, no request
 * object per send. On loopback it costs about 0.6x the CPU of undici's pool per call
 * (BENCHMARKS.md, "The load generator's own client").
 *
 * What it keeps of undici's pool: at most `connectionsMax` connections (more requests wait in
 * order), a connect timeout, a timeout for each request from its write to its last byte, and a
 * connection that was cut short, said `Connection: close` or sent bytes after its answer is never
 * reused. Requests with a body, and HTTPS, stay on undici (loadgen/shell/http-sender).
 */
import type { Socket } from 'node:net';
import { connectSharedReads } from '../../shared/http1/client-socket.js';
import { H1ResponseReader, type ResponseHead, type ResponseSink } from '../../shared/http1/h1-response.js';
import { LinkedList } from '../../shared/linked-list.js';

/** How a request is sent: the path, the method and the header lines, flat (name, value, ...). */
export interface LeanRequest {
  path: string;
  method: string;
  headers: readonly string[];
}

/** What the pool reports of one request, in this order: written, head, body bytes, end or error (once). */
export interface LeanHandler {
  /** The request was written on a connection (after any wait for one). */
  onConnect(): void;
  /** The answer's status and header lines (lower-case names and values, flat). */
  onHead(statusCode: number, fields: readonly string[]): void;
  /** Body bytes; `chunk` is valid only during the call (a view of the shared read buffer). */
  onBodyChunk(chunk: Buffer): void;
  onComplete(): void;
  onError(err: Error): void;
}

export interface LeanSenderLimits {
  connectionsMax: number;
  connectTimeoutMs: number;
  /** From a request's write to its answer's last byte. */
  requestTimeoutMs: number;
}

/** How often requests in flight are checked against their timeout, at most. */
const timeoutCheckMsMax = 1_000;

function coded(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** The request head of `r` for `authority`; Host is added when the headers do not give it. */
export function leanRequestHead(r: LeanRequest, authority: string): string {
  let head = `${r.method} ${r.path} HTTP/1.1\r\n`;
  let host = false;
  for (let i = 0; i + 1 < r.headers.length; i += 2) {
    const name = r.headers[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') host = true;
    head += `${name}: ${r.headers[i + 1]!}\r\n`;
  }
  return host ? `${head}\r\n` : `${head}host: ${authority}\r\n\r\n`;
}

/** One request on its way: the handler, its reader, and when it was written. */
class Exchange implements ResponseSink {
  readonly reader: H1ResponseReader;
  writtenMs = 0;
  headSeen = false;
  done = false;
  keepAlive = false;

  constructor(readonly requestHead: string, readonly handler: LeanHandler, isHeadRequest: boolean) {
    this.reader = new H1ResponseReader(isHeadRequest);
  }

  head(h: ResponseHead): void {
    this.headSeen = true;
    this.keepAlive = h.keepAlive;
    this.handler.onHead(h.statusCode, h.fields);
  }

  data(chunk: Buffer): void {
    if (chunk.length > 0) this.handler.onBodyChunk(chunk);
  }
  end(): void {
    this.done = true;
  }
}

class Connection {
  exchange: Exchange | null = null;
  readonly socket: Socket;

  constructor(host: string, port: number, private readonly pool: LeanSenderPool, connectTimeoutMs: number) {
    const socket = connectSharedReads(host, port, connectTimeoutMs, this.onRead, () =>
      coded(`connect to ${host}:${port} timed out after ${connectTimeoutMs} ms`, 'ETIMEDOUT'));
    this.socket = socket;
    socket.on('end', () => {
      const x = this.exchange;
      if (x !== null) {
        try {
          x.reader.eof(x);
        } catch {
          // Cut short: 'close' reports it.
        }
        if (x.done) this.pool.finished(this, x);
      }
      socket.destroy();
    });
    socket.on('error', (err: Error) => this.fail(err));
    socket.on('close', () => {
      this.fail(coded('the server closed the connection before the response was complete', 'ECONNRESET'));
      this.pool.gone(this);
    });
  }

  /** The exchange in flight ends with `err`; the connection is not reused. */
  fail(err: Error): void {
    const x = this.exchange;
    if (x === null) return;
    this.exchange = null;
    this.socket.destroy();
    x.handler.onError(err);
  }

  private readonly onRead = (bytes: number, buf: Buffer): boolean => {
    const x = this.exchange;
    if (x === null) {
      this.socket.destroy(); // bytes nobody asked for: the framing is lost
      return true;
    }
    try {
      x.reader.feed(buf.subarray(0, bytes), x);
      x.reader.detachInput();
    } catch (err) {
      this.fail(err as Error);
      return true;
    }
    if (x.done) this.pool.finished(this, x);
    return true;
  };
}

/** The keep-alive connections to one plain-HTTP origin. */
export class LeanSenderPool {
  private readonly host: string;
  private readonly port: number;
  private readonly authority: string;
  private readonly open = new Set<Connection>();
  /** Idle connections, most recently used last (reused first). */
  private readonly idle: Connection[] = [];
  /** Requests waiting for a connection, in the order they were sent. */
  private readonly waiting = new LinkedList<Exchange>();
  private readonly timeoutCheck: NodeJS.Timeout;
  private closed = false;

  constructor(origin: string, private readonly limits: LeanSenderLimits) {
    const url = new URL(origin);
    if (url.protocol !== 'http:') throw new Error(`the lean sender speaks plain HTTP only, got ${origin}`);
    this.host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    this.port = Number(url.port || 80);
    this.authority = url.host;
    this.timeoutCheck = setInterval(() => this.expire(performance.now()),
      Math.min(timeoutCheckMsMax, Math.max(1, Math.floor(limits.requestTimeoutMs / 4))));
    this.timeoutCheck.unref();
  }

  /** Sends `r` now, or as soon as a connection is free. */
  dispatch(r: LeanRequest, handler: LeanHandler): void {
    if (this.closed) {
      // Not from inside the call: a closed loop that sends again on each outcome would recurse.
      process.nextTick(() => handler.onError(coded('the sender is closed', 'ECONNABORTED')));
      return;
    }
    const x = new Exchange(leanRequestHead(r, this.authority), handler, r.method === 'HEAD');
    let conn: Connection | undefined;
    while ((conn = this.idle.pop()) !== undefined) {
      if (conn.socket.writable) {
        this.run(conn, x);
        return;
      }
      conn.socket.destroy();
    }
    if (this.open.size < this.limits.connectionsMax) {
      this.run(this.connect(), x);
      return;
    }
    this.waiting.push(x);
  }

  get connections(): number {
    return this.open.size;
  }

  /** Every connection goes now; requests waiting or in flight fail. */
  close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timeoutCheck);
    for (let x = this.waiting.shift(); x !== undefined; x = this.waiting.shift()) x.handler.onError(coded('the sender is closed', 'ECONNABORTED'));
    for (const conn of [...this.open]) conn.fail(coded('the sender is closed', 'ECONNABORTED'));
    for (const conn of this.idle.splice(0)) conn.socket.destroy();
    return Promise.resolve();
  }

  /** The answer on `conn` is complete: the connection serves the next request (or idles), then the handler hears. */
  finished(conn: Connection, x: Exchange): void {
    conn.exchange = null;
    // The connection is free (or gone) before the handler hears, so a request the handler sends
    // at once can take it.
    if (x.keepAlive && !x.reader.trailingBytes && !x.reader.closeDelimited && conn.socket.writable && !this.closed) {
      const next = this.waiting.shift();
      if (next !== undefined) this.run(conn, next);
      else this.idle.push(conn);
    } else {
      conn.socket.destroy();
    }
    x.handler.onComplete();
  }

  /** A connection closed: a waiting request gets a new one in its place. */
  gone(conn: Connection): void {
    this.open.delete(conn);
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    if (this.closed) return;
    const next = this.waiting.shift();
    if (next !== undefined) this.run(this.connect(), next);
  }

  private expire(nowMs: number): void {
    for (const conn of this.open) {
      const x = conn.exchange;
      if (x === null || nowMs - x.writtenMs < this.limits.requestTimeoutMs) continue;
      const what = x.headSeen ? 'the response body' : 'the response head';
      conn.fail(coded(`${what} did not arrive within ${this.limits.requestTimeoutMs} ms`, 'ETIMEDOUT'));
    }
  }

  private connect(): Connection {
    const conn = new Connection(this.host, this.port, this, this.limits.connectTimeoutMs);
    this.open.add(conn);
    return conn;
  }

  private run(conn: Connection, x: Exchange): void {
    conn.exchange = x;
    x.writtenMs = performance.now();
    conn.socket.write(x.requestHead, 'latin1');
    x.handler.onConnect();
  }
}

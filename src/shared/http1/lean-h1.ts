/**
 * @module shared/http1/lean-h1
 * A lean HTTP/1.1 server path (issue 12, part 2), used by the DP's invocation port and by the
 * emulated sandboxes' responder: a connection reads request heads itself (h1-head) and answers
 * through a small response object that writes the head and the first body chunk in one socket
 * write. Per request it allocates a request record and a response emitter, not Node's
 * IncomingMessage/ServerResponse streams, parser callbacks and their event traffic.
 *
 * A request the lean reader does not take (see h1-head), or one the host wants a full Node
 * request for (`LeanHost.accepts`), hands the connection to Node's HTTP server with every
 * byte read so far put back: from then on Node serves that connection. A hand-over only happens
 * between exchanges, so each exchange has exactly one owner.
 *
 * One request at a time per connection: bytes of a pipelined next request wait (unread, so TCP
 * pushes back) until the current response is written.
 *
 * Timeouts as Node's server keeps them, checked by one sweep for all connections: a head must
 * arrive within `headersTimeoutMs` of its first byte, a whole request within `requestTimeoutMs`
 * (408 JSON, closed); an idle keep-alive connection is closed after `keepAliveTimeoutMs`.
 */
import { EventEmitter } from 'node:events';
import { STATUS_CODES, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import { ErrorCode } from '../../api/types.js';
import { parseLeanHead, type LeanHead, type LeanLimits } from './h1-head.js';
import { ByteAccumulator } from './byte-accumulator.js';
import { headWithBody, oneWriteBodyBytesMax } from './one-write.js';

/** Node's default `maxHeaderSize`: a longer head goes to Node, which answers 431. */
export const leanHeadBytesMax = 16_384;
const headEnd = Buffer.from('\r\n\r\n');

export interface LeanTimeouts {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

/** A request the lean path read in full (head and body). */
export class LeanRequest {
  constructor(
    readonly method: string,
    readonly url: string,
    readonly headers: IncomingHttpHeaders,
    /** The whole body (Content-Length bytes), or null without one. */
    readonly body: Buffer | null,
  ) {}
}

/** What the server does with lean requests. */
export interface LeanHost {
  /** Prefix of the events this path logs and guards ('proxy': `proxy.request`, ...). */
  readonly name: string;
  /** Runs a callback of the event loop so that a throw is logged naming `event`, not lost. */
  guard(kind: 'timer' | 'callback', event: string, fn: () => void): void;
  /** False: this request needs Node's full request (async routes...): the connection goes to Node. */
  accepts(req: LeanRequest): boolean;
  serve(req: LeanRequest, res: LeanResponse): void;
  /** Node's HTTP/1.1 server takes the connection (its unread bytes are back on the socket). */
  handOff(socket: Socket): void;
}

/** The names a lean path logs and guards under, built once from `LeanHost.name`. */
interface LeanEvents {
  request: string;
  clientClosed: string;
  handOff: string;
  sweep: string;
}

function leanEvents(name: string): LeanEvents {
  return { request: `${name}.request`, clientClosed: `${name}.lean_client_closed`, handOff: `${name}.lean_hand_off`, sweep: `${name}.lean_sweep` };
}

/** What the lean path did since start: requests served, and hand-overs to Node by reason. */
export interface LeanStats {
  requests: number;
  handOffs: Map<string, number>;
}

let dateSecond = -1;
let dateText = '';
/** The Date header, formatted once per second. */
function httpDate(): string {
  const nowMs = Date.now();
  const second = Math.floor(nowMs / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(nowMs).toUTCString();
  }
  return dateText;
}

const nonAscii = /[\u0080-\uffff]/;
const headerNameOk = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const headerValueBad = /[\r\n\0]/;

function checkHeader(name: string, value: string): void {
  if (!headerNameOk.test(name)) throw new TypeError(`invalid response header name: ${JSON.stringify(name)}`);
  if (headerValueBad.test(value)) throw new TypeError(`invalid character in response header ${name}`);
}

function isFlatList(headers: OutgoingHttpHeaders | readonly string[] | undefined): headers is readonly string[] {
  return Array.isArray(headers);
}

/** Whether writeHead's `headers` name `lowerName` (set there, it replaces a setHeader value). */
function givesHeader(headers: OutgoingHttpHeaders | readonly string[] | undefined, lowerName: string): boolean {
  if (headers === undefined) return false;
  if (!isFlatList(headers)) return lowerName in headers;
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() === lowerName) return true;
  return false;
}

/**
 * The answer to one lean request: the subset of ServerResponse the proxy uses (setHeader,
 * writeHead, write with backpressure and 'drain', end, destroy, 'finish' and 'close').
 */
export class LeanResponse extends EventEmitter {
  headersSent = false;
  destroyed = false;
  writableEnded = false;
  writableFinished = false;
  statusCode = 200;
  private extra: Record<string, string | number | readonly string[]> | null = null;
  /** The head, built by writeHead and written with the first body bytes (one socket write). */
  private head: string | null = null;
  private chunked = false;
  private readonly bodyless: boolean;

  constructor(private readonly conn: LeanConnection, isHead: boolean, private keepAlive: boolean) {
    super();
    this.bodyless = isHead;
  }

  setHeader(name: string, value: string | number | readonly string[]): this {
    if (this.headersSent) throw new Error('headers already sent');
    (this.extra ??= {})[name.toLowerCase()] = value;
    return this;
  }

  /**
   * `headers`: an object, or (as Node's `writeHead` takes too) a flat list of names and values,
   * the form the lean upstream reads a sandbox's head in.
   */
  writeHead(statusCode: number, headers?: OutgoingHttpHeaders | readonly string[]): this {
    if (this.headersSent) throw new Error('headers already sent');
    this.statusCode = statusCode;
    let text = `HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode] ?? 'unknown'}\r\n`;
    let length = false;
    let date = false;
    const add = (k: string, v: string | number | readonly string[] | undefined): void => {
      if (v === undefined) return;
      const name = k.toLowerCase();
      if (name === 'connection') {
        if (String(v).toLowerCase().includes('close')) this.keepAlive = false;
        return;
      }
      if (name === 'transfer-encoding' || name === 'keep-alive') return;
      if (name === 'content-length') length = true;
      else if (name === 'date') date = true;
      if (typeof v === 'object') {
        for (const one of v) {
          checkHeader(k, one);
          text += `${k}: ${one}\r\n`;
        }
      } else {
        const s = typeof v === 'number' ? String(v) : v;
        checkHeader(k, s);
        text += `${k}: ${s}\r\n`;
      }
    };
    if (this.extra) for (const k in this.extra) if (!givesHeader(headers, k)) add(k, this.extra[k]);
    if (isFlatList(headers)) for (let i = 0; i + 1 < headers.length; i += 2) add(headers[i]!, headers[i + 1]);
    else if (headers) for (const k in headers) add(k, headers[k] as string | number | readonly string[] | undefined);
    if (!date) text += `date: ${httpDate()}\r\n`;
    // RFC 9112 §6.3: 1xx, 204 and 304 answers and answers to HEAD have no body.
    const noBody = this.bodyless || statusCode < 200 || statusCode === 204 || statusCode === 304;
    if (!noBody && !length) {
      this.chunked = true;
      text += 'transfer-encoding: chunked\r\n';
    }
    text += this.keepAlive ? `connection: keep-alive\r\nkeep-alive: timeout=${this.conn.keepAliveS}\r\n\r\n` : 'connection: close\r\n\r\n';
    this.head = text;
    this.headersSent = true;
    return this;
  }

  write(chunk: Buffer | string): boolean {
    if (this.writableEnded || this.destroyed) return false;
    if (!this.headersSent) this.writeHead(this.statusCode);
    const socket = this.conn.socket;
    if (this.bodyless || chunk.length === 0) {
      if (this.head !== null) this.flushHead(socket);
      return !socket.writableNeedDrain;
    }
    if (this.head !== null && !this.chunked && typeof chunk !== 'string' && chunk.length <= oneWriteBodyBytesMax) {
      // The usual relayed answer (head, then the sandbox's bytes): one buffer, one plain write.
      const head = this.head;
      this.head = null;
      return socket.write(headWithBody(head, chunk));
    }
    socket.cork();
    if (this.head !== null) this.flushHead(socket);
    let ok: boolean;
    if (this.chunked) {
      socket.write(`${Buffer.byteLength(chunk).toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      ok = socket.write('\r\n', 'latin1');
    } else {
      ok = socket.write(chunk);
    }
    socket.uncork();
    return ok;
  }

  end(chunk?: Buffer | string): this {
    if (this.writableEnded || this.destroyed) return this;
    if (!this.headersSent) this.writeHead(this.statusCode);
    const socket = this.conn.socket;
    if (typeof chunk === 'string' && this.head !== null && !this.chunked && !this.bodyless && !nonAscii.test(this.head)) {
      // A whole answer in one string (a JSON reply): one write, no cork and no writev of parts.
      // An ASCII head reads the same in UTF-8 as in Latin-1, so head and body share the write.
      const text = this.head + chunk;
      this.head = null;
      this.writableEnded = true;
      socket.write(text, 'utf8', (err) => {
        if (!err) this.finished();
      });
      return this;
    }
    // A last chunk given here leaves in one write with what follows it (the chunked terminator).
    const withChunk = chunk !== undefined && chunk.length > 0;
    if (withChunk) {
      socket.cork();
      this.write(chunk);
    }
    this.writableEnded = true;
    // The last bytes carry the callback: it runs once everything reached the kernel (with an
    // error if the socket was destroyed first: 'close' follows then).
    const done = (err?: Error | null): void => {
      if (!err) this.finished();
    };
    let last = this.head;
    this.head = null;
    if (this.chunked) last = last === null ? '0\r\n\r\n' : `${last}0\r\n\r\n`;
    if (last !== null) socket.write(last, 'latin1', done);
    if (withChunk) socket.uncork();
    if (last !== null) return this;
    // Everything is with the kernel already (the usual case: the body went out in a write that
    // completed at once): no empty write, which would cost a syscall of its own.
    if (socket.writableLength === 0 && !socket.destroyed) process.nextTick(done);
    // Writes still queued (the client reads slowly): an empty write behind them carries the callback.
    else socket.write('', 'latin1', done);
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.conn.socket.destroy();
    return this;
  }

  /** The socket closed before the answer was written (called by the connection). */
  socketClosed(): void {
    if (this.writableFinished) return;
    this.destroyed = true;
    this.emit('close');
  }

  private flushHead(socket: Socket): void {
    socket.write(this.head!, 'latin1');
    this.head = null;
  }

  private finished(): void {
    if (this.destroyed) return;
    this.writableFinished = true;
    this.emit('finish');
    this.emit('close');
    this.conn.exchangeDone(this, this.keepAlive);
  }
}

/** One client connection on the lean path. */
export class LeanConnection {
  /** Bytes read and not yet consumed (a partial head or body, or a pipelined request). */
  private pending: Buffer | null = null;
  private readonly gathered = new ByteAccumulator(headEnd.length);
  /** The head of the request being read, once it is whole (read once while its body arrives). */
  private head: { head: LeanHead; bodyAt: number } | null = null;
  private current: LeanResponse | null = null;
  /** When the first byte of the request being read arrived (0: none). */
  requestStartMs = 0;
  /** When the connection last became idle (no request being read or served). */
  idleSinceMs: number;
  private handedOff = false;
  private closed = false;
  readonly keepAliveS: number;

  constructor(
    readonly socket: Socket,
    first: Buffer | null,
    private readonly host: LeanHost,
    private readonly limits: LeanLimits,
    timeouts: LeanTimeouts,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly onGone: (c: LeanConnection) => void,
    private readonly stats: LeanStats,
    private readonly events: LeanEvents,
  ) {
    this.keepAliveS = Math.max(1, Math.floor(timeouts.keepAliveTimeoutMs / 1000));
    this.idleSinceMs = clock.nowMs();
    socket.on('readable', this.onReadable);
    socket.on('close', this.onClose);
    socket.on('drain', this.onDrain);
    if (first !== null) this.take(first);
  }

  /** A request started and not finished, an exchange in flight, or idle: what the sweep checks. */
  get busy(): boolean {
    return this.current !== null;
  }

  /** Called by the sweep: closes the connection past a timeout. */
  check(nowMs: number, t: LeanTimeouts): void {
    if (this.closed || this.handedOff || this.current !== null) return;
    if (this.requestStartMs > 0) {
      const waitedMs = nowMs - this.requestStartMs;
      const headDone = this.head !== null;
      if (waitedMs > t.requestTimeoutMs || (!headDone && waitedMs > t.headersTimeoutMs)) this.timedOut();
    } else if (nowMs - this.idleSinceMs > t.keepAliveTimeoutMs) {
      this.socket.destroy();
    }
  }

  /** The exchange's answer was written; the next request, if any, is read now. */
  exchangeDone(res: LeanResponse, keepAlive: boolean): void {
    if (this.current !== res) return;
    this.current = null;
    if (!keepAlive) {
      this.socket.end();
      return;
    }
    this.idleSinceMs = this.clock.nowMs();
    if (this.pending !== null) this.requestStartMs = this.idleSinceMs;
    this.drive();
    // Bytes that arrived while the exchange ran are still in the socket.
    if (this.current === null && !this.handedOff) this.onReadable();
  }

  private readonly onReadable = (): void => {
    if (this.current !== null || this.handedOff) return; // read after the exchange
    let chunk: Buffer | null;
    while ((chunk = this.socket.read() as Buffer | null) !== null) {
      this.take(chunk);
      if (this.current !== null || this.handedOff || this.closed) return;
    }
  };

  private readonly onDrain = (): void => {
    this.current?.emit('drain');
  };

  private readonly onClose = (): void => {
    this.closed = true;
    const res = this.current;
    this.current = null;
    this.onGone(this);
    if (res !== null) this.host.guard('callback', this.events.clientClosed, () => res.socketClosed());
  };

  private take(chunk: Buffer): void {
    if (this.pending === null && this.requestStartMs === 0) this.requestStartMs = this.clock.nowMs();
    this.pending = this.gathered.append(chunk);
    this.drive();
  }

  /** Reads the next request out of `pending` and serves it, if it is all there. */
  private drive(): void {
    const buf = this.pending;
    if (buf === null || this.current !== null || this.handedOff) return;
    if (this.head === null) {
      const end = buf.indexOf(headEnd, this.gathered.scanFrom);
      if (end < 0) {
        this.gathered.searchedTo(buf.length);
        if (buf.length > leanHeadBytesMax) this.handOff('head size');
        return;
      }
      if (end > leanHeadBytesMax) {
        this.handOff('head size');
        return;
      }
      const verdict = parseLeanHead(buf.toString('latin1', 0, end), this.limits);
      if (verdict.kind === 'node') {
        if (this.log.isDebugEnabled()) this.log.debug(this.events.handOff, { why: verdict.why });
        this.handOff(verdict.why);
        return;
      }
      this.head = { head: verdict.head, bodyAt: end + 4 };
    }
    const { head: h, bodyAt } = this.head;
    const total = bodyAt + h.contentLength;
    if (buf.length < total) return; // the rest of the body is on its way
    const req = new LeanRequest(h.method, h.target, h.headers as IncomingHttpHeaders, h.contentLength > 0 ? buf.subarray(bodyAt, total) : null);
    if (!this.host.accepts(req)) {
      this.handOff('route');
      return;
    }
    this.stats.requests += 1;
    this.head = null;
    this.gathered.clear();
    // A pipelined next request starts the gathering anew (its first bytes are not copied).
    this.pending = buf.length > total ? this.gathered.append(buf.subarray(total)) : null;
    this.requestStartMs = this.pending === null ? 0 : this.clock.nowMs();
    const res = new LeanResponse(this, h.method === 'HEAD', h.keepAlive);
    this.current = res;
    this.host.guard('callback', this.events.request, () => this.host.serve(req, res));
  }

  /** Node's server takes the connection, starting with the bytes not consumed here. */
  private handOff(why: string): void {
    this.stats.handOffs.set(why, (this.stats.handOffs.get(why) ?? 0) + 1);
    this.handedOff = true;
    this.socket.removeListener('readable', this.onReadable);
    this.socket.removeListener('close', this.onClose);
    this.socket.removeListener('drain', this.onDrain);
    this.onGone(this);
    if (this.pending !== null) this.socket.unshift(this.pending);
    this.pending = null;
    this.head = null;
    this.gathered.clear();
    this.host.handOff(this.socket);
  }

  /** A request that did not arrive in time: 408 with a JSON body, then closed. */
  private timedOut(): void {
    const body = JSON.stringify({ error: { code: ErrorCode.requestTimeout, message: 'the request did not arrive in time' } });
    this.socket.end(`HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    this.socket.destroySoon();
  }
}

/** The lean connections of one listener and the sweep that applies their timeouts. */
export class LeanConnections {
  private readonly open = new Set<LeanConnection>();
  readonly stats: LeanStats = { requests: 0, handOffs: new Map() };
  private sweep: NodeJS.Timeout | null = null;
  private readonly events: LeanEvents;

  constructor(
    private readonly host: LeanHost,
    private readonly limits: LeanLimits,
    private readonly timeouts: LeanTimeouts,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly sweepPeriodMs: number,
  ) {
    this.events = leanEvents(host.name);
  }

  accept(socket: Socket, first: Buffer | null): void {
    if (this.sweep === null) {
      this.sweep = setInterval(() => this.host.guard('timer', this.events.sweep, () => this.checkAll()), this.sweepPeriodMs);
      this.sweep.unref();
    }
    this.open.add(new LeanConnection(socket, first, this.host, this.limits, this.timeouts, this.clock, this.log, (c) => this.open.delete(c), this.stats, this.events));
  }

  get size(): number {
    return this.open.size;
  }

  /** Closes every connection and stops the sweep. */
  close(): void {
    if (this.sweep !== null) clearInterval(this.sweep);
    this.sweep = null;
    for (const c of [...this.open]) c.socket.destroy();
    this.open.clear();
  }

  private checkAll(): void {
    const nowMs = this.clock.nowMs();
    for (const c of this.open) c.check(nowMs, this.timeouts);
  }
}

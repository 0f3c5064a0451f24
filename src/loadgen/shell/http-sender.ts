/**
 * @module loadgen/shell/http-sender
 * The hot path of every bench: one keep-alive pool per target origin (the load generator's own
 * lean client for the bodiless requests of `bench cold` and `bench warm` over plain HTTP,
 * undici's Pool otherwise) and a minimal handler per request. The handler object is the only
 * allocation we add per request (both clients need one); it doubles as the outcome record handed
 * to the sink, and it takes raw header lines so no header object is built. Only the two Dirigent
 * headers are decoded, and a body is kept only when asked for or when the answer is not a 2xx.
 */
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { Header } from '../../api/types.js';
import { hostNamingConnector } from '../../cli/http.js';
import { assert } from '../../shared/assert.js';
import { clusterCa } from './cluster-trust.js';
import { LeanSenderPool, type LeanHandler, type LeanRequest } from './lean-sender.js';
import type { Outcome, OutcomeSink } from '../core/recorder.js';

export const senderDefaults = Object.freeze({
  /** Bounded so a saturated target queues requests in the client instead of opening sockets. */
  connections: 256,
  /** No pipelining: a slow cold start must not hold up the requests queued behind it. */
  pipelining: 1,
  keepAliveTimeoutMs: 60_000,
  connectTimeoutMs: 10_000,
  /** Response bytes kept when the body is needed (trace replay reads `durationMs`). */
  responseBodyBytesMax: 65_536,
  /** Bytes kept of a non-2xx answer's body, always: its message says why (see the recorder). */
  errorBodyBytesMax: 4_096,
  /**
   * Requests sent before measuring: the first round opens the connections, the rest get
   * undici's and our send path optimized by the JIT. Measured here: with 512 the first 0.5 s
   * of a 10k req/s run showed 130 ms latency spikes; with ~5000 they were gone.
   */
  prewarmRequests: 5_000,
});

export interface SenderPoolOptions {
  origin: string;
  connections: number;
  /** Headers and body timeout of each request. */
  timeoutMs: number;
}

export function createSenderPool(o: SenderPoolOptions): Pool {
  return new Pool(o.origin, {
    connections: o.connections,
    pipelining: senderDefaults.pipelining,
    keepAliveTimeout: senderDefaults.keepAliveTimeoutMs,
    headersTimeout: o.timeoutMs,
    bodyTimeout: o.timeoutMs,
    // Requests route by Host (Host: <function>): TLS must still name the origin's host.
    connect: o.origin.startsWith('https:') ? hostNamingConnector(clusterCa(), senderDefaults.connectTimeoutMs) : { timeout: senderDefaults.connectTimeoutMs },
  });
}

/**
 * The pool of `bench cold` and `bench warm`: their requests have no body, so over plain HTTP
 * they go through the load generator's own lean client (loadgen/shell/lean-sender), which leaves
 * more of the shared cores to the cluster being measured; over HTTPS through undici.
 */
export type SenderPool = Dispatcher | LeanSenderPool;

export function createBodilessSenderPool(o: SenderPoolOptions): SenderPool {
  if (!o.origin.startsWith('http:')) return createSenderPool(o);
  return new LeanSenderPool(o.origin, {
    connectionsMax: o.connections,
    connectTimeoutMs: senderDefaults.connectTimeoutMs,
    requestTimeoutMs: o.timeoutMs,
  });
}

function leanRequestOf(options: Dispatcher.DispatchOptions): LeanRequest {
  assert(options.body === undefined || options.body === null, 'the lean sender sends bodiless requests only');
  assert(options.headers === undefined || options.headers === null || Array.isArray(options.headers),
    'the lean sender takes headers as a flat list');
  return { path: options.path, method: options.method, headers: (options.headers ?? []) as readonly string[] };
}

/**
 * Sends one request now. `startMs` is the caller's clock reading (performance.now()) taken
 * at the send, so the pacer and the latency share one clock read. The sink is called exactly
 * once.
 */
export function send(
  pool: SenderPool,
  options: Dispatcher.DispatchOptions,
  tag: number,
  startMs: number,
  sink: OutcomeSink,
  captureBody = false,
  bodyBytesMax: number = senderDefaults.responseBodyBytesMax,
): void {
  const handler = new InvocationHandler(tag, startMs, sink, captureBody, bodyBytesMax);
  if (pool instanceof LeanSenderPool) pool.dispatch(leanRequestOf(options), handler);
  else pool.dispatch(options, handler);
}

export interface Reply {
  /** HTTP status, 0 when no response arrived. */
  status: number;
  /** Transport error code when status is 0. */
  error: string;
  text: string;
  /** The body was longer than the bytes kept: `text` is its start only. */
  truncated: boolean;
}

/**
 * One request as a promise, on the same lean handler as the hot path (no stream objects):
 * the management calls of `bench register` are themselves what is being timed. Keeps at most
 * `bodyBytesMax` bytes of the body (`truncated` says when there was more).
 */
export function call(pool: Dispatcher, options: Dispatcher.DispatchOptions,
  bodyBytesMax: number = senderDefaults.responseBodyBytesMax): Promise<Reply> {
  return new Promise((resolve) => {
    const sink: OutcomeSink = {
      onOutcome: () => resolve({ status: handler.status, error: handler.error, text: handler.bodyText(), truncated: handler.truncated }),
    };
    const handler = new InvocationHandler(0, performance.now(), sink, true, bodyBytesMax);
    pool.dispatch(options, handler);
  });
}

/** Host of pre-warm requests: no function has it, so the data plane answers 404 at once. */
const prewarmHost = 'loadgen-prewarm';

/**
 * Opens up to `connections` keep-alive connections before measuring by sending that many
 * requests at once, in rounds until `senderDefaults.prewarmRequests` were sent. Without it,
 * the first ~0.5 s of a run pays for TCP connects, per-connection parser setup and JIT
 * warm-up, which shows up as a latency spike that belongs to the generator, not the system
 * under test. Any response (404 included) counts.
 */
export async function prewarmPool(pool: SenderPool, connections: number): Promise<void> {
  const rounds = Math.max(1, Math.ceil(senderDefaults.prewarmRequests / connections));
  const options: Dispatcher.DispatchOptions = {
    path: '/',
    method: 'GET',
    headers: ['host', prewarmHost],
  };
  for (let r = 0; r < rounds; r++) {
    await new Promise<void>((resolve) => {
      let left = connections;
      const sink: OutcomeSink = { onOutcome: () => (--left === 0 ? resolve() : undefined) };
      for (let i = 0; i < connections; i++) send(pool, options, i, performance.now(), sink);
    });
  }
}

const coldStartLength = Header.coldStart.length;
const queueMsLength = Header.queueMs.length;

/**
 * undici's raw handler interface (fewer allocations than the controller-based one), and the
 * lean sender's.
 */
class InvocationHandler implements Outcome, LeanHandler {
  status = 0;
  error = '';
  endMs = 0;
  coldStart = -1;
  queueMs = Number.NaN;
  writtenMs = Number.NaN;
  /** Body bytes arrived past `bytesMax` and were not kept. */
  truncated = false;
  private chunks: Buffer[] | null;
  private bytes = 0;
  private bytesMax: number;
  private finished = false;

  constructor(
    readonly tag: number,
    readonly startMs: number,
    private readonly sink: OutcomeSink,
    captureBody: boolean,
    bodyBytesMax: number,
  ) {
    this.chunks = captureBody ? [] : null;
    this.bytesMax = bodyBytesMax;
  }

  /** undici calls this as it writes the request on a connection (after any wait for one). */
  onConnect(): void {
    this.writtenMs = performance.now();
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    // 1xx informational responses come first and are not the answer.
    if (statusCode < 200) return true;
    this.status = statusCode;
    if (this.chunks === null && statusCode >= 300) {
      this.chunks = [];
      this.bytesMax = senderDefaults.errorBodyBytesMax;
    }
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      const len = rawHeaders[i].length;
      if (len !== coldStartLength && len !== queueMsLength) continue;
      const key = rawHeaders[i].toString('latin1').toLowerCase();
      const value = rawHeaders[i + 1].toString();
      if (key === Header.coldStart) this.coldStart = value === 'true' ? 1 : 0;
      else if (key === Header.queueMs) this.queueMs = Number(value);
    }
    return true;
  }

  /** The lean sender's head: header names come lower-case, values as text. */
  onHead(statusCode: number, fields: readonly string[]): void {
    if (statusCode < 200) return;
    this.status = statusCode;
    if (this.chunks === null && statusCode >= 300) {
      this.chunks = [];
      this.bytesMax = senderDefaults.errorBodyBytesMax;
    }
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const key = fields[i]!;
      if (key.length !== coldStartLength && key.length !== queueMsLength) continue;
      if (key === Header.coldStart) this.coldStart = fields[i + 1] === 'true' ? 1 : 0;
      else if (key === Header.queueMs) this.queueMs = Number(fields[i + 1]);
    }
  }

  /** The lean sender's body bytes: a view of its shared read buffer, so kept ones are copied. */
  onBodyChunk(chunk: Buffer): void {
    if (this.chunks !== null) this.onData(Buffer.from(chunk));
  }

  onData(chunk: Buffer): boolean {
    if (this.chunks === null) return true;
    if (this.bytes < this.bytesMax) {
      this.chunks.push(chunk);
      this.bytes += chunk.length;
    } else {
      this.truncated = true;
    }
    return true;
  }

  onComplete(): void {
    this.finish();
  }

  onError(err: Error): void {
    this.status = 0;
    this.error = (err as { code?: string }).code ?? err.name;
    this.finish();
  }

  bodyText(): string {
    return this.chunks === null ? '' : Buffer.concat(this.chunks).toString();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.endMs = performance.now();
    this.sink.onOutcome(this);
  }
}

/**
 * @module worker/runtime/emulated-runtime
 * The "emulated" SandboxRuntime (DESIGN §7): no process at all. create() waits `createMs` on a
 * timer (default 40 ms, Firecracker's snapshot-restore p50) and every sandbox's address is the
 * one shared HTTP responder, which sleeps `x-emulated-duration-ms` and answers 200.
 *
 * Scale is the point: one process will emulate 10,000 workers, so a sandbox costs one map entry
 * (plus one timer while it is being created) and all runtimes share one responder server.
 * An emulated sandbox never crashes by itself; `crash()` lets tests and simulations say it did.
 *
 * The responder stands in for user code, so what it costs is the emulator's overhead, paid on
 * the cores of the cluster it is measuring: plain requests are read and answered on the lean
 * HTTP/1.1 path (shared/http1/lean-h1: no IncomingMessage/ServerResponse streams per request);
 * anything else (a chunked or large body, HTTP/1.0, Expect) goes to Node's HTTP server with
 * the same answers.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { ErrorCode, Header, type ApiErrorBody } from '../../api/types.js';
import { functionLimits } from '../../config/defaults.js';
import { assert } from '../../shared/assert.js';
import { runGuardedAs } from '../../shared/guard.js';
import { systemClock, type Clock } from '../../shared/clock.js';
import { LeanConnections, type LeanHost, type LeanStats } from '../../shared/http1/lean-h1.js';
import { startLeanListener } from '../../shared/http1/lean-listener.js';
import { silentLogger, type Logger } from '../../shared/logger.js';
import type {
  CreateResult,
  ExitListener,
  RuntimeSandbox,
  SandboxRuntime,
  SandboxSpec,
} from './runtime.js';
import { isValidSandboxId } from './runtime.js';

/** A request may ask for at most the longest function timeout there is. */
const emulatedDurationMsMax = functionLimits.timeoutMs[1];
/**
 * Idle keep-alive connections live this long. Longer than a proxy's own idle timeout, so the
 * client side closes first and never sends into a socket the server is closing.
 */
const responderKeepAliveMs = 65_000;
/** Node's own defaults for a server: a head within 60 s, a whole request within 300 s. */
const responderHeadersTimeoutMs = 60_000;
const responderRequestTimeoutMs = 300_000;
/** How often idle and slow connections are checked against those limits. */
const responderSweepPeriodMs = 30_000;
/** A larger body is drained by Node's server as a stream instead of being read whole. */
const responderLeanBodyBytesMax = 65_536;

export interface EmulatedResponder {
  readonly host: string;
  readonly port: number;
  /** host:port, the address of every emulated sandbox using this responder. */
  readonly address: string;
  /** Requests answered on the lean path, and connections handed to Node's server by reason. */
  readonly lean: LeanStats;
  close(): Promise<void>;
}

export interface EmulatedRuntime extends SandboxRuntime {
  readonly name: 'emulated';
  /** Makes a ready sandbox vanish and fires the exit listeners. False if it was not ready. */
  crash(sandboxId: string, reason: string): boolean;
}

export interface EmulatedRuntimeOptions {
  createMs: number;
  responder: EmulatedResponder;
  clock: Clock;
}

export function createEmulatedRuntime(opts: EmulatedRuntimeOptions): EmulatedRuntime {
  assert(Number.isFinite(opts.createMs) && opts.createMs >= 0, 'createMs must be >= 0');
  return new EmulatedSandboxRuntime(opts);
}

/** Starts the one HTTP server that answers for every emulated sandbox in this process. */
export function startEmulatedResponder(opts: {
  host: string;
  port: number; // 0 = ephemeral
  log?: Logger;
}): Promise<EmulatedResponder> {
  const log = opts.log ?? silentLogger;
  const h1 = createServer({ keepAlive: true, noDelay: true }, respondEmulated);
  h1.keepAliveTimeout = responderKeepAliveMs;
  h1.headersTimeout = responderHeadersTimeoutMs;
  h1.requestTimeout = responderRequestTimeoutMs;
  const host: LeanHost = {
    name: 'responder',
    guard: (kind, event, fn) => runGuardedAs('worker', log, kind, event, fn),
    accepts: () => true,
    serve: (req, res) => answerEmulated(req.headers, res),
    handOff: (socket) => h1.emit('connection', socket),
  };
  const lean = new LeanConnections(host, { bodyBytesMax: responderLeanBodyBytesMax }, {
    headersTimeoutMs: responderHeadersTimeoutMs,
    requestTimeoutMs: responderRequestTimeoutMs,
    keepAliveTimeoutMs: responderKeepAliveMs,
  }, systemClock, log, responderSweepPeriodMs);
  return startLeanListener(lean, h1, opts.host, opts.port).then((listener) => ({
    host: opts.host,
    port: listener.port,
    address: `${opts.host}:${listener.port}`,
    lean: lean.stats,
    close: () => listener.close(),
  }));
}

/** A sandbox being created holds its timer and the creation's resolver; a ready one its record. */
type EmulatedEntry = StartingEntry | { state: 'ready'; sandbox: RuntimeSandbox };

interface StartingEntry {
  state: 'starting';
  sandboxId: string;
  fnName: string;
  t0Ms: number;
  resolve: (r: CreateResult) => void;
  timer: ReturnType<typeof setTimeout> | null;
}

class EmulatedSandboxRuntime implements EmulatedRuntime {
  readonly name = 'emulated' as const;
  private readonly sandboxes = new Map<string, EmulatedEntry>();
  private readonly listeners: ExitListener[] = [];
  private closed = false;

  constructor(private readonly opts: EmulatedRuntimeOptions) {}

  /**
   * Ready after `createMs`. One promise and one timer per creation, no async function and no
   * closures: at 4,000 cold starts/s the emulator's creations were its largest allocation site
   * (BENCHMARKS.md, "Fewer bytes per cold start").
   */
  create(spec: SandboxSpec): Promise<CreateResult> {
    const t0Ms = this.opts.clock.nowMs();
    if (this.closed) return Promise.resolve({ ok: false, reason: 'runtime closed' });
    if (!isValidSandboxId(spec.sandboxId)) {
      return Promise.resolve({ ok: false, reason: `invalid sandbox id '${spec.sandboxId}'` });
    }
    if (this.sandboxes.has(spec.sandboxId)) {
      return Promise.resolve({ ok: false, reason: `sandbox '${spec.sandboxId}' already exists` });
    }
    return new Promise<CreateResult>((resolve) => {
      const entry: StartingEntry = { state: 'starting', sandboxId: spec.sandboxId, fnName: spec.fn.name, t0Ms, resolve, timer: null };
      entry.timer = setTimeout(emulatedStarted, this.opts.createMs, this, entry);
      this.sandboxes.set(spec.sandboxId, entry);
    });
  }

  /** The creation's time is up: the sandbox is ready (unless deleted meanwhile). */
  started(entry: StartingEntry): void {
    entry.timer = null;
    if (this.sandboxes.get(entry.sandboxId) !== entry) return;
    const nowMs = this.opts.clock.nowMs();
    const sandbox: RuntimeSandbox = {
      sandboxId: entry.sandboxId,
      function: entry.fnName,
      address: this.opts.responder.address,
      createdAtMs: this.opts.clock.wallMs(),
    };
    this.sandboxes.set(entry.sandboxId, { state: 'ready', sandbox });
    entry.resolve({ ok: true, sandbox, startMs: nowMs - entry.t0Ms, readinessMs: 0, totalMs: nowMs - entry.t0Ms });
  }

  async delete(sandboxId: string): Promise<void> {
    const entry = this.sandboxes.get(sandboxId);
    if (entry === undefined) return;
    this.sandboxes.delete(sandboxId);
    if (isStarting(entry)) {
      if (entry.timer !== null) clearTimeout(entry.timer);
      entry.timer = null;
      entry.resolve({ ok: false, reason: 'deleted during start' });
    }
  }

  list(): RuntimeSandbox[] {
    const ready: RuntimeSandbox[] = [];
    for (const entry of this.sandboxes.values()) {
      if (!isStarting(entry)) ready.push(entry.sandbox);
    }
    return ready;
  }

  onExit(listener: ExitListener): void {
    this.listeners.push(listener);
  }

  crash(sandboxId: string, reason: string): boolean {
    const entry = this.sandboxes.get(sandboxId);
    if (entry === undefined || isStarting(entry)) return false;
    this.sandboxes.delete(sandboxId);
    for (const listener of this.listeners) listener(sandboxId, reason);
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const id of [...this.sandboxes.keys()]) await this.delete(id);
    assert(this.sandboxes.size === 0, 'sandboxes left after close');
  }
}

/** What an answer needs of Node's ServerResponse and of the lean path's LeanResponse. */
interface EmulatedAnswer {
  writeHead(status: number, headers: Record<string, string | number>): unknown;
  end(text: string): unknown;
  once(event: 'close', listener: () => void): unknown;
}

function isStarting(entry: EmulatedEntry): entry is StartingEntry {
  return entry.state === 'starting';
}

function emulatedStarted(runtime: EmulatedSandboxRuntime, entry: StartingEntry): void {
  runtime.started(entry);
}

/** Node's server: the body is drained first (a keep-alive connection is reusable only then). */
function respondEmulated(req: IncomingMessage, res: ServerResponse): void {
  req.on('error', () => res.destroy());
  req.once('end', () => answerEmulated(req.headers, res));
  req.resume();
}

/** 200 {"sandbox", "durationMs"} after the requested sleep; 400 when the header is bad. */
function answerEmulated(headers: IncomingHttpHeaders, res: EmulatedAnswer): void {
  const sandboxHeader = headers[Header.sandbox];
  const sandbox = typeof sandboxHeader === 'string' ? sandboxHeader : null;
  const duration = parseEmulatedDurationMs(headers[Header.emulatedDurationMs]);
  if (!duration.ok) {
    respondEmulatedJson(res, 400, duration.error);
    return;
  }
  const body = { sandbox, durationMs: duration.durationMs };
  if (duration.durationMs === 0) {
    respondEmulatedJson(res, 200, body);
    return;
  }
  const timer = setTimeout(() => respondEmulatedJson(res, 200, body), duration.durationMs);
  res.once('close', () => clearTimeout(timer)); // the client gave up: free the timer now
}

function respondEmulatedJson(res: EmulatedAnswer, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

type DurationParse = { ok: true; durationMs: number } | { ok: false; error: ApiErrorBody };

/** Absent = 0; otherwise a non-negative decimal number of milliseconds within the limit. */
export function parseEmulatedDurationMs(value: string | string[] | undefined): DurationParse {
  if (value === undefined) return { ok: true, durationMs: 0 };
  const text = Array.isArray(value) ? value.join(',') : value.trim();
  const durationMs = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (Number.isFinite(durationMs) && durationMs <= emulatedDurationMsMax) {
    return { ok: true, durationMs };
  }
  const shown = text.length > 40 ? `${text.slice(0, 40)}...` : text;
  const message =
    `${Header.emulatedDurationMs} must be a number of ms in [0, ${emulatedDurationMsMax}],` +
    ` got '${shown}'`;
  return {
    ok: false,
    error: { error: { code: ErrorCode.invalidField, message, field: Header.emulatedDurationMs } },
  };
}

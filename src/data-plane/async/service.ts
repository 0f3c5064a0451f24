/**
 * @module data-plane/async/service
 * The DP's async invocations (issue #11): intake (limits, then a durable accept before the 202),
 * reads (get, list), re-drive, and the dispatcher that runs stored invocations. Queue-length
 * limits use counts cached here: loaded from the store at start and on a period, and updated
 * locally on every accept and finish, so a submit never queries the store for them.
 */
import type { Logger } from '../../shared/logger.js';
import type { AsyncStore, ListPage, ListQuery, RedriveResult } from './store.js';
import { pageLimit } from './store.js';
import { asyncInvocationId, type AsyncInvocation, type AsyncStatus } from './types.js';

export interface AsyncLimits {
  asyncBodyBytesMax: number;
  asyncQueuePerFunctionMax: number;
  asyncQueueTotalMax: number;
}

export interface SubmitInput {
  functionKey: string;
  functionUid?: string;
  method: string;
  path: string;
  query?: string;
  headers: Record<string, string>;
  body: Uint8Array;
  idempotencyKey?: string;
  callbackUrl?: string;
}

export type SubmitResult =
  | { kind: 'accepted' | 'duplicate'; id: string }
  | { kind: 'refused'; status: number; code: string; message: string; field?: string };

/** Anything the service needs to run invocations: the dispatcher implements it. */
export interface AsyncRunner {
  start(): void;
  /** New work is due now (a fresh accept or re-drive). */
  poke(): void;
  close(): Promise<void>;
}

/** Local view of the store's unfinished counts. */
class QueueCounts {
  byFunction = new Map<string, number>();
  total = 0;
  add(fn: string, n: number): void {
    const v = Math.max(0, (this.byFunction.get(fn) ?? 0) + n);
    if (v === 0) this.byFunction.delete(fn);
    else this.byFunction.set(fn, v);
    this.total = Math.max(0, this.total + n);
  }
  load(byFunction: Record<string, number>, total: number): void {
    this.byFunction = new Map(Object.entries(byFunction));
    this.total = total;
  }
}

export class AsyncService {
  readonly counts = new QueueCounts();
  private runner: AsyncRunner | null = null;
  /** Names this DP in new ids when its store is its own ('' with a shared store; see owner.ts). */
  ownerTag = '';
  /** Metrics hook, called once per new accept. */
  onAccepted: (functionKey: string) => void = () => {};

  constructor(
    readonly store: AsyncStore,
    private readonly limits: AsyncLimits,
    private readonly randomBytes: () => Uint8Array,
    private readonly log: Logger,
  ) {}

  attachRunner(runner: AsyncRunner): void {
    this.runner = runner;
  }

  async start(nowMs = Date.now()): Promise<void> {
    await this.refreshCounts(nowMs);
    this.runner?.start();
  }

  async refreshCounts(nowMs: number): Promise<void> {
    const c = await this.store.counts(nowMs);
    this.counts.load(c.queuedByFunction, c.queuedTotal);
  }

  async close(): Promise<void> {
    await this.runner?.close();
    await this.store.close();
  }

  async submit(input: SubmitInput, nowMs: number): Promise<SubmitResult> {
    const refused = this.checkLimits(input);
    if (refused) return refused;
    const inv: AsyncInvocation = {
      id: asyncInvocationId(nowMs, this.randomBytes(), this.ownerTag),
      functionKey: input.functionKey,
      request: {
        method: input.method, path: input.path, query: input.query ?? '', headers: input.headers, body: Buffer.from(input.body),
      },
      status: 'queued',
      attempts: [],
      nextAttemptAtMs: nowMs,
      acceptedAtMs: nowMs,
    };
    if (input.functionUid) inv.functionUid = input.functionUid;
    if (input.idempotencyKey) inv.idempotencyKey = input.idempotencyKey;
    if (input.callbackUrl) inv.callbackUrl = input.callbackUrl;
    let r;
    try {
      r = await this.store.accept(inv);
    } catch (err) {
      this.log.warn('async.accept_failed', { fn: input.functionKey, error: (err as Error).message });
      return { kind: 'refused', status: 503, code: 'async_store_unavailable', message: 'the async store is unavailable, try again' };
    }
    if (r.kind === 'accepted') {
      this.counts.add(input.functionKey, 1);
      this.onAccepted(input.functionKey);
      this.runner?.poke();
    }
    return r;
  }

  /** An invocation finished (succeeded, failed, dead): it no longer counts against the queue limits. */
  finished(functionKey: string): void {
    this.counts.add(functionKey, -1);
  }

  get(id: string): Promise<AsyncInvocation | undefined> {
    return this.store.get(id);
  }

  list(query: ListQuery): Promise<ListPage> {
    return this.store.list({ ...query, limit: pageLimit(query.limit) });
  }

  async retry(id: string, nowMs: number): Promise<RedriveResult> {
    const inv = await this.store.get(id);
    const r = await this.store.redrive(id, nowMs);
    if (r === 'ok') {
      if (inv) this.counts.add(inv.functionKey, 1);
      this.runner?.poke();
    }
    return r;
  }

  private checkLimits(input: SubmitInput): SubmitResult | null {
    const l = this.limits;
    if (input.body.length > l.asyncBodyBytesMax) {
      return {
        kind: 'refused', status: 413, code: 'async_body_too_large', field: 'body',
        message: `async request body of ${input.body.length} bytes exceeds asyncBodyBytesMax ${l.asyncBodyBytesMax}`,
      };
    }
    const fnQueued = this.counts.byFunction.get(input.functionKey) ?? 0;
    if (fnQueued >= l.asyncQueuePerFunctionMax) {
      return {
        kind: 'refused', status: 429, code: 'async_queue_full',
        message: `function ${input.functionKey} has ${fnQueued} unfinished async invocations: asyncQueuePerFunctionMax ${l.asyncQueuePerFunctionMax}`,
      };
    }
    if (this.counts.total >= l.asyncQueueTotalMax) {
      return {
        kind: 'refused', status: 429, code: 'async_queue_full',
        message: `${this.counts.total} unfinished async invocations in total: asyncQueueTotalMax ${l.asyncQueueTotalMax}`,
      };
    }
    return null;
  }
}

/** The public JSON of one invocation (GET /v1/invocations/{id}). */
export function invocationView(inv: AsyncInvocation): Record<string, unknown> {
  const dot = inv.functionKey.lastIndexOf('.');
  const view: Record<string, unknown> = {
    id: inv.id,
    function: inv.functionKey,
    namespace: dot > 0 ? inv.functionKey.slice(dot + 1) : 'default',
    status: inv.status,
    acceptedAt: new Date(inv.acceptedAtMs).toISOString(),
    attempts: inv.attempts.map((a) => ({
      startedAt: new Date(a.startedAtMs).toISOString(),
      endedAt: new Date(a.endedAtMs).toISOString(),
      outcome: a.outcome,
      ...(a.statusCode !== undefined ? { statusCode: a.statusCode } : {}),
      ...(a.error !== undefined ? { error: a.error } : {}),
    })),
  };
  if (inv.finishedAtMs !== undefined) view.finishedAt = new Date(inv.finishedAtMs).toISOString();
  if (inv.deadReason) view.deadReason = inv.deadReason;
  if (inv.callback) {
    // Where the X-Callback-Url delivery stands (the URL itself is the caller's own).
    view.callback = {
      state: inv.callback.state, attempts: inv.callback.attempts,
      ...(inv.callback.state === 'pending' ? { nextAt: new Date(inv.callback.nextAtMs).toISOString() } : {}),
      ...(inv.callback.lastError !== undefined ? { lastError: inv.callback.lastError } : {}),
    };
  }
  if (inv.result) {
    const body = inv.result.body;
    const text = utf8OrNull(body);
    view.result = {
      statusCode: inv.result.statusCode,
      headers: inv.result.headers,
      ...(text !== null ? { body: text } : { bodyBase64: body.toString('base64') }),
    };
  }
  return view;
}

/** A summary for list pages (no bodies). */
export function summaryView(inv: { id: string; functionKey: string; status: AsyncStatus; acceptedAtMs: number; attempts: unknown[] }): Record<string, unknown> {
  return { id: inv.id, function: inv.functionKey, status: inv.status, acceptedAt: new Date(inv.acceptedAtMs).toISOString(), attempts: inv.attempts.length };
}

function utf8OrNull(b: Buffer): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    return null;
  }
}

/**
 * @module data-plane/async/sqlite-async-store
 * The embedded AsyncStore: SQLite on the DP's state dir (WAL, synchronous=FULL), run in a
 * worker_thread (`sqlite-async-thread.ts`) with group commit: all requests of one event-loop turn
 * travel as one message, share one transaction and one fsync, and come back as one message. One
 * DP owns one database, so the lease only matters after that DP restarts: what it was running
 * becomes claimable once the lease ran out.
 */
import { Worker } from 'node:worker_threads';
import type { AsyncOpName, AsyncThreadData, AsyncThreadReply, AsyncThreadRequest } from './sqlite-async-protocol.js';
import {
  AsyncStoreError, asyncStoreDefaults,
  type AcceptResult, type AsyncCounts, type CallbackUpdate, type AsyncStore, type AsyncStoreOptions, type GcResult, type ListPage,
  type ListQuery, type OwnerWriteResult, type RedriveResult,
} from './store.js';
import type { AsyncAttempt, AsyncInvocation, AsyncResult } from './types.js';

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

export interface SqliteAsyncStoreOptions extends AsyncStoreOptions {
  /** Measuring only: false commits every request on its own. */
  groupCommit: boolean;
}

/** Buffers cross postMessage as plain Uint8Arrays; give callers Buffers back. */
function toBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function revive(inv: AsyncInvocation): AsyncInvocation {
  inv.request.body = toBuffer(inv.request.body);
  if (inv.result) inv.result.body = toBuffer(inv.result.body);
  return inv;
}

export class SqliteAsyncStore implements AsyncStore {
  private readonly thread: Worker;
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private failure: Error | null = null;
  /** Requests of this turn, sent to the thread as one message (one structured clone, one wake-up). */
  private outbox: AsyncThreadRequest[] = [];

  constructor(path: string, options: Partial<SqliteAsyncStoreOptions> = {}) {
    const { groupCommit = true, ...rest } = options;
    const workerData: AsyncThreadData = { path, options: { ...asyncStoreDefaults, ...rest }, groupCommit };
    this.thread = new Worker(new URL('./sqlite-async-thread.js', import.meta.url), { workerData });
    this.thread.on('message', (replies: AsyncThreadReply[]) => {
      for (const r of replies) this.onReply(r);
    });
    this.thread.on('error', (err) => this.failAll(new AsyncStoreError(`async sqlite thread failed: ${err.message}`, { cause: err })));
    this.thread.on('exit', () => this.failAll(new AsyncStoreError('async sqlite thread exited')));
  }

  accept(inv: AsyncInvocation): Promise<AcceptResult> {
    return this.call('accept', inv) as Promise<AcceptResult>;
  }

  async claim(consumerId: string, nowMs: number, max: number): Promise<AsyncInvocation[]> {
    return ((await this.call('claim', consumerId, nowMs, max)) as AsyncInvocation[]).map(revive);
  }

  renew(id: string, consumerId: string, nowMs: number): Promise<OwnerWriteResult> {
    return this.call('renew', id, consumerId, nowMs) as Promise<OwnerWriteResult>;
  }

  complete(id: string, consumerId: string, result: AsyncResult, attempt: AsyncAttempt): Promise<OwnerWriteResult> {
    return this.call('complete', id, consumerId, result, attempt) as Promise<OwnerWriteResult>;
  }

  scheduleRetry(id: string, consumerId: string, attempt: AsyncAttempt, nextAttemptAtMs: number): Promise<OwnerWriteResult> {
    return this.call('scheduleRetry', id, consumerId, attempt, nextAttemptAtMs) as Promise<OwnerWriteResult>;
  }

  deadLetter(id: string, consumerId: string, attempt: AsyncAttempt, reason: string, result?: AsyncResult): Promise<OwnerWriteResult> {
    return this.call('deadLetter', id, consumerId, attempt, reason, result) as Promise<OwnerWriteResult>;
  }

  async get(id: string): Promise<AsyncInvocation | undefined> {
    const inv = (await this.call('get', id)) as AsyncInvocation | undefined;
    return inv && revive(inv);
  }

  list(query: ListQuery): Promise<ListPage> {
    return this.call('list', query) as Promise<ListPage>;
  }

  redrive(id: string, nowMs: number): Promise<RedriveResult> {
    return this.call('redrive', id, nowMs) as Promise<RedriveResult>;
  }

  counts(nowMs: number): Promise<AsyncCounts> {
    return this.call('counts', nowMs) as Promise<AsyncCounts>;
  }

  async claimCallbacks(consumerId: string, nowMs: number, leaseMs: number, max: number): Promise<AsyncInvocation[]> {
    return ((await this.call('claimCallbacks', consumerId, nowMs, leaseMs, max)) as AsyncInvocation[]).map(revive);
  }

  recordCallback(id: string, consumerId: string, update: CallbackUpdate): Promise<OwnerWriteResult> {
    return this.call('recordCallback', id, consumerId, update) as Promise<OwnerWriteResult>;
  }

  gc(nowMs: number): Promise<GcResult> {
    return this.call('gc', nowMs) as Promise<GcResult>;
  }

  async close(): Promise<void> {
    if (this.failure) return;
    const exited = new Promise<void>((r) => this.thread.once('exit', () => r()));
    await this.call('close');
    await exited;
  }

  private call(op: AsyncOpName, ...args: unknown[]): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    this.seq += 1;
    const seq = this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      this.outbox.push({ seq, op, args });
      if (this.outbox.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const batch = this.outbox;
    this.outbox = [];
    if (batch.length > 0 && !this.failure) this.thread.postMessage(batch);
  }

  private onReply(r: AsyncThreadReply): void {
    const p = this.pending.get(r.seq);
    if (!p) return;
    this.pending.delete(r.seq);
    if (r.ok) p.resolve(r.value);
    else p.reject(new AsyncStoreError(`async sqlite op failed: ${r.error}`));
  }

  private failAll(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

/** The DP's embedded async store at `path` (created with its schema on first use). */
export function openSqliteAsyncStore(path: string, options: Partial<SqliteAsyncStoreOptions> = {}): SqliteAsyncStore {
  return new SqliteAsyncStore(path, options);
}

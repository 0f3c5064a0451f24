/**
 * @module data-plane/async/store
 * The AsyncStore port: durable storage and hand-out of async invocations. Every write is durable
 * when its promise resolves (the DP answers 202 only after `accept` resolved). Time comes in as
 * arguments (`nowMs`, attempt timestamps) so the contract suite runs on virtual time; the one
 * exception is Redis's lease, which is the stream's idle time (see redis-async-store.ts).
 * Expected outcomes (not the owner, not found) are union results, not exceptions.
 */
import type { AsyncAttempt, AsyncInvocation, AsyncInvocationSummary, AsyncResult, AsyncStatus, CallbackState } from './types.js';

/** Named limits and times shared by both backends. */
export interface AsyncStoreOptions {
  /** Finished (succeeded, failed, dead) invocations are kept this long, then `gc` drops them. */
  resultRetentionMs: number;
  /** An idempotency key maps to its invocation this long after the accept. */
  idempotencyKeyRetentionMs: number;
  /** A running invocation whose owner did not finish or renew it within this is claimable again. */
  claimLeaseMs: number;
}

export const asyncStoreDefaults: AsyncStoreOptions = {
  resultRetentionMs: 24 * 3_600_000,
  idempotencyKeyRetentionMs: 24 * 3_600_000,
  claimLeaseMs: 60_000,
};

/** Most invocations one `claim` hands out. */
export const asyncClaimMax = 256;
/** Largest page `list` returns. */
export const asyncListLimitMax = 500;
/** Most finished invocations (and most expired idempotency keys) one `gc` call drops. */
export const asyncGcBatchMax = 5_000;

export type AcceptResult = { kind: 'accepted'; id: string } | { kind: 'duplicate'; id: string };

/** Result of a write by the consumer that claimed the invocation. */
export type OwnerWriteResult = 'ok' | 'not_found' | 'not_owner';

export type RedriveResult = 'ok' | 'not_found' | 'not_redrivable';

/** What the delivering DP records after one callback POST (`owner` is not part of it). */
export type CallbackUpdate = Omit<CallbackState, 'owner'>;

/** Most callbacks one `claimCallbacks` hands out. */
export const asyncCallbackClaimMax = 128;

export interface ListQuery {
  functionKey?: string;
  status?: AsyncStatus;
  /** `nextCursor` of the previous page; absent for the first page. */
  cursor?: string;
  /** 1..asyncListLimitMax */
  limit: number;
}

export interface ListPage {
  items: AsyncInvocationSummary[];
  /** Present when more items may follow. */
  nextCursor?: string;
}

export interface AsyncCounts {
  /** Not finished yet (queued or running), per function: the queue-length limits count these. */
  queuedByFunction: Record<string, number>;
  queuedTotal: number;
  /** Age of the oldest unfinished invocation at `nowMs`, 0 when none. */
  oldestQueuedAgeMs: number;
  /** The same per function (only functions with unfinished invocations). */
  oldestQueuedAgeMsByFunction: Record<string, number>;
}

export interface GcResult {
  invocationsDropped: number;
  idempotencyKeysDropped: number;
}

export interface AsyncStore {
  /** Store a new invocation (status queued). A live idempotency key of the same function returns its id. */
  accept(inv: AsyncInvocation): Promise<AcceptResult>;
  /**
   * Up to `max` (<= asyncClaimMax) due invocations leased to `consumerId`: queued ones whose
   * nextAttemptAtMs <= nowMs, and running ones whose owner's lease ran out (a dead DP's work).
   */
  claim(consumerId: string, nowMs: number, max: number): Promise<AsyncInvocation[]>;
  /** Keep the lease of a long-running invocation alive. */
  renew(id: string, consumerId: string, nowMs: number): Promise<OwnerWriteResult>;
  /** Finish: succeeded when the attempt's outcome is ok, failed otherwise (a non-retried 4xx). */
  complete(id: string, consumerId: string, result: AsyncResult, attempt: AsyncAttempt): Promise<OwnerWriteResult>;
  /** Back to queued, claimable from nextAttemptAtMs on. */
  scheduleRetry(id: string, consumerId: string, attempt: AsyncAttempt, nextAttemptAtMs: number): Promise<OwnerWriteResult>;
  /** Give up: status dead with the reason (and the last response, when there was one). */
  deadLetter(id: string, consumerId: string, attempt: AsyncAttempt, reason: string, result?: AsyncResult): Promise<OwnerWriteResult>;
  get(id: string): Promise<AsyncInvocation | undefined>;
  /** Oldest first (by id), paged. */
  list(query: ListQuery): Promise<ListPage>;
  /** Dead or failed back to queued, due at nowMs; attempts are kept, the callback state is cleared. */
  redrive(id: string, nowMs: number): Promise<RedriveResult>;
  counts(nowMs: number): Promise<AsyncCounts>;
  /**
   * Up to `max` (<= asyncCallbackClaimMax) finished invocations whose callback is pending and due
   * (callback.nextAtMs <= nowMs), leased to `consumerId` until nowMs + leaseMs: another consumer
   * claims it only after that (its DP died mid-delivery). `complete` and `deadLetter` of an
   * invocation with a callbackUrl set its callback pending, due at once, in the same write.
   */
  claimCallbacks(consumerId: string, nowMs: number, leaseMs: number, max: number): Promise<AsyncInvocation[]>;
  /** The outcome of a claimed callback's POST: sent, abandoned, or pending again from nextAtMs. */
  recordCallback(id: string, consumerId: string, update: CallbackUpdate): Promise<OwnerWriteResult>;
  /** Drop finished invocations past retention and expired idempotency keys. */
  gc(nowMs: number): Promise<GcResult>;
  close(): Promise<void>;
}

export class AsyncStoreError extends Error {
  readonly code = 'async_store_failed';
}

/** Clamp a caller's page size into 1..asyncListLimitMax. */
export function pageLimit(limit: number): number {
  return Math.min(asyncListLimitMax, Math.max(1, Math.floor(limit) || 1));
}

/** The status an attempt ends an invocation with when no retry follows. */
export function finishedStatusOf(attempt: AsyncAttempt): AsyncStatus {
  return attempt.outcome === 'ok' ? 'succeeded' : 'failed';
}

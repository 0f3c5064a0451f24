/**
 * @module data-plane/async/sqlite-async-protocol
 * Messages between `SqliteAsyncStore` (DP thread) and `sqlite-async-thread` (its worker_thread):
 * a method name of `SqliteAsyncOps` with its arguments, answered by sequence number.
 */
import type { AsyncStoreOptions } from './store.js';

export interface AsyncThreadData {
  path: string;
  options: AsyncStoreOptions;
  /** false only for measuring: one transaction (one fsync) per request. */
  groupCommit: boolean;
}

export type AsyncOpName =
  | 'accept' | 'claim' | 'renew' | 'complete' | 'scheduleRetry' | 'deadLetter'
  | 'get' | 'list' | 'redrive' | 'counts' | 'gc' | 'close' | 'claimCallbacks' | 'recordCallback';

export interface AsyncThreadRequest {
  seq: number;
  op: AsyncOpName;
  args: unknown[];
}

export type AsyncThreadReply = { seq: number; ok: true; value: unknown } | { seq: number; ok: false; error: string };

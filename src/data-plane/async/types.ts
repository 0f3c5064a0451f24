/**
 * @module data-plane/async/types
 * The durable record of one asynchronous invocation (issue #11): what was asked (the request as
 * accepted), where it is (status, owner, next attempt), what happened (attempts) and what came
 * back (result). Both async stores keep exactly this shape.
 */

export type AsyncStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'dead';

/** Statuses that end an invocation: its result is kept for the retention time, then dropped. */
export const finishedStatuses: readonly AsyncStatus[] = ['succeeded', 'failed', 'dead'];

export type AttemptOutcome = 'ok' | 'http_5xx' | 'http_4xx' | 'timeout' | 'transport';

export interface AsyncAttempt {
  startedAtMs: number;
  endedAtMs: number;
  outcome: AttemptOutcome;
  statusCode?: number;
  error?: string;
}

export interface AsyncRequest {
  method: string;
  path: string;
  /** The raw query string without '?', '' when none. */
  query: string;
  /** Already filtered by the DP (hop-by-hop and credential headers removed). */
  headers: Record<string, string>;
  body: Buffer;
}

export interface AsyncResult {
  statusCode: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Delivery of the X-Callback-Url POST: pending from the finish on, until sent or abandoned. */
export type CallbackDelivery = 'pending' | 'sent' | 'abandoned';

/**
 * Stored with the invocation (set in the same write that finishes it), so a restarted DP, or
 * another DP on the same Redis, delivers a callback the DP that finished it did not.
 */
export interface CallbackState {
  state: CallbackDelivery;
  /** POSTs made so far. */
  attempts: number;
  /** While pending: when the next POST is due; a claim moves it to the end of its lease. */
  nextAtMs: number;
  /** The DP delivering it now (set by a claim, cleared by its record). */
  owner?: string;
  /** Why the last POST failed, or why the callback was abandoned. */
  lastError?: string;
}

export interface AsyncInvocation {
  /** Sortable: ids of later accepts compare greater (see `asyncInvocationId`). */
  id: string;
  /** The function's name (namespaced key). */
  functionKey: string;
  functionUid?: string;
  request: AsyncRequest;
  idempotencyKey?: string;
  callbackUrl?: string;
  status: AsyncStatus;
  attempts: AsyncAttempt[];
  nextAttemptAtMs: number;
  acceptedAtMs: number;
  /** Set by `redrive`: attempts and event age count from here for the retry policy. */
  redrivenAtMs?: number;
  /** Set when the status became succeeded, failed or dead; retention counts from here. */
  finishedAtMs?: number;
  deadReason?: string;
  result?: AsyncResult;
  /** The consumer (DP) running it, while running. */
  owner?: string;
  /** While running: the owner's claim is live until then (SQLite); Redis uses the stream's idle time. */
  leaseUntilMs?: number;
  /** Present once an invocation with a callbackUrl finished; a re-drive clears it. */
  callback?: CallbackState;
}

/** A listed invocation: everything but the two bodies, so a page stays small. */
export type AsyncInvocationSummary = Omit<AsyncInvocation, 'request' | 'result'> & {
  request: Omit<AsyncRequest, 'body'> & { bodyBytes: number };
  result?: Omit<AsyncResult, 'body'> & { bodyBytes: number };
};

/** Width of the time part of an id: base-36 milliseconds, enough for the year 5000. */
const idTimeDigits = 9;

/**
 * A new id: base-36 acceptance time (so ids sort by time, which paging relies on), the owner
 * tag of the accepting DP when its store is its own (see async/owner.ts; '' = none), plus random
 * bytes from the caller (shells pass crypto randomness; tests pass fixed bytes).
 */
export function asyncInvocationId(nowMs: number, random: Uint8Array, ownerTag = ''): string {
  const time = Math.max(0, Math.floor(nowMs)).toString(36).padStart(idTimeDigits, '0');
  return `${time}-${ownerTag === '' ? '' : `${ownerTag}-`}${Buffer.from(random).toString('hex')}`;
}

export function summarize(inv: AsyncInvocation): AsyncInvocationSummary {
  const { request, result, ...rest } = inv;
  const { body, ...reqRest } = request;
  const summary: AsyncInvocationSummary = { ...rest, request: { ...reqRest, bodyBytes: body.length } };
  if (result) {
    const { body: resBody, ...resRest } = result;
    summary.result = { ...resRest, bodyBytes: resBody.length };
  }
  return summary;
}

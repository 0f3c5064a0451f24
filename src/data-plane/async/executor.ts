/**
 * @module data-plane/async/executor
 * One attempt of an async invocation through the normal path: a waiter is admitted into the DP
 * core (same queue, slots, cold start, load balancing) and, once dispatched, the stored request
 * goes over the proxy's upstream pool to the sandbox (an in-process exchange, no HTTP request to
 * ourselves). The response is buffered up to asyncResultBytesMax; past it the body is cut and
 * the `x-dirigent-result-truncated` header says so. A sandbox that refuses the connection does
 * not cost the attempt: the core moves the waiter to another sandbox (see `send`).
 */
import type { Dispatcher } from 'undici';
import { Header } from '../../api/types.js';
import type { Clock } from '../../shared/clock.js';
import { newWaiter, type DataPlaneCore, type DpEffect, type DpEndpoint, type Waiter } from '../core/data-plane.js';
import { hopByHop } from '../shell/http-util.js';
import type { ExecOutcome } from './dispatcher.js';
import { storedSubmitToken, submitTokenHeader } from './submit-token.js';
import type { AsyncInvocation } from './types.js';

export const truncatedHeader = 'x-dirigent-result-truncated';

/** A core waiter that is an async attempt: the effect runner hands its dispatch and fail here. */
export interface AsyncWaiter extends Waiter {
  asyncAttempt: true;
  onDispatch(): void;
  onFail(status: number, code: string, message: string): void;
}

export function isAsyncWaiter(w: Waiter): w is AsyncWaiter {
  return (w as Partial<AsyncWaiter>).asyncAttempt === true;
}

export interface ExecutorDeps {
  core: DataPlaneCore;
  clock: Clock;
  run(effects: DpEffect[]): void;
  poolFor(ep: DpEndpoint): Dispatcher;
  resultBytesMax: number;
  /** The DP's auth setting is 'token'. */
  authToken: boolean;
}

export function executeAsync(d: ExecutorDeps, inv: AsyncInvocation): Promise<ExecOutcome> {
  return new Promise((resolve) => {
    // Attempt times are stored (epoch ms); the core's waiter runs on the monotonic clock.
    const startedAtMs = d.clock.wallMs();
    const arrivalMs = d.clock.nowMs();
    const end = (o: Omit<Extract<ExecOutcome, { kind: 'done' }>['attempt'], 'startedAtMs' | 'endedAtMs'>, result?: ExecOutcomeResult): void => {
      resolve({ kind: 'done', attempt: { startedAtMs, endedAtMs: d.clock.wallMs(), ...o }, ...(result ? { result } : {}) });
    };
    const w: AsyncWaiter = Object.assign(newWaiter(inv.functionKey, arrivalMs), {
      asyncAttempt: true as const,
      // null: the sandbox refused the connection and the core dispatches this waiter again (or fails it).
      onDispatch: () => void send(d, w, inv).then((r) => r && end(r.attempt, r.result)),
      onFail: (status: number, code: string, message: string) => {
        end({ outcome: status === 504 ? 'timeout' : status >= 500 ? 'http_5xx' : 'http_4xx', statusCode: status, error: `${code}: ${message}` });
      },
    });
    const refusal = tokenRefusal(d, inv);
    if (refusal) {
      end({ outcome: 'http_4xx', statusCode: refusal.status, error: refusal.error });
      return;
    }
    const r = d.core.admit(inv.functionKey, w, arrivalMs);
    if (r.kind === 'not_found') resolve({ kind: 'function_not_found' });
    // The dispatcher starts only on a synced DP; should one run early, it is a retryable miss, never a dead letter.
    else if (r.kind === 'not_ready') end({ outcome: 'http_5xx', statusCode: 503, error: 'the data plane has no routing table yet' });
    else if (r.kind === 'queue_full') end({ outcome: 'http_5xx', statusCode: 503, error: `queue of ${inv.functionKey} is full` });
    d.run(r.effects);
  });
}

type ExecOutcomeResult = { statusCode: number; headers: Record<string, string>; body: Buffer };
type Sent = { attempt: { outcome: 'ok' | 'http_5xx' | 'http_4xx' | 'timeout' | 'transport'; statusCode?: number; error?: string }; result?: ExecOutcomeResult };

/**
 * The request to the waiter's sandbox. A sandbox that refuses the connection got none of it (it
 * died, and the CP has not said so yet): the core takes it out of rotation and dispatches the
 * waiter again (`retry`), within this attempt; `null` then.
 */
async function send(d: ExecutorDeps, w: AsyncWaiter, inv: AsyncInvocation): Promise<Sent | null> {
  const ep = w.endpoint!;
  const timeoutMs = w.owner!.spec.timeoutMs;
  const abort = new AbortController();
  let timedOut = false;
  let refused = false;
  const timer = timeoutMs > 0 ? setTimeout(() => { timedOut = true; abort.abort(new Error('function timeout')); }, timeoutMs) : null;
  try {
    // Set last, so a stored client header of these names never reaches the function.
    const headers: Record<string, string> = {
      ...inv.request.headers, [Header.sandbox]: ep.id,
      [Header.asyncInvocationId]: inv.id, [Header.asyncAttempt]: String(attemptNumber(inv)),
    };
    // Checked before admitting (tokenRefusal): function code never sees the caller's token.
    delete headers.authorization;
    delete headers[submitTokenHeader];
    const path = inv.request.query ? `${inv.request.path}?${inv.request.query}` : inv.request.path;
    const res = await d.poolFor(ep).request({
      method: inv.request.method as Dispatcher.HttpMethod, path, headers,
      body: inv.request.body.length > 0 ? inv.request.body : null,
      signal: abort.signal, headersTimeout: 0, bodyTimeout: 0,
    });
    const { body, truncated } = await readCapped(res.body, d.resultBytesMax);
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) {
      if (v !== undefined && !hopByHop.has(k)) out[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    if (truncated) out[truncatedHeader] = `true; limit asyncResultBytesMax ${d.resultBytesMax}`;
    const s = res.statusCode;
    const outcome = s >= 500 ? 'http_5xx' : s >= 400 ? 'http_4xx' : 'ok';
    return { attempt: { outcome, statusCode: s }, result: { statusCode: s, headers: out, body } };
  } catch (err) {
    if (timedOut) return { attempt: { outcome: 'timeout', error: `function did not answer within ${timeoutMs} ms` } };
    refused = (err as { code?: string }).code === 'ECONNREFUSED';
    return refused ? null : { attempt: { outcome: 'transport', error: (err as Error).message } };
  } finally {
    if (timer) clearTimeout(timer);
    d.run(refused ? d.core.retry(w, d.clock.nowMs(), 'refused') : d.core.release(w, d.clock.nowMs()));
  }
}

/**
 * 1-based: the recorded attempts plus this one. An attempt cut off by a DP crash was never
 * recorded, so its re-run carries the same number (a function deduplicating on id and attempt
 * sees the re-run as the same attempt, which it is from the caller's view).
 */
export function attemptNumber(inv: AsyncInvocation): number {
  return inv.attempts.length + 1;
}

/**
 * An auth: token function's stored request carries the submitter's token id and digest: each
 * attempt checks them again as a sync invocation would (a token revoked since the submit no
 * longer runs it).
 */
function tokenRefusal(d: ExecutorDeps, inv: AsyncInvocation): { status: number; error: string } | null {
  if (!d.authToken) return null;
  const fn = d.core.functions.get(inv.functionKey);
  if (!fn || fn.spec.auth !== 'token') return null;
  const verdict = d.core.invokeVerdict(fn, storedSubmitToken(inv.request.headers));
  if (verdict === 'allowed') return null;
  return verdict === 'unauthorized'
    ? { status: 401, error: `unauthorized: the token of the submit may no longer invoke ${fn.name}` }
    : { status: 403, error: `forbidden: the token of the submit may not invoke ${fn.name}` };
}

async function readCapped(body: AsyncIterable<Buffer>, bytesMax: number): Promise<{ body: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let n = 0;
  let truncated = false;
  for await (const chunk of body) {
    if (truncated) continue; // drain, so the connection can be reused
    const room = bytesMax - n;
    if (chunk.length > room) {
      chunks.push(chunk.subarray(0, room));
      n = bytesMax;
      truncated = true;
    } else {
      chunks.push(chunk);
      n += chunk.length;
    }
  }
  return { body: Buffer.concat(chunks), truncated };
}

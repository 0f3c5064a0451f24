/**
 * @module data-plane/async/callbacks
 * X-Callback-Url delivery: when an invocation with a callback URL finished (succeeded, failed or
 * dead), the store marked its callback pending in the same write. This sender claims due
 * callbacks from the store (on a period, and at once when this DP finished one), POSTs the
 * invocation's view (callback-post.ts: resolved, checked and pinned per attempt), and records the
 * outcome: sent, due again after backoff, or abandoned. Because the state is stored, a restarted
 * DP (SQLite) or another DP on the same Redis delivers what this one did not: a callback is
 * delivered at least once. The URL was checked at submit (http(s), no literal private address).
 */
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { afterCallbackPost, callbackTimeoutMs, PinnedAgents, postCallback, systemResolve, type ResolveFn, type TargetRules } from './callback-post.js';
import { isPrivateHost } from './http-routes.js';
import { invocationView } from './service.js';
import { asyncCallbackClaimMax, type AsyncStore } from './store.js';
import type { AsyncInvocation } from './types.js';

export { callbackAttemptsMax, callbackBackoffBaseMs, callbackTimeoutMs } from './callback-post.js';

/** How often due callbacks are claimed when nothing pokes the sender. */
export const callbackPollMs = 500;
/** A claimed callback is this DP's for this long: longer than one POST, so no two DPs send it at once. */
export const callbackLeaseMs = 30_000;
/** Callback POSTs one DP has in flight at most. */
export const callbackInFlightMax = 128;

export interface CallbackSenderDeps {
  store: AsyncStore;
  consumerId: string;
  /** Epoch milliseconds, as everything in the store. */
  clock: Clock;
  allowPrivate: boolean;
  log: Logger;
  resolve?: ResolveFn;
  isPrivate?: (hostOrAddress: string) => boolean;
}

export class CallbackSender {
  private readonly rules: TargetRules;
  private readonly agents = new PinnedAgents();
  private timer: NodeJS.Timeout | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private claiming = false;
  private again = false;
  private closed = false;
  /** The last claim filled the room it had (or had none): more may be due than were taken. */
  private moreDue = false;

  constructor(private readonly d: CallbackSenderDeps) {
    this.rules = { resolve: d.resolve ?? systemResolve, allowPrivate: d.allowPrivate, isPrivate: d.isPrivate ?? isPrivateHost };
  }

  start(): void {
    this.timer = setInterval(() => this.poke(), callbackPollMs);
    this.poke();
  }

  /** A callback may be due now (this DP just finished an invocation with one). */
  poke(): void {
    if (this.closed) return;
    if (this.claiming) {
      this.again = true;
      return;
    }
    this.claiming = true;
    void this.claimOnce().finally(() => {
      this.claiming = false;
      if (this.again) {
        this.again = false;
        this.poke();
      }
    });
  }

  /** Stops claiming and waits for the POSTs in flight (their records land; others' leases lapse). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await Promise.allSettled([...this.inFlight]);
    await this.agents.close();
  }

  private async claimOnce(): Promise<void> {
    const room = Math.min(asyncCallbackClaimMax, callbackInFlightMax - this.inFlight.size);
    if (room <= 0) {
      this.moreDue = true;
      return;
    }
    let due: AsyncInvocation[];
    try {
      due = await this.d.store.claimCallbacks(this.d.consumerId, this.d.clock.nowMs(), callbackLeaseMs, room);
    } catch (err) {
      this.d.log.warn('async.callback_claim_failed', { error: (err as Error).message });
      return;
    }
    this.moreDue = due.length === room;
    for (const inv of due) {
      const p = this.deliver(inv).finally(() => {
        this.inFlight.delete(p);
        // A backlog drains at the speed of the POSTs, not one claim per poll period: claim
        // again once half the room is free (batches of claims, not one per finished POST).
        if (this.moreDue && this.inFlight.size <= callbackInFlightMax / 2) this.poke();
      });
      this.inFlight.add(p);
    }
  }

  private async deliver(inv: AsyncInvocation): Promise<void> {
    const cb = inv.callback;
    if (!cb || !inv.callbackUrl) return;
    const outcome = await postCallback(new URL(inv.callbackUrl), JSON.stringify(invocationView(inv)), this.rules, callbackTimeoutMs, this.agents);
    const update = afterCallbackPost(cb, outcome, this.d.clock.nowMs());
    const fields = { id: inv.id, attempts: update.attempts, ...(update.lastError ? { error: update.lastError } : {}) };
    // One line per delivered callback would be one per invocation: debug only.
    if (update.state === 'sent') this.d.log.debug('async.callback_sent', { ...fields, statusCode: outcome.kind === 'sent' ? outcome.statusCode : 0 });
    else if (update.state === 'abandoned') this.d.log.warn('async.callback_abandoned', { ...fields, outcome: outcome.kind });
    else this.d.log.warn('async.callback_failed', { ...fields, nextInMs: update.nextAtMs - this.d.clock.nowMs() });
    try {
      const write = await this.d.store.recordCallback(inv.id, this.d.consumerId, update);
      if (write !== 'ok') this.d.log.warn('async.callback_record_refused', { id: inv.id, write });
    } catch (err) {
      // The lease lapses and the callback is claimed again: delivered at least once.
      this.d.log.warn('async.callback_record_failed', { id: inv.id, error: (err as Error).message });
    }
  }
}

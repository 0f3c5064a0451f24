/**
 * @module data-plane/async/callbacks
 * X-Callback-Url: when an invocation finished (succeeded, failed or dead), its view is POSTed to
 * the URL the caller gave, with bounded retries and exponential backoff. The URL was checked at
 * submit (http(s), no literal private address); here the host's resolved addresses are checked
 * too, unless asyncCallbackAllowPrivate, so a caller cannot make the DP reach internal services
 * through a name that resolves to one (SSRF).
 */
import { lookup } from 'node:dns/promises';
import { request } from 'undici';
import type { Logger } from '../../shared/logger.js';
import { isPrivateHost } from './http-routes.js';
import { invocationView } from './service.js';
import type { AsyncStore } from './store.js';

/** Attempts per callback in total. */
export const callbackAttemptsMax = 5;
/** Delay before the first retry; doubles per retry. */
export const callbackBackoffBaseMs = 1_000;
/** One callback POST must be answered within this. */
export const callbackTimeoutMs = 10_000;

export class CallbackSender {
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly store: AsyncStore, private readonly allowPrivate: boolean, private readonly log: Logger) {}

  /** Posts the finished invocation `id` to its callback URL (no-op without one). */
  send(id: string, attempt = 1): void {
    if (this.closed) return;
    void this.postOnce(id).then((outcome) => {
      if (outcome === 'done') return;
      if (outcome === 'refused' || attempt >= callbackAttemptsMax) {
        this.log.warn('async.callback_abandoned', { id, attempts: attempt, outcome });
        return;
      }
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.send(id, attempt + 1);
      }, callbackBackoffBaseMs * 2 ** (attempt - 1));
      this.timers.add(t);
    });
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private async postOnce(id: string): Promise<'done' | 'retry' | 'refused'> {
    try {
      const inv = await this.store.get(id);
      if (!inv?.callbackUrl) return 'done';
      const url = new URL(inv.callbackUrl);
      if (!this.allowPrivate && await resolvesPrivate(url.hostname)) return 'refused';
      const r = await request(url, {
        method: 'POST', body: JSON.stringify(invocationView(inv)), headers: { 'content-type': 'application/json' },
        headersTimeout: callbackTimeoutMs, bodyTimeout: callbackTimeoutMs,
      });
      await r.body.dump();
      if (r.statusCode >= 200 && r.statusCode < 300) {
        this.log.info('async.callback_sent', { id, statusCode: r.statusCode });
        return 'done';
      }
      this.log.warn('async.callback_failed', { id, statusCode: r.statusCode });
      return 'retry';
    } catch (err) {
      this.log.warn('async.callback_failed', { id, error: (err as Error).message });
      return 'retry';
    }
  }
}

async function resolvesPrivate(hostname: string): Promise<boolean> {
  if (isPrivateHost(hostname)) return true;
  const addrs = await lookup(hostname.replace(/^\[|\]$/g, ''), { all: true });
  return addrs.some((a) => isPrivateHost(a.address));
}

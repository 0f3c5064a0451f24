/**
 * @module data-plane/async/wiring
 * Builds the DP's async invocations from its config: the store (SQLite in the state dir, or
 * Redis with consumer id = DP id, so another DP takes over a dead one's invocations after the
 * lease), the service, the dispatcher running attempts through the core and the proxy's pools,
 * the GC timer and the metrics.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type client from 'prom-client';
import type { DataPlaneConfig } from '../../config/compile.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { caOf, clusterTokenReader } from '../../shared/tls-files.js';
import { seededRng } from '../../shared/rng.js';
import type { DataPlaneCore, DpEffect } from '../core/data-plane.js';
import type { InvocationProxy } from '../shell/proxy.js';
import { CallbackSender } from './callbacks.js';
import { AsyncDispatcher } from './dispatcher.js';
import { executeAsync } from './executor.js';
import { registerAsyncMetrics } from './metrics.js';
import { openRedisAsyncStore } from './redis-async-store.js';
import { retryPolicyDefaults } from './retry-policy.js';
import { asyncPeers, type AsyncPeers } from './peer-forward.js';
import { ownerTagOf } from './owner.js';
import { AsyncService } from './service.js';
import { openSqliteAsyncStore } from './sqlite-async-store.js';
import type { AsyncStore, AsyncStoreOptions } from './store.js';

/** How often the cached queue counts are reloaded from the store (other DPs share a Redis store). */
export const asyncCountsRefreshMs = 5_000;
/** Slots assumed for a sandbox with unlimited concurrency when computing the async share. */
export const asyncSlotsPerUnlimitedSandbox = 16;
/** Async random id bytes. */
const idRandomBytes = 8;

export interface RunningAsync {
  service: AsyncService;
  dispatcher: AsyncDispatcher;
  /** Forwarding to the DP that holds an id (per-DP store), for the compatibility results port too. */
  peers: AsyncPeers | null;
  close(): Promise<void>;
}

export async function openAsyncStore(cfg: DataPlaneConfig, proxyPort: number): Promise<AsyncStore> {
  const options: Partial<AsyncStoreOptions> = {
    resultRetentionMs: cfg.asyncRetentionMs, idempotencyKeyRetentionMs: cfg.asyncRetentionMs, claimLeaseMs: cfg.asyncClaimLeaseMs,
  };
  if (cfg.asyncStore.startsWith('redis://')) return openRedisAsyncStore(cfg.asyncStore, options);
  const dir = cfg.stateDir || join('.dirigent', `dp-${proxyPort}`);
  mkdirSync(dir, { recursive: true });
  return openSqliteAsyncStore(join(dir, 'async.db'), options);
}

export async function startAsync(
  cfg: DataPlaneConfig, id: string, proxyPort: number, core: DataPlaneCore, proxy: InvocationProxy,
  run: (fx: DpEffect[]) => void, clock: Clock, log: Logger, registry: client.Registry,
): Promise<RunningAsync> {
  const store = await openAsyncStore(cfg, proxyPort);
  const service = new AsyncService(store, cfg, () => randomBytes(idRandomBytes), log);
  // Everything the async store keeps (ids, accept and due times, attempts, retention) is in
  // epoch milliseconds: a restarted DP, or another DP on the same Redis, must read the same
  // times. Only the core (admit/release, in the executor) runs on the monotonic clock.
  const durable: Clock = { nowMs: () => clock.wallMs(), wallMs: () => clock.wallMs() };
  const callbacks = new CallbackSender({ store, consumerId: id, clock: durable, allowPrivate: cfg.asyncCallbackAllowPrivate, log });
  const metrics = registerAsyncMetrics(registry, service, () => dispatcher, durable);
  service.onAccepted = (fnKey) => metrics.accepted.inc({ function: fnKey });
  const dispatcher = new AsyncDispatcher({
    store, consumerId: id, clock: durable, log,
    rng: seededRng(Math.floor(Math.random() * 2 ** 31)),
    policy: { ...retryPolicyDefaults, maxAttempts: cfg.asyncAttemptsMax, maxEventAgeMs: cfg.asyncEventAgeMsMax },
    settingsFor: (fnKey) => core.functions.get(fnKey)?.spec.asyncSettings,
    claimLeaseMs: cfg.asyncClaimLeaseMs,
    capacity: (fnKey) => asyncCapacity(core, fnKey, cfg.asyncConcurrencyShare),
    ready: () => core.synced,
    execute: (inv) => executeAsync({ core, clock, run, poolFor: (ep) => proxy.poolFor(ep), resultBytesMax: cfg.asyncResultBytesMax, authToken: cfg.auth === 'token' }, inv),
    retried: (fnKey) => metrics.retries.inc({ function: fnKey }),
    finished: (inv) => {
      service.finished(inv.functionKey);
      metrics.completed.inc({ function: inv.functionKey, outcome: inv.status });
      if (inv.status === 'dead') metrics.deadLetters.inc({ function: inv.functionKey });
      // The store made its callback pending in the finishing write: deliver it now, not at the next poll.
      if (inv.callbackUrl) callbacks.poke();
    },
  });
  service.attachRunner(dispatcher);
  // A store of its own (SQLite): ids name this DP, and reads of the others' ids go to them.
  const perDpStore = !cfg.asyncStore.startsWith('redis://');
  if (perDpStore) service.ownerTag = ownerTagOf(id);
  const peers = perDpStore ? asyncPeers(core, {
    selfId: id, tls: cfg.tlsCertFile !== '', ca: caOf(cfg.tlsCaFile), clusterToken: clusterTokenReader(cfg.clusterTokenFile),
  }, log) : null;
  proxy.asyncHttp = { service, clock: durable, log, bodyBytesMax: cfg.asyncBodyBytesMax, callbackAllowPrivate: cfg.asyncCallbackAllowPrivate, peers };
  await service.start(durable.nowMs());
  callbacks.start();
  const gc = setInterval(() => {
    store.gc(durable.nowMs()).catch((err: Error) => log.warn('async.gc_failed', { error: err.message }));
  }, cfg.asyncGcPeriodMs);
  const refresh = setInterval(() => {
    service.refreshCounts(durable.nowMs()).catch((err: Error) => log.warn('async.counts_failed', { error: err.message }));
  }, asyncCountsRefreshMs);
  log.info('async.started', { store: cfg.asyncStore || 'sqlite', consumer: id });
  return {
    service, dispatcher, peers,
    async close() {
      clearInterval(gc);
      clearInterval(refresh);
      proxy.asyncHttp = null;
      await callbacks.close();
      await peers?.close();
      // Stop claiming; leases of what is running lapse and another DP (or a restart) claims them.
      await service.close();
    },
  };
}

/** ceil(share x the function's sandbox slots), at least 1: async work never takes all slots. */
export function asyncCapacity(core: DataPlaneCore, fnKey: string, share: number): number {
  const fn = core.functions.get(fnKey);
  if (!fn) return 1;
  let slots = 0;
  for (const ep of fn.endpoints) slots += ep.slots > 0 ? ep.slots : asyncSlotsPerUnlimitedSandbox;
  return Math.max(1, Math.ceil(share * slots));
}

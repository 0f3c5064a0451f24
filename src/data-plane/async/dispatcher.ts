/**
 * @module data-plane/async/dispatcher
 * Runs stored async invocations: claims due ones (on a timer and right after accepts), keeps at
 * most `capacity(fn)` of each function running (the async share of its slots, so a backlog
 * cannot starve sync traffic), holds the rest locally under lease, renews the leases of all it
 * holds, and records each attempt's outcome with the retry policy (retry with backoff, finish,
 * or dead letter). On close it stops claiming and lets the leases lapse: another DP (or this
 * one restarted) claims them again.
 */
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import type { Rng } from '../../shared/rng.js';
import type { AsyncSettingsMsg } from '../../api/cluster.js';
import { decideAfterAttempt, functionRetryPolicy, tooOldToRun, type RetryPolicyConfig } from './retry-policy.js';
import type { AsyncRunner } from './service.js';
import { asyncClaimMax, type AsyncStore } from './store.js';
import type { AsyncAttempt, AsyncInvocation, AsyncResult } from './types.js';

export type ExecOutcome =
  | { kind: 'function_not_found' }
  | { kind: 'done'; attempt: AsyncAttempt; result?: AsyncResult };

export interface DispatcherDeps {
  store: AsyncStore;
  consumerId: string;
  clock: Clock;
  rng: Rng;
  log: Logger;
  /** The DP's default retry policy. */
  policy: RetryPolicyConfig;
  /** A function's own async settings (FunctionSpec.async over the routing stream), which override `policy`. */
  settingsFor?(functionKey: string): AsyncSettingsMsg | undefined;
  claimLeaseMs: number;
  /** Most async executions of this function allowed in flight now (>= 1). */
  capacity(functionKey: string): number;
  /** False while the DP has no routing table: nothing is claimed then. */
  ready(): boolean;
  execute(inv: AsyncInvocation): Promise<ExecOutcome>;
  retried(functionKey: string): void;
  /** Called once per invocation that reached a finished state. */
  finished(inv: AsyncInvocation): void;
}

/** How often due invocations are claimed when nothing pokes the dispatcher and claims find work. */
export const asyncClaimPeriodMs = 200;
/**
 * The longest wait between timed claims of an idle dispatcher. Each claim that found nothing,
 * with nothing held, doubles the wait up to this; one that finds work resets it. A submit to
 * this DP pokes at once whatever the wait; what waits longer is work from elsewhere (a lapsed
 * lease, a peer's share on a shared store). On SQLite an idle DP's store thread spent about
 * 0.5 ms per claim, 5 claims a second (BENCHMARKS, "An idle DP's async store").
 */
export const asyncClaimIdlePeriodMsMax = 1_600;

/** The wait before the next timed claim after `idleClaims` empty claims in a row. */
export function claimPeriodMs(idleClaims: number): number {
  return Math.min(asyncClaimIdlePeriodMsMax, asyncClaimPeriodMs * 2 ** Math.min(idleClaims, 30));
}
/** Most lease renewals one DP has in flight at once (each is one store round trip). */
export const asyncRenewInFlightMax = 64;
/** Most invocations held (running, being recorded or waiting for capacity) by one DP. */
export const asyncHeldMax = 2_048;
/**
 * Most executions one DP has started whose outcome is not durable yet (running, or answered and
 * being recorded; all functions). A kill of the DP runs each of them again, so this bounds the
 * duplicates per crash; a store slower than the executions stops new ones here instead of piling
 * up answered work. Sized above what the group commit needs: with no limit, `bench async` on SQLite
 * saw at most 176 at 2,000/s and 215 at 3,000/s (sampled every 100 ms), and 199 at 1,000/s.
 */
export const asyncUnrecordedMax = 512;

export class AsyncDispatcher implements AsyncRunner {
  private readonly held = new Map<string, AsyncInvocation>();
  private readonly waiting = new Map<string, AsyncInvocation[]>();
  private readonly running = new Map<string, number>();
  /** Executions started and not durable yet (running or being recorded, all functions). */
  private unrecorded = 0;
  /**
   * Runs that ended while a claim was in flight, by id, with the number of attempts the record
   * had when the run was claimed. That claim may hand the invocation back: read before the run's
   * write (a lease that lapsed under load is claimable by its own consumer too), it still shows
   * that many attempts, and starting it would run the attempt twice; read after a retry's write
   * (a short backoff made it due at once), it shows one more, and is a new claim to run.
   * Cleared when the claim's answer has been taken in.
   */
  private readonly endedDuringClaim = new Map<string, number>();
  private claimTimer: NodeJS.Timeout | null = null;
  private renewTimer: NodeJS.Timeout | null = null;
  private claiming = false;
  /** Claims in a row that found nothing while nothing was held (sets the timed claims' period). */
  private idleClaims = 0;
  private renewing = false;
  private again = false;
  private closed = false;
  /** Timed claims run from `start()` on (tests poke by hand). */
  private started = false;

  constructor(private readonly d: DispatcherDeps) {}

  start(): void {
    this.started = true;
    this.scheduleClaim();
    this.renewTimer = setInterval(() => void this.renewAll(), Math.max(50, Math.floor(this.d.claimLeaseMs / 3)));
  }

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
        return;
      }
      this.scheduleClaim();
    });
  }

  /** The next timed claim, counted from the end of the last claim (a poke's too). */
  private scheduleClaim(): void {
    if (this.closed || !this.started) return;
    if (this.claimTimer) clearTimeout(this.claimTimer);
    this.claimTimer = setTimeout(() => this.poke(), claimPeriodMs(this.idleClaims));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.claimTimer) clearTimeout(this.claimTimer);
    if (this.renewTimer) clearInterval(this.renewTimer);
  }

  /** Invocations this DP holds: running, being recorded, or waiting for capacity. */
  get heldCount(): number {
    return this.held.size;
  }

  /** Executions that started and are not durable yet: what a kill of this DP would run again. */
  get unrecordedCount(): number {
    return this.unrecorded;
  }

  private async claimOnce(): Promise<void> {
    if (!this.d.ready()) return;
    const room = Math.min(asyncClaimMax, asyncHeldMax - this.held.size);
    if (room <= 0) {
      this.idleClaims = 0;
      return;
    }
    let claimed: AsyncInvocation[];
    try {
      claimed = await this.d.store.claim(this.d.consumerId, this.d.clock.nowMs(), room);
    } catch (err) {
      this.d.log.warn('async.claim_failed', { error: (err as Error).message });
      return;
    }
    this.idleClaims = claimed.length === 0 && this.held.size === 0 ? this.idleClaims + 1 : 0;
    const ended = new Map(this.endedDuringClaim);
    this.endedDuringClaim.clear();
    for (const inv of claimed) {
      const endedAttempts = ended.get(inv.id);
      if (this.held.has(inv.id) || (endedAttempts !== undefined && inv.attempts.length <= endedAttempts)) continue;
      this.held.set(inv.id, inv);
      const q = this.waiting.get(inv.functionKey) ?? [];
      q.push(inv);
      this.waiting.set(inv.functionKey, q);
    }
    for (const fn of new Set(claimed.map((i) => i.functionKey))) this.pump(fn);
  }

  /**
   * Starts waiting invocations of `fn` while fewer than `capacity(fn)` run and fewer than
   * `asyncUnrecordedMax` are not durable yet. The slot is free once the function answered (the
   * record, a group commit and its fsync, follows; the invocation stays held and leased until
   * then), so a store round trip does not cut the function's async throughput.
   */
  private pump(fn: string): void {
    const q = this.waiting.get(fn);
    let started = 0;
    while (q && q.length > 0 && !this.closed && this.mayStart(fn)) {
      const inv = q.shift()!;
      started += 1;
      this.bump(this.running, fn, 1);
      this.unrecorded += 1;
      let slotHeld = true;
      const answered = (): void => {
        if (!slotHeld) return;
        slotHeld = false;
        this.bump(this.running, fn, -1);
        this.pump(fn);
      };
      void this.runOne(inv, answered).finally(() => {
        this.held.delete(inv.id);
        if (this.claiming) this.endedDuringClaim.set(inv.id, inv.attempts.length);
        answered();
        this.unrecordedEnded();
      });
    }
    if (q && q.length === 0) this.waiting.delete(fn);
    else if (q && started > 0) {
      // To the back of the waiting order: at the recording limit, functions take turns.
      this.waiting.delete(fn);
      this.waiting.set(fn, q);
    }
  }

  private mayStart(fn: string): boolean {
    return (this.running.get(fn) ?? 0) < this.d.capacity(fn) && this.unrecorded < asyncUnrecordedMax;
  }

  /** An outcome is durable (or its write failed): at the limit, functions with waiting work take turns. */
  private unrecordedEnded(): void {
    const wasFull = this.unrecorded >= asyncUnrecordedMax;
    this.unrecorded -= 1;
    if (wasFull) for (const fn of [...this.waiting.keys()]) this.pump(fn);
  }

  private bump(counts: Map<string, number>, fn: string, by: number): void {
    const n = (counts.get(fn) ?? 0) + by;
    if (n === 0) counts.delete(fn);
    else counts.set(fn, n);
  }

  private async runOne(inv: AsyncInvocation, answered: () => void): Promise<void> {
    const { store, consumerId, clock } = this.d;
    const policy = this.policyFor(inv.functionKey);
    const startMs = clock.nowMs();
    try {
      if (tooOldToRun(inv, policy, startMs)) {
        const attempt: AsyncAttempt = { startedAtMs: startMs, endedAtMs: startMs, outcome: 'timeout', error: 'not started within the max event age' };
        await this.settle(inv, await store.deadLetter(inv.id, consumerId, attempt, 'max_event_age_exceeded'), 'dead');
        return;
      }
      let out: ExecOutcome;
      try {
        out = await this.d.execute(inv);
      } finally {
        answered();
      }
      if (out.kind === 'function_not_found') {
        const now = clock.nowMs();
        const attempt: AsyncAttempt = { startedAtMs: startMs, endedAtMs: now, outcome: 'http_4xx', statusCode: 404, error: `function ${inv.functionKey} not found` };
        await this.settle(inv, await store.deadLetter(inv.id, consumerId, attempt, 'function_not_found'), 'dead');
        return;
      }
      await this.record(inv, out.attempt, out.result);
    } catch (err) {
      // A store write failed: the lease lapses and the invocation is claimed again (at least once).
      this.d.log.warn('async.record_failed', { id: inv.id, fn: inv.functionKey, error: (err as Error).message });
    }
  }

  private async record(inv: AsyncInvocation, attempt: AsyncAttempt, result?: AsyncResult): Promise<void> {
    const { store, consumerId, clock, rng } = this.d;
    const policy = this.policyFor(inv.functionKey);
    const decision = decideAfterAttempt(inv, attempt, policy, clock.nowMs(), rng);
    if (decision.kind === 'retry') {
      await store.scheduleRetry(inv.id, consumerId, attempt, decision.nextAttemptAtMs);
      this.d.retried(inv.functionKey);
      this.d.log.info('async.retry_scheduled', { id: inv.id, fn: inv.functionKey, outcome: attempt.outcome, delayMs: decision.delayMs });
      setTimeout(() => this.poke(), decision.delayMs + 1);
    } else if (decision.kind === 'dead') {
      await this.settle(inv, await store.deadLetter(inv.id, consumerId, attempt, decision.reason, result), 'dead');
    } else {
      const r = result ?? { statusCode: attempt.statusCode ?? 0, headers: {}, body: Buffer.alloc(0) };
      await this.settle(inv, await store.complete(inv.id, consumerId, r, attempt), decision.kind);
    }
  }

  private async settle(inv: AsyncInvocation, write: string, status: string): Promise<void> {
    if (write !== 'ok') {
      this.d.log.warn('async.write_refused', { id: inv.id, fn: inv.functionKey, write });
      return;
    }
    this.d.log.debug('async.finished', { id: inv.id, fn: inv.functionKey, status });
    this.d.finished({ ...inv, status: status as AsyncInvocation['status'] });
  }

  private policyFor(functionKey: string): RetryPolicyConfig {
    return functionRetryPolicy(this.d.policy, this.d.settingsFor?.(functionKey));
  }

  /**
   * Renews in parallel batches, one round at a time. Renewed one after another, the leases of a
   * few hundred held invocations on a busy DP lapsed (the at-least-once run saw its own claims
   * hand them back); with two DPs the other one would take them over and run them twice.
   */
  private async renewAll(): Promise<void> {
    if (this.closed || this.renewing) return;
    this.renewing = true;
    try {
      const now = this.d.clock.nowMs();
      const ids = [...this.held.keys()];
      for (let i = 0; i < ids.length && !this.closed; i += asyncRenewInFlightMax) {
        await Promise.all(ids.slice(i, i + asyncRenewInFlightMax).map((id) => this.renewOne(id, now)));
      }
    } finally {
      this.renewing = false;
    }
  }

  private async renewOne(id: string, nowMs: number): Promise<void> {
    try {
      await this.d.store.renew(id, this.d.consumerId, nowMs);
    } catch (err) {
      this.d.log.warn('async.renew_failed', { id, error: (err as Error).message });
    }
  }
}

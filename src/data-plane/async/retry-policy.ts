/**
 * @module data-plane/async/retry-policy
 * What the async dispatcher does after an attempt (pure: time and randomness come in as
 * arguments). Retries follow 5xx, timeouts and transport errors, and 4xx only when the function
 * asks for it; the delay is exponential backoff with full jitter (uniform in 0..min(cap, base x
 * factor^(n-1))), so DPs retrying one broken function do not hit it in lockstep. An invocation
 * gives up (dead letter, with the reason) after `maxAttempts` attempts in total or when the next
 * attempt would start past `maxEventAgeMs`. After a re-drive, attempts and age count afresh from
 * the re-drive (the earlier attempts stay on the record).
 */
import type { AsyncSettingsMsg } from '../../api/cluster.js';
import type { Rng } from '../../shared/rng.js';
import type { AsyncAttempt, AsyncInvocation, AttemptOutcome } from './types.js';

export interface RetryPolicyConfig {
  /** Attempts in total, the first one included (1 = never retry). */
  maxAttempts: number;
  /** From acceptance (or re-drive) to the start of the last attempt allowed. */
  maxEventAgeMs: number;
  /** Upper bound of the first retry's delay. */
  backoffBaseMs: number;
  /** Growth of the bound per further retry. */
  backoffFactor: number;
  /** The bound never grows past this. */
  backoffCapMs: number;
  /** The function's setting: also retry 4xx answers. */
  retryOn4xx: boolean;
}

export const retryPolicyDefaults: RetryPolicyConfig = {
  maxAttempts: 3,
  maxEventAgeMs: 6 * 3_600_000,
  backoffBaseMs: 1_000,
  backoffFactor: 2,
  backoffCapMs: 5 * 60_000,
  retryOn4xx: false,
};

/** Largest accepted `maxAttempts`: a bound on each record's attempt list. */
export const retryMaxAttemptsLimit = 100;

export type DeadReason = 'attempts_exhausted' | 'max_event_age_exceeded';

export type RetryDecision =
  | { kind: 'succeeded' }
  /** Not retryable (a 4xx without retryOn4xx): finish as failed. */
  | { kind: 'failed' }
  | { kind: 'retry'; delayMs: number; nextAttemptAtMs: number }
  | { kind: 'dead'; reason: DeadReason };

/**
 * The policy for one function: its own settings (from the routing stream) over the DP's
 * defaults. A zero attempts or age means unset; out-of-range values were refused at the API and
 * the wire, and are clamped here once more so a record's attempt list stays bounded.
 */
export function functionRetryPolicy(base: RetryPolicyConfig, settings: AsyncSettingsMsg | undefined): RetryPolicyConfig {
  if (!settings) return base;
  return {
    ...base,
    retryOn4xx: settings.retryOn4xx,
    maxAttempts: settings.attemptsMax > 0 ? Math.min(retryMaxAttemptsLimit, Math.floor(settings.attemptsMax)) : base.maxAttempts,
    maxEventAgeMs: settings.eventAgeMsMax > 0 ? settings.eventAgeMsMax : base.maxEventAgeMs,
  };
}

/** Validation errors naming the key, the value and the legal range; [] when valid. */
export function validateRetryPolicy(c: RetryPolicyConfig): string[] {
  const errors: string[] = [];
  const check = (key: keyof RetryPolicyConfig, ok: boolean, range: string): void => {
    if (!ok) errors.push(`${key}=${String(c[key])}: must be ${range}`);
  };
  check('maxAttempts', Number.isInteger(c.maxAttempts) && c.maxAttempts >= 1 && c.maxAttempts <= retryMaxAttemptsLimit,
    `an integer in 1..${retryMaxAttemptsLimit}`);
  check('maxEventAgeMs', Number.isFinite(c.maxEventAgeMs) && c.maxEventAgeMs > 0, '> 0');
  check('backoffBaseMs', Number.isFinite(c.backoffBaseMs) && c.backoffBaseMs >= 0, '>= 0');
  check('backoffFactor', Number.isFinite(c.backoffFactor) && c.backoffFactor >= 1, '>= 1');
  check('backoffCapMs', Number.isFinite(c.backoffCapMs) && c.backoffCapMs >= c.backoffBaseMs, '>= backoffBaseMs');
  return errors;
}

export function isRetryable(outcome: AttemptOutcome, c: RetryPolicyConfig): boolean {
  switch (outcome) {
    case 'ok': return false;
    case 'http_4xx': return c.retryOn4xx;
    case 'http_5xx':
    case 'timeout':
    case 'transport': return true;
  }
}

/** Full-jitter delay before retry number `retry` (1 = the first retry). */
export function backoffDelayMs(retry: number, c: RetryPolicyConfig, rng: Rng): number {
  if (c.backoffBaseMs === 0) return 0;
  // factor^n overflows to Infinity for large n; the cap applies then too.
  const rawMs = c.backoffBaseMs * c.backoffFactor ** Math.max(0, retry - 1);
  const ceilingMs = Number.isFinite(rawMs) ? Math.min(c.backoffCapMs, rawMs) : c.backoffCapMs;
  return Math.floor(rng.next() * ceilingMs);
}

/** When this run of the invocation started: the re-drive, else the acceptance. */
export function runStartMs(inv: Pick<AsyncInvocation, 'acceptedAtMs' | 'redrivenAtMs'>): number {
  return inv.redrivenAtMs ?? inv.acceptedAtMs;
}

/** Attempts of the current run (after the last re-drive) with the one just ended. */
function attemptsInRun(inv: Pick<AsyncInvocation, 'attempts' | 'acceptedAtMs' | 'redrivenAtMs'>): number {
  const start = runStartMs(inv);
  return inv.attempts.filter((a) => a.startedAtMs >= start).length + 1;
}

/**
 * The decision after `latest` ended (not yet recorded on `inv`). `nowMs` is the time of the
 * decision, normally latest.endedAtMs.
 */
export function decideAfterAttempt(
  inv: Pick<AsyncInvocation, 'attempts' | 'acceptedAtMs' | 'redrivenAtMs'>, latest: AsyncAttempt,
  c: RetryPolicyConfig, nowMs: number, rng: Rng,
): RetryDecision {
  if (latest.outcome === 'ok') return { kind: 'succeeded' };
  if (!isRetryable(latest.outcome, c)) return { kind: 'failed' };
  const made = attemptsInRun(inv);
  if (made >= c.maxAttempts) return { kind: 'dead', reason: 'attempts_exhausted' };
  const delayMs = backoffDelayMs(made, c, rng);
  const nextAttemptAtMs = nowMs + delayMs;
  if (nextAttemptAtMs - runStartMs(inv) > c.maxEventAgeMs) return { kind: 'dead', reason: 'max_event_age_exceeded' };
  return { kind: 'retry', delayMs, nextAttemptAtMs };
}

/** Before an attempt starts: an invocation that waited past the max event age is not run. */
export function tooOldToRun(inv: Pick<AsyncInvocation, 'acceptedAtMs' | 'redrivenAtMs'>, c: RetryPolicyConfig, nowMs: number): boolean {
  return nowMs - runStartMs(inv) > c.maxEventAgeMs;
}

/**
 * @module loadgen/core/failover
 * Analysis of `bench failover`: every request's fate and every /health poll, in ms since the
 * run start, turned into per-bucket counts, failure causes and recovery times around the
 * kill. Pure: times come in the records.
 *
 *   sends  ──ok──ok──ok──X──X──ok──X──ok──ok──ok──ok──ok──ok──►  (bucketed by send time)
 *                        ▲kill             ▲recovered: no failure for stableMs from here
 *
 * Requests are bucketed by SEND time: a request that times out 10 s later still belongs to the
 * moment it was sent, which is what "requests sent during the outage failed" means.
 */

export type RequestKind = 'warm' | 'cold';

export interface RequestRecord {
  kind: RequestKind;
  /** Index of the function within its kind (warm i, cold i). */
  fn: number;
  sentMs: number;
  doneMs: number;
  /** HTTP status, 0 when no response arrived. */
  status: number;
  /** Transport error code when status is 0, else ''. */
  error: string;
  /** Response body text of a failure (for the JSON error code), '' otherwise. */
  body: string;
}

export interface HealthPoll {
  atMs: number;
  /** Which CP was asked (its API URL). */
  target: string;
  role: 'leader' | 'standby' | 'down';
  term: number;
  id: string;
  /** The CP's own PID as /health reports it, 0 when down. */
  pid: number;
}

export interface Bucket {
  startMs: number;
  ok: number;
  failed: number;
  warmFailed: number;
  coldFailed: number;
  /** Slowest successful warm / cold request sent in the bucket (0 when none): a request that
   * waited in a queue through the outage shows here, not as a failure. */
  warmLatencyMaxMs: number;
  coldLatencyMaxMs: number;
}

export const failoverDefaults = Object.freeze({
  bucketMs: 250,
  /** "Back at zero" means no failed request sent within this long after the recovery point. */
  stableMs: 2_000,
});

const timeoutCodes = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

export function isOk(r: Pick<RequestRecord, 'status'>): boolean {
  return r.status >= 200 && r.status < 300;
}

/**
 * Why a request failed: `timeout`, `connection:<code>` (no response: refused, reset, closed
 * socket), or `<status>:<error code>` from the JSON error body (`503:queue_timeout`;
 * `502:-` when the body carried none, e.g. from HAProxy).
 */
export function failureCause(r: Pick<RequestRecord, 'status' | 'error' | 'body'>): string {
  if (r.status === 0) return timeoutCodes.has(r.error) ? 'timeout' : `connection:${r.error}`;
  return `${r.status}:${jsonErrorCode(r.body) ?? '-'}`;
}

function jsonErrorCode(body: string): string | null {
  if (body === '') return null;
  try {
    const v = JSON.parse(body) as { error?: { code?: unknown } };
    const code = v?.error?.code;
    return typeof code === 'string' && /^[a-z_]{1,64}$/.test(code) ? code : null;
  } catch {
    return null;
  }
}

/** Requests per `bucketMs` bucket of send time, from 0 to the last send. */
export function bucketize(records: readonly RequestRecord[], bucketMs: number): Bucket[] {
  const lastMs = records.reduce((m, r) => Math.max(m, r.sentMs), 0);
  const buckets: Bucket[] = Array.from({ length: Math.floor(lastMs / bucketMs) + 1 },
    (_, i) => ({ startMs: i * bucketMs, ok: 0, failed: 0, warmFailed: 0, coldFailed: 0,
      warmLatencyMaxMs: 0, coldLatencyMaxMs: 0 }));
  for (const r of records) {
    const b = buckets[Math.floor(Math.max(0, r.sentMs) / bucketMs)];
    if (isOk(r)) {
      b.ok++;
      const latencyMs = Math.round(r.doneMs - r.sentMs);
      if (r.kind === 'warm') b.warmLatencyMaxMs = Math.max(b.warmLatencyMaxMs, latencyMs);
      else b.coldLatencyMaxMs = Math.max(b.coldLatencyMaxMs, latencyMs);
      continue;
    }
    b.failed++;
    if (r.kind === 'warm') b.warmFailed++;
    else b.coldFailed++;
  }
  return buckets;
}

/** Failed requests by cause, per kind. */
export function causes(records: readonly RequestRecord[]): Record<RequestKind, Record<string,
  number>> {
  const out: Record<RequestKind, Record<string, number>> = { warm: {}, cold: {} };
  for (const r of records) {
    if (isOk(r)) continue;
    const cause = failureCause(r);
    out[r.kind][cause] = (out[r.kind][cause] ?? 0) + 1;
  }
  return out;
}

/** ms from the kill to the completion of the first successful cold start sent after it. */
export function firstColdOkAfterMs(records: readonly RequestRecord[], killMs: number):
  number | null {
  let best = Number.POSITIVE_INFINITY;
  for (const r of records) {
    if (r.kind === 'cold' && r.sentMs >= killMs && isOk(r) && r.doneMs < best) best = r.doneMs;
  }
  return best === Number.POSITIVE_INFINITY ? null : best - killMs;
}

/**
 * Per warm function: ms from the kill to the completion of its first successful request sent
 * after the kill. A request that waits in a queue for a replacement sandbox does not fail, so
 * this, not the failure rate, shows how long the affected functions were not served. Functions
 * with no successful request after the kill are listed in `never`.
 */
export function warmServedAgain(records: readonly RequestRecord[], killMs: number):
  { maxMs: number | null; medianMs: number | null; never: number[] } {
  const first = new Map<number, number>();
  const seen = new Set<number>();
  for (const r of records) {
    if (r.kind !== 'warm' || r.sentMs < killMs) continue;
    seen.add(r.fn);
    if (isOk(r) && r.doneMs < (first.get(r.fn) ?? Number.POSITIVE_INFINITY)) first.set(r.fn, r.doneMs);
  }
  const times = [...first.values()].map((t) => t - killMs).sort((a, b) => a - b);
  const never = [...seen].filter((f) => !first.has(f)).sort((a, b) => a - b);
  if (times.length === 0) return { maxMs: null, medianMs: null, never };
  return { maxMs: times[times.length - 1], medianMs: times[Math.floor((times.length - 1) / 2)],
    never };
}

/**
 * ms from the kill until the failure rate is back at zero for good: the send time of the
 * first request after the last failure that is followed by `stableMs` of sends without a
 * failure. 0 when nothing sent after the kill failed; null when no such quiet stretch fits
 * in the run (never recovered, or too close to the end to tell).
 */
export function recoveryMs(records: readonly RequestRecord[], killMs: number, stableMs: number,
  kind?: RequestKind): number | null {
  const after = records.filter((r) => r.sentMs >= killMs && (kind === undefined || r.kind === kind))
    .sort((a, b) => a.sentMs - b.sentMs);
  if (after.length === 0) return null;
  const endMs = after[after.length - 1].sentMs;
  let candidate = killMs;
  let failedSeen = false;
  for (const r of after) {
    if (r.sentMs - candidate >= stableMs) break;
    if (!isOk(r)) {
      failedSeen = true;
      candidate = Number.POSITIVE_INFINITY;
    } else if (candidate === Number.POSITIVE_INFINITY) {
      candidate = r.sentMs;
    }
  }
  if (candidate === Number.POSITIVE_INFINITY || endMs - candidate < stableMs) return null;
  return failedSeen ? candidate - killMs : 0;
}

/** Failed requests sent before the kill but finished after it: the ones in flight at the kill. */
export function failedInFlightAtKill(records: readonly RequestRecord[], killMs: number): number {
  return records.filter((r) => r.sentMs < killMs && r.doneMs >= killMs && !isOk(r)).length;
}

/** The leader at the kill (last poll before it that says leader). */
export function leaderBefore(polls: readonly HealthPoll[], killMs: number): HealthPoll | null {
  let found: HealthPoll | null = null;
  for (const p of polls) if (p.atMs < killMs && p.role === 'leader') found = p;
  return found;
}

/**
 * ms from the kill to the first poll where a CP other than the killed leader (or the same id
 * restarted, with a higher term) answers as leader; null when none did.
 */
export function newLeaderMs(polls: readonly HealthPoll[], killMs: number,
  old: HealthPoll | null): number | null {
  for (const p of [...polls].sort((a, b) => a.atMs - b.atMs)) {
    if (p.atMs < killMs || p.role !== 'leader') continue;
    if (old === null || p.id !== old.id || p.term > old.term) return p.atMs - killMs;
  }
  return null;
}

/** The merged send plan: warm sends round-robin over the warm functions, cold sends each to a
 * fresh function; `fn` indexes the warm or the cold name list by `kind`. Sorted by time. */
export interface FailoverPlan {
  scheduleMs: Float64Array;
  kind: RequestKind[];
  fn: number[];
  coldFunctions: number;
}

export function failoverPlan(rateRps: number, coldRateRps: number, durationS: number,
  warmFunctions: number): FailoverPlan {
  const sends: Array<{ t: number; kind: RequestKind; fn: number }> = [];
  const warmCount = countFor(rateRps, durationS);
  for (let i = 0; i < warmCount; i++) {
    sends.push({ t: (i * 1000) / rateRps, kind: 'warm', fn: i % warmFunctions });
  }
  const coldCount = countFor(coldRateRps, durationS);
  for (let i = 0; i < coldCount; i++) sends.push({ t: (i * 1000) / coldRateRps, kind: 'cold', fn: i });
  sends.sort((a, b) => a.t - b.t);
  return { scheduleMs: Float64Array.from(sends, (s) => s.t), kind: sends.map((s) => s.kind),
    fn: sends.map((s) => s.fn), coldFunctions: coldCount };
}

/** ceil(R·S) without the floating-point excess (0.1 × 30 is 3 sends, not 4); 0 when R is 0. */
function countFor(rateRps: number, durationS: number): number {
  return rateRps <= 0 ? 0 : Math.max(0, Math.ceil(rateRps * durationS - 1e-9));
}

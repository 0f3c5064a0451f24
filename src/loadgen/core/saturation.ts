/**
 * @module loadgen/core/saturation
 * When a sweep stops: a rate is saturated when the system no longer keeps up with it. The
 * sweep runs rates in ascending order, reports the first saturated one, and stops there
 * ("stops past saturation"). Pure.
 */

export interface SaturationRule {
  /** Saturated when achieved < this fraction of offered. */
  achievedRatioMin: number;
  /** Saturated when p99 latency exceeds this. */
  p99MsMax: number;
  /** Saturated when errors / count exceeds this. */
  errorRateMax: number;
}

export const defaultSaturationRule: Readonly<SaturationRule> = Object.freeze({
  achievedRatioMin: 0.9,
  p99MsMax: 1000,
  errorRateMax: 0.01,
});

export interface RunOutcome {
  offeredRps: number;
  achievedRps: number;
  p99Ms: number;
  count: number;
  errors: number;
}

/** Why the run counts as saturated; empty when the system kept up. */
export function saturationReasons(run: RunOutcome, rule: SaturationRule): string[] {
  const reasons: string[] = [];
  if (run.achievedRps < rule.achievedRatioMin * run.offeredRps) {
    const pct = (100 * run.achievedRps) / run.offeredRps;
    reasons.push(`achieved ${pct.toFixed(1)}% of offered < ${100 * rule.achievedRatioMin}%`);
  }
  if (run.p99Ms > rule.p99MsMax) reasons.push(`p99 ${run.p99Ms} ms > ${rule.p99MsMax} ms`);
  const errorRate = run.count > 0 ? run.errors / run.count : 0;
  if (errorRate > rule.errorRateMax) {
    const pct = (100 * errorRate).toFixed(2);
    reasons.push(`error rate ${pct}% > ${100 * rule.errorRateMax}%`);
  }
  return reasons;
}

/** Sweep rates sorted ascending and deduplicated; non-positive rates are rejected upstream. */
export function sweepOrder(rates: readonly number[]): number[] {
  return [...new Set(rates)].sort((a, b) => a - b);
}

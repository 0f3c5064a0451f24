/**
 * @module loadgen/core/schedule
 * Precomputed open-loop arrival schedules (sorted send offsets in ms from the run start) and
 * the pure step of the single-timer sender: "which sends are due now".
 *
 * Fixed rate R: send i at i·1000/R ms. The cold-start bench pairs send i with function i, so
 * over ceil(R·S) functions each function gets exactly one request and every request needs a
 * new sandbox (InVitro's RPS mode with a 100 % cold ratio and a cool-down longer than the run).
 * Pure: no clock, randomness passed in.
 */
import type { Rng } from '../../shared/rng.js';

export type ArrivalProcess = 'equidistant' | 'exponential';

/** R·S is computed in floating point: 0.1 × 30 = 3.0000000000000004 must still be 3 sends. */
const countEpsilon = 1e-9;

/** Number of sends for `rateRps` over `durationS`: ceil(R·S). */
export function sendCount(rateRps: number, durationS: number): number {
  return Math.max(0, Math.ceil(rateRps * durationS - countEpsilon));
}

/**
 * Keep-alive connections a cold-start run may open: enough for each request to hold one for
 * `holdS` at the highest offered rate, and never fewer than `floor`. An open loop whose
 * requests outnumber its connections queues the excess in the client, and that wait counts as
 * latency: a pool sized for warm requests (256) measured a 3,000/s cold run's p50 at 450 ms,
 * all of it spent waiting for a connection. Connections open as they are needed.
 */
export function coldPoolConnections(rateMaxRps: number, holdS: number, floor: number): number {
  return Math.max(floor, Math.ceil(rateMaxRps * holdS));
}

/** Send offsets (ms) of `count` requests at a fixed rate, the first at 0. */
export function fixedRateScheduleMs(rateRps: number, count: number): Float64Array {
  const periodMs = 1000 / rateRps;
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = i * periodMs;
  return out;
}

/** Poisson arrivals with mean rate R: exponential gaps, the first send at 0. */
export function exponentialScheduleMs(rateRps: number, count: number, rng: Rng): Float64Array {
  const meanGapMs = 1000 / rateRps;
  const out = new Float64Array(count);
  let t = 0;
  for (let i = 0; i < count; i++) {
    out[i] = t;
    t += -Math.log(1 - rng.next()) * meanGapMs;
  }
  return out;
}

export function arrivalScheduleMs(
  process: ArrivalProcess,
  rateRps: number,
  count: number,
  rng: Rng,
): Float64Array {
  return process === 'equidistant'
    ? fixedRateScheduleMs(rateRps, count)
    : exponentialScheduleMs(rateRps, count, rng);
}

/**
 * The cold-start plan: function i invoked once, at offset t_i. `functionOfSend[i] = i` is
 * spelled out so the "one request per function" invariant is data a test can check.
 *
 * With a warm-up of W s, the first ceil(R·W/2) sends ramp linearly from 0 to R over [0, W)
 * (send i at sqrt(2·W·i/R) s): code paths and heaps warm up while the load grows, rather than
 * under the full rate at once. The ceil(R·S) measured sends follow at W + j/R s, so the rate
 * never pauses between the two.
 */
export interface ColdStartPlan {
  functionCount: number;
  scheduleMs: Float64Array;
  /** The function each send goes to. */
  functionOfSend: Uint32Array;
  /** The first measured send; the ones before it are the warm-up ramp. */
  measuredFrom: number;
}

export function coldStartPlan(rateRps: number, durationS: number, warmupS = 0): ColdStartPlan {
  const rampCount = sendCount(rateRps / 2, warmupS);
  const measured = sendCount(rateRps, durationS);
  const count = rampCount + measured;
  const functionOfSend = new Uint32Array(count);
  for (let i = 0; i < count; i++) functionOfSend[i] = i;
  const scheduleMs = new Float64Array(count);
  for (let i = 0; i < rampCount; i++) scheduleMs[i] = Math.sqrt((2 * warmupS * i) / rateRps) * 1000;
  const periodMs = 1000 / rateRps;
  const rampEndMs = rampCount > 0 ? warmupS * 1000 : 0;
  for (let j = 0; j < measured; j++) scheduleMs[rampCount + j] = rampEndMs + j * periodMs;
  return { functionCount: count, scheduleMs, functionOfSend, measuredFrom: rampCount };
}

/**
 * The sender's step: from `cursor`, the index one past the last send that is due at
 * `elapsedMs` (offset <= elapsed), taking at most `max` sends so one tick cannot starve I/O.
 * Sends that are late are all due at once: the schedule is absolute, so catching up never
 * shifts later sends (no drift).
 */
export function dueEnd(
  scheduleMs: Float64Array,
  cursor: number,
  elapsedMs: number,
  max: number,
): number {
  const limit = Math.min(scheduleMs.length, cursor + max);
  let i = cursor;
  while (i < limit && scheduleMs[i] <= elapsedMs) i++;
  return i;
}

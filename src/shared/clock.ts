/**
 * @module shared/clock
 * The Clock port. Cores take `nowMs` as an argument; shells read it from a Clock. Only
 * `systemClock` touches the real time source.
 */

export interface Clock {
  /** Monotonic milliseconds (fractional). Never goes back. */
  nowMs(): number;
  /** Wall-clock epoch milliseconds, for records shown to people. */
  wallMs(): number;
}

const originMs = Date.now() - performance.now();

export const systemClock: Clock = {
  nowMs: () => performance.now(),
  wallMs: () => originMs + performance.now(),
};

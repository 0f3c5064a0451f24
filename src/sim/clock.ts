/**
 * @module sim/clock
 * Virtual time for the simulator: a clock that only moves when the simulation steps it, and a
 * timer queue ordered by (time, insertion sequence) so that two timers due at the same instant
 * always fire in the same order. Same seed, same order, same run.
 */
import { assert } from '../shared/assert.js';
import type { Clock } from '../shared/clock.js';

export class VirtualClock implements Clock {
  private now = 0;

  nowMs(): number {
    return this.now;
  }

  /** Virtual wall time starts at a fixed epoch so records replay byte for byte. */
  wallMs(): number {
    return 1_700_000_000_000 + this.now;
  }

  /** Time never goes backwards: a checker relies on monotonic `nowMs`. */
  advanceTo(ms: number): void {
    assert(ms >= this.now, `virtual time went backwards: ${ms} < ${this.now}`);
    this.now = ms;
  }
}

interface Timer {
  atMs: number;
  seq: number;
  run: (nowMs: number) => void;
}

/** Bounded so a runaway feedback loop fails loudly instead of eating memory. */
const timersMax = 1_000_000;

export class TimerQueue {
  private readonly timers: Timer[] = [];
  private seq = 0;

  get size(): number {
    return this.timers.length;
  }

  /** `run` gets the step time, which may be a little after `atMs` (steps are discrete). */
  at(atMs: number, run: (nowMs: number) => void): void {
    assert(Number.isFinite(atMs), 'timer time must be finite');
    assert(this.timers.length < timersMax, 'timer queue overflow');
    this.seq += 1;
    const t: Timer = { atMs, seq: this.seq, run };
    // Binary search for the first timer later than t: ties keep insertion order.
    let lo = 0;
    let hi = this.timers.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = this.timers[mid]!;
      if (m.atMs < t.atMs || (m.atMs === t.atMs && m.seq < t.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.timers.splice(lo, 0, t);
  }

  /** Runs every timer due at or before nowMs, including ones scheduled while running. */
  runDue(nowMs: number): void {
    let guard = 0;
    while (this.timers.length > 0 && this.timers[0]!.atMs <= nowMs) {
      guard += 1;
      assert(guard <= timersMax, 'timers keep scheduling themselves at the same instant');
      this.timers.shift()!.run(nowMs);
    }
  }
}

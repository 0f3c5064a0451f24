/**
 * @module loadgen/core/scripted-rng
 * A scripted Rng for tests: `next()` and `int()` return queued values in order, so a test can
 * state exactly which quantile or bin offset a draw gets. Throws when the script runs out.
 */
import type { Rng } from '../../shared/rng.js';

export function scriptedRng(nexts: number[], ints: number[] = []): Rng & { remaining(): number } {
  const n = [...nexts];
  const k = [...ints];
  const rng = {
    next(): number {
      const v = n.shift();
      if (v === undefined) throw new Error('scriptedRng: next() script exhausted');
      return v;
    },
    int(bound: number): number {
      const v = k.shift();
      if (v === undefined) throw new Error('scriptedRng: int() script exhausted');
      if (v < 0 || v >= bound) throw new Error(`scriptedRng: ${v} not in [0, ${bound})`);
      return v;
    },
    split(): Rng {
      return rng;
    },
    remaining(): number {
      return n.length + k.length;
    },
  };
  return rng;
}

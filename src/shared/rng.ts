/**
 * @module shared/rng
 * Seeded pseudo-random source (the Rng port). Policies and the simulator take an `Rng`, never
 * `Math.random`, so a decision can be replayed from its seed.
 */

export interface Rng {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). n must be a positive integer. */
  int(n: number): number;
  /** A new independent generator derived from this one (for splitting per component). */
  split(): Rng;
}

/** sfc32 seeded through splitmix32: fast, 128-bit state, good statistical quality. */
export function seededRng(seed: number): Rng {
  let s = seed >>> 0;
  const splitmix = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  const next = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
  const rng: Rng = {
    next,
    int(n: number): number {
      if (!(n > 0) || !Number.isInteger(n)) throw new Error(`rng.int: n must be a positive integer, got ${n}`);
      return Math.floor(next() * n);
    },
    split(): Rng {
      return seededRng(Math.floor(next() * 4294967296));
    },
  };
  return rng;
}

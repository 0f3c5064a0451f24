/**
 * @module sim/testkit
 * Helpers the simulator's scenario tests share: a small cluster of given functions and
 * workers, stepping with the safety checks after every step, and what the CP and the first DP
 * route for a function.
 */
import assert from 'node:assert/strict';
import { checkStep } from './checkers.js';
import type { Cluster } from './cluster.js';
import { baseOptions, functionRecord, type FnShape, type SimOptions } from './options.js';

export function scenario(fns: FnShape[], workers: number, opts: { checkDrains?: boolean } = {}): SimOptions {
  const o = baseOptions(42);
  o.functions = fns.map(functionRecord);
  if (opts.checkDrains) o.checkDrains = true;
  for (let i = 0; i < workers; i += 1) o.workers.push({ id: `w${i}`, cpuMillis: 4000, memoryMiB: 8192 });
  return o;
}

/** Steps until `untilMs`, checking safety after every step; `each` runs before the checks. */
export function runUntil(c: Cluster, untilMs: number, each: (c: Cluster) => void = () => {}): void {
  while (c.nowMs < untilMs) {
    c.step();
    each(c);
    const bad = checkStep(c);
    assert.equal(bad, null, `t=${c.nowMs}: ${bad}`);
  }
}

/** Runs until every DP has its first routing snapshot (a front end sends nothing to one before). */
export function runUntilSynced(c: Cluster, limitMs = 5_000): void {
  while (!c.dps.every((d) => d.core.synced)) {
    assert.ok(c.nowMs < limitMs, `DPs not synced by t=${c.nowMs}`);
    runUntil(c, c.nowMs + 1);
  }
}

/** Ready sandboxes of `fn` in the CP, by id. */
export function readyIds(c: Cluster, fn: string): string[] {
  return [...c.cp.sandboxes.values()].filter((s) => s.fn === fn && s.state === 'ready').map((s) => s.id).sort();
}

/** Sandboxes of `fn` the first DP routes to, by id. */
export function dpIds(c: Cluster, fn: string): string[] {
  return (c.dps[0]!.core.functions.get(fn)?.endpoints ?? []).map((e) => e.id).sort();
}

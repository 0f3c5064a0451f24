/**
 * @module sim/sim.test
 * The simulator's own tests: a fixed set of swarm seeds that must pass (among them the seeds
 * that found the drain-order and over-capacity adoption bugs), and scenarios with exact
 * expectations on a small cluster driven step by step.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkSettled, checkStep } from './checkers.js';
import { Cluster } from './cluster.js';
import { crashWorker } from './faults.js';
import { noFaults } from './options.js';
import { optionsForSeed, runSeed } from './run-seed.js';
import { dpIds, readyIds, runUntil, runUntilSynced, scenario } from './testkit.js';

/**
 * Seeds that found real core bugs, kept as regressions: 1, 7, 8 (a sandbox drained in the delta
 * that added it stayed routed), 875791747, 219333706 (a late-ready sandbox adopted past the
 * worker's capacity).
 */
const regressionSeeds = [1, 7, 8, 9, 10, 12, 18, 875791747, 219333706, 1444696196, 1877302916];

describe('swarm seeds', () => {
  it('seeds 1..40 and the regression seeds pass', () => {
    const seeds = [...Array.from({ length: 40 }, (_, i) => i + 1), ...regressionSeeds];
    for (const seed of new Set(seeds)) {
      const r = runSeed(optionsForSeed(seed));
      assert.ok(r.ok, r.summary);
    }
  });

  it('without faults no request fails with 502 (drains wait for in-flight requests)', () => {
    for (let seed = 1; seed <= 30; seed += 1) {
      const o = optionsForSeed(seed);
      o.faults = { ...noFaults };
      o.link.dropRate = 0;
      o.creation.failRate = 0;
      const r = runSeed(o);
      assert.ok(r.ok, r.summary);
      assert.equal(r.cluster.ledger.total('502'), 0, r.summary);
    }
  });

  it('the checkers catch a broken invariant (negative space)', () => {
    const c = new Cluster(optionsForSeed(2));
    let caught: string | null = null;
    for (let i = 0; i < 2_000 && !caught; i += 1) {
      c.step();
      const ep = [...c.ledger.inflight.keys()][0];
      if (ep) {
        ep.inflight += 1; // what a lost release would look like
        caught = checkStep(c);
        ep.inflight -= 1;
      }
    }
    assert.match(caught ?? '', /^S3 /);
    const w = [...c.workers.values()].find((x) => x.running.size > 0)!;
    w.running.delete([...w.running.keys()][0]!); // an orphan the CP still counts
    assert.match(checkSettled(c) ?? '', /^L[1-4] /);
  });

  it('a seed replays exactly', () => {
    const a = runSeed(optionsForSeed(3)).summary;
    const b = runSeed(optionsForSeed(3)).summary;
    assert.equal(a, b);
  });
});

const small = { cpuMillis: 500, memoryMiB: 256 };

describe('scenarios', () => {
  it('a crashed worker\'s sandboxes are replaced on the other worker within 1 s', () => {
    const c = new Cluster(scenario([{ name: 'a', concurrency: 1, min: 4, max: 4, ...small }], 2));
    runUntil(c, 5_000);
    // w0's hello reaches the CP first and takes all 4 (the function was waiting for any node).
    const onW0 = [...c.cp.sandboxes.values()].filter((s) => s.workerId === 'w0').length;
    assert.equal(onW0, 4);
    assert.equal(c.cp.workers.get('w1')?.connected, true);
    crashWorker(c, 'w0', c.nowMs);
    runUntil(c, 6_000);
    const ready = [...c.cp.sandboxes.values()].filter((s) => s.state === 'ready');
    assert.equal(ready.length, 4);
    assert.ok(ready.every((s) => s.workerId === 'w1'), 'all replacements on w1');
    assert.deepEqual(dpIds(c, 'a'), readyIds(c, 'a'), 'DP routes to exactly the new set');
    assert.ok(c.dps[0]!.core.endpoints.size === 4);
  });

  it('after a CP restart the new CP adopts the running sandboxes and the DP converges', () => {
    const fns = [
      { name: 'a', concurrency: 1, min: 2, max: 4, ...small },
      { name: 'b', concurrency: 4, min: 1, max: 2, ...small },
    ];
    const c = new Cluster(scenario(fns, 2));
    runUntil(c, 5_000);
    const before = [...readyIds(c, 'a'), ...readyIds(c, 'b')].sort();
    let created = 0;
    for (const w of c.workers.values()) created += w.created;
    c.crashCp(c.nowMs);
    c.timers.at(6_000, (t) => c.startCp(t));
    runUntil(c, 12_000);
    assert.deepEqual([...readyIds(c, 'a'), ...readyIds(c, 'b')].sort(), before, 'same sandboxes');
    let after = 0;
    for (const w of c.workers.values()) after += w.created;
    assert.equal(after, created, 'nothing was created again');
    assert.deepEqual(dpIds(c, 'a'), readyIds(c, 'a'));
    assert.deepEqual(dpIds(c, 'b'), readyIds(c, 'b'));
    assert.equal(c.dps[0]!.core.version, c.cp.routing.version);
  });

  it('8 concurrent 500 ms requests get 8 sandboxes within 4 s, and 0 within 12 s after', () => {
    const fn = { name: 'f', concurrency: 1, min: 0, max: 10, ...small };
    const o = scenario([fn], 3);
    const c = new Cluster(o);
    const loadEndMs = 10_000;
    // Closed loop: keep exactly 8 requests outstanding while the load lasts.
    const hold = (x: Cluster): void => {
      if (x.nowMs >= loadEndMs) return;
      let outstanding = 0;
      for (const r of x.ledger.pending) if (r.fn === 'f') outstanding += 1;
      for (; outstanding < 8; outstanding += 1) x.invoke('f', 500, x.nowMs);
    };
    let readyMax = 0;
    runUntilSynced(c);
    runUntil(c, 4_000, (x) => {
      hold(x);
      readyMax = Math.max(readyMax, x.cp.functions.get('f')!.ready);
    });
    assert.equal(c.cp.functions.get('f')!.ready, 8, 'ready at 4 s');
    runUntil(c, loadEndMs, (x) => {
      hold(x);
      readyMax = Math.max(readyMax, x.cp.functions.get('f')!.ready);
    });
    assert.ok(readyMax <= 10, `at most 10 ready, saw ${readyMax}`);
    runUntil(c, loadEndMs + 12_000);
    const f = c.cp.functions.get('f')!;
    assert.equal(f.ready + f.creating + f.draining, 0, 'scaled to zero');
    assert.equal(checkSettled(c), null);
    assert.equal(c.ledger.total('5'), 0, 'no 5xx under steady load');
  });
});

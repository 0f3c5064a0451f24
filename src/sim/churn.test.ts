/**
 * @module sim/churn.test
 * Scenarios with exact expectations for change under traffic (sim/churn.ts) and for the worker
 * core's replay inside the cluster, including the bugs these scenarios found: a delete that did
 * not drain, and a re-created function whose level went negative.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { memoryLogger, type RecordedLog } from '../shared/logger.js';
import { checkSettled } from './checkers.js';
import { crashDp, restartDp } from './churn.js';
import { Cluster } from './cluster.js';
import { optionsForSeed, runSeed } from './run-seed.js';
import { dpIds, readyIds, runUntil, runUntilSynced, scenario } from './testkit.js';

/** Keeps `n` requests of `holdMs` outstanding on `fn` until `untilMs`. */
function closedLoop(fn: string, n: number, holdMs: number, untilMs: number) {
  return (c: Cluster): void => {
    if (c.nowMs >= untilMs) return;
    let outstanding = 0;
    for (const r of c.ledger.pending) if (r.fn === fn) outstanding += 1;
    for (; outstanding < n; outstanding += 1) c.invoke(fn, holdMs, c.nowMs);
  };
}

const small = { cpuMillis: 500, memoryMiB: 256 };

describe('churn scenarios', () => {
  it('a knob-only update keeps the running sandboxes', () => {
    const c = new Cluster(scenario([{ name: 'a', concurrency: 1, min: 2, max: 4, ...small }], 1, { checkDrains: true }));
    runUntil(c, 5_000);
    const before = readyIds(c, 'a');
    assert.equal(before.length, 2);
    c.apiUpdate('a', (s) => ({ ...s, scaling: { ...s.scaling, max: 5 } }), c.nowMs);
    runUntil(c, 8_000);
    assert.deepEqual(readyIds(c, 'a'), before);
    assert.deepEqual(dpIds(c, 'a'), before);
  });

  it('a spec update replaces every sandbox and no request fails', () => {
    const c = new Cluster(scenario([{ name: 'a', concurrency: 1, min: 2, max: 4, ...small }], 2, { checkDrains: true }));
    const load = closedLoop('a', 2, 300, 12_000);
    runUntilSynced(c);
    runUntil(c, 5_000, load);
    const before = readyIds(c, 'a');
    c.apiUpdate('a', (s) => ({ ...s, env: { REVISION: '2' } }), c.nowMs);
    runUntil(c, 12_000, load);
    runUntil(c, 20_000);
    const after = readyIds(c, 'a');
    assert.ok(after.length >= 2 && after.every((id) => !before.includes(id)), `new sandboxes: ${after}`);
    assert.equal(c.ledger.total('5'), 0, 'no 5xx');
    assert.equal(checkSettled(c), null);
  });

  it('a DP restart fails its in-flight requests, comes back empty and resyncs', () => {
    const c = new Cluster(scenario([{ name: 'a', concurrency: 4, min: 1, max: 1, ...small }], 1, { checkDrains: true }));
    runUntil(c, 5_000);
    for (let i = 0; i < 3; i += 1) c.invoke('a', 2_000, c.nowMs);
    runUntil(c, 5_100);
    crashDp(c, c.dps[0]!, c.nowMs);
    assert.equal(c.ledger.total('502 dp_died'), 3);
    c.invoke('a', 10, c.nowMs);
    assert.equal(c.ledger.total('503 dp_down'), 1);
    runUntil(c, 6_000);
    restartDp(c, c.dps[0]!, c.nowMs);
    runUntil(c, 8_000);
    assert.equal(c.dps[0]!.core.version, c.cp.routing.version);
    assert.deepEqual(dpIds(c, 'a'), readyIds(c, 'a'));
    c.invoke('a', 10, c.nowMs);
    runUntil(c, 9_000);
    assert.equal(c.ledger.total('200'), 1);
    assert.equal(c.ledger.pending.size, 0);
  });

  it('a sandbox crash while the worker stream is down reaches the CP after the reconnect', () => {
    const logs: RecordedLog[] = [];
    const c = new Cluster(scenario([{ name: 'a', concurrency: 1, min: 2, max: 2, ...small }], 1, { checkDrains: true }), memoryLogger(logs));
    runUntil(c, 5_000);
    const [victim, survivor] = readyIds(c, 'a') as [string, string];
    const link = c.workerNet.links.get('w0')!;
    c.workerNet.setDown(link, true, c.nowMs); // no reconnect while down
    c.workerNet.breakLink(link, true, c.nowMs);
    c.workers.get('w0')!.crashSandbox(victim, c.nowMs);
    runUntil(c, 5_500);
    c.workerNet.setDown(link, false, c.nowMs);
    runUntil(c, 8_000);
    const replayed = logs.find((l) => l.event === 'worker.replayed');
    assert.deepEqual(replayed?.fields, { c: 'w0', workerId: 'w0', events: 1, dropped: 0 });
    const ids = readyIds(c, 'a');
    assert.ok(ids.includes(survivor) && !ids.includes(victim) && ids.length === 2, `ready ${ids}`);
    assert.deepEqual(dpIds(c, 'a'), ids);
  });

  it('a delete under traffic lets running requests finish before the sandbox goes', () => {
    const c = new Cluster(scenario([{ name: 'a', concurrency: 1, min: 1, max: 1, ...small }], 1, { checkDrains: true }));
    runUntil(c, 5_000);
    c.invoke('a', 1_000, c.nowMs);
    runUntil(c, 5_200);
    c.apiDelete('a', c.nowMs);
    runUntil(c, 8_000); // S7 fails the step that stops the sandbox under the request
    assert.equal(c.ledger.total('200'), 1);
    assert.equal(c.cp.sandboxes.size, 0);
  });

  it('a re-create while a request of the old function runs never makes a level negative', () => {
    const o = scenario([{ name: 'a', concurrency: 1, min: 1, max: 2, ...small }], 1, { checkDrains: true });
    const c = new Cluster(o);
    runUntil(c, 5_000);
    c.invoke('a', 1_000, c.nowMs);
    runUntil(c, 5_200);
    const old = c.records.get('a')!;
    c.apiDelete('a', c.nowMs);
    c.apiCreate(old.spec, 'a-2', c.nowMs);
    runUntil(c, 9_000); // S1 (CP counters) or S6 (DP level) fails once the old sandbox or request ends
    assert.equal(c.ledger.pending.size, 0);
  });

  it('churn seeds that pass today keep passing (updates, deletes, re-creates, DP restarts)', () => {
    for (const seed of [1, 5, 6, 13, 14, 20, 26, 27, 29, 33, 43, 51, 66]) {
      const r = runSeed(optionsForSeed(seed, { churn: true }));
      assert.ok(r.ok, r.summary);
    }
  });

  it('churn seeds 1..30 pass', () => {
    for (let seed = 1; seed <= 30; seed += 1) {
      const r = runSeed(optionsForSeed(seed, { churn: true }));
      assert.ok(r.ok, r.summary);
    }
  });
});

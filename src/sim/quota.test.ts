/**
 * Goal: with the production cores, a namespace's sandbox quota is never exceeded while two of
 * its functions compete for it under load, the function left without room is served once the
 * other scales down, and the cluster still settles.
 * Method: a deterministic simulated cluster, a closed loop of requests per function, the quota
 * sent to the CP core as the API would, and the usage checked after every step.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkSettled } from './checkers.js';
import { Cluster } from './cluster.js';
import { runUntil, scenario } from './testkit.js';

describe('namespace quota in the simulator', () => {
  it('two functions of team-a never hold more than its 3 sandboxes', () => {
    const small = { cpuMillis: 500, memoryMiB: 256, concurrency: 1, min: 0, max: 10 };
    const c = new Cluster(scenario([{ name: 'a.team-a', ...small }, { name: 'b.team-a', ...small }, { name: 'free', ...small }], 2));
    const none = { functions: 0, sandboxes: 0, cpuMillis: 0, memoryMiB: 0 };
    c.cpHandle({ kind: 'quotas_set', records: [{ name: 'team-a', quotas: { ...none, sandboxes: 3 } }], defaults: none }, 0);
    const loadEndMs = 8_000;
    const hold = (x: Cluster, fn: string, n: number): void => {
      if (x.nowMs >= loadEndMs) return;
      let outstanding = 0;
      for (const r of x.ledger.pending) if (r.fn === fn) outstanding += 1;
      for (; outstanding < n; outstanding += 1) x.invoke(fn, 300, x.nowMs);
    };
    let usedMax = 0;
    let freeMax = 0;
    runUntil(c, loadEndMs + 20_000, (x) => {
      hold(x, 'a.team-a', 5);
      hold(x, 'b.team-a', 5);
      hold(x, 'free', 5);
      usedMax = Math.max(usedMax, x.cp.namespaceUsage('team-a').sandboxes);
      freeMax = Math.max(freeMax, x.cp.functions.get('free')!.ready);
      assert.ok(x.cp.namespaceUsage('team-a').sandboxes <= 3, `t=${x.nowMs}: team-a over its quota`);
    });
    assert.equal(usedMax, 3, 'the quota was reached');
    assert.ok(freeMax >= 5, `the default namespace is not bound by it (saw ${freeMax})`);
    assert.ok(c.ledger.total('200') > 0);
    assert.equal(checkSettled(c), null);
  });
});

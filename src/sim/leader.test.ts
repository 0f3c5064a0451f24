/**
 * @module sim/leader.test
 * Leader changes in the simulator (sim/leader.ts): a paused leader that comes back after the
 * standby took over, and acts on its stale view, must change nothing at the workers and DPs
 * (fencing); and swarm seeds with leader kills and pauses keep every invariant.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Cluster } from './cluster.js';
import { pauseLeader } from './leader.js';
import { optionsForSeed, runSeed } from './run-seed.js';
import { dpIds, readyIds, runUntil, scenario } from './testkit.js';

const small = { cpuMillis: 250, memoryMiB: 128 };

describe('leader changes', () => {
  it('a paused leader back after the takeover loses its workers in its own view, but its removals and deletes act nowhere', () => {
    const o = scenario([{ name: 'a', concurrency: 1, min: 2, max: 4, ...small }], 2);
    // Paused at 5 s; the standby takes over at 5.5 s; the old one resumes at 8 s and acts for 3 s:
    // its heartbeat deadlines have long passed, so it drops every endpoint and tells the DP.
    o.leader = { killPerS: 0, pausePerS: 0, takeoverMs: [500, 500], pauseMs: [2_500, 2_500], zombieMs: [3_000, 3_000], lateMs: [1, 20] };
    const c = new Cluster(o);
    runUntil(c, 5_000);
    const before = readyIds(c, 'a');
    assert.equal(before.length, 2);
    pauseLeader(c, c.nowMs);
    runUntil(c, 14_000);
    assert.equal(c.cp.term, 2);
    assert.deepEqual(readyIds(c, 'a'), before, 'the new leader adopted the same sandboxes');
    assert.deepEqual(dpIds(c, 'a'), before, 'the DP still routes to them');
    assert.equal(c.dps[0]!.core.term, 2);
    assert.ok((c.faultCounts.get('stale_routing_ignored') ?? 0) > 0, 'the old leader did send stale routing');
  });

  it('leader-change seeds 1..15 pass, and some of their late messages are refused as stale', () => {
    let stale = 0;
    for (let seed = 1; seed <= 15; seed += 1) {
      const r = runSeed(optionsForSeed(seed, { leaderChanges: true }));
      assert.ok(r.ok, r.summary);
      stale += (r.cluster.faultCounts.get('stale_routing_ignored') ?? 0) + (r.cluster.faultCounts.get('stale_commands_ignored') ?? 0);
    }
    assert.ok(stale > 0, 'no stale message was exercised');
  });
});

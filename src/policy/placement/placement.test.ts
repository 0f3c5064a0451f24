/**
 * Unit tests of placement. Method: the scorers are checked against kube-scheduler's own unit
 * test cases (numbers derived below from the test comments in
 * kubernetes/kubernetes pkg/scheduler/framework/plugins/noderesources/least_allocated_test.go
 * and balanced_allocation_test.go) and against Dirigent's k8s_placement_test.go; selection
 * rules are pinned on small clusters with a seeded Rng; invariants by fast-check.
 */
import assert from 'node:assert/strict';
import { describe, it, test } from 'node:test';
import fc from 'fast-check';
import type { Resources } from '../../api/types.js';
import { seededRng } from '../../shared/rng.js';
import {
  PlacementReason,
  feasibleNodesToFind,
  placeKubernetes,
  placeKubernetesFrom,
  placeRandom,
  placeRoundRobin,
  placeWith,
  placementFilter,
  placementPolicyNames,
  scoreBalancedAllocation,
  scoreLeastAllocated,
  type NodeView,
  type PlacementRequest,
} from './placement.js';

const res = (cpuMillis: number, memoryMiB: number): Resources => ({ cpuMillis, memoryMiB });
const sum = (a: Resources, b: Resources): Resources =>
  res(a.cpuMillis + b.cpuMillis, a.memoryMiB + b.memoryMiB);

function node(id: string, capacity: Resources, allocated = res(0, 0), over = {}): NodeView {
  return { id, schedulable: true, capacity, allocated, runtimes: ['process'], ...over };
}

const req = (cpuMillis: number, memoryMiB: number): PlacementRequest => ({
  resources: res(cpuMillis, memoryMiB),
  runtime: 'process',
});

test('LeastAllocated reproduces kube-scheduler and Dirigent test cases', () => {
  // Goal: (cap − req) × 100 / cap per resource, integer mean. Method: kube-scheduler's
  // TestLeastAllocatedScoringStrategy, where the pod requests cpu 1000 + 2000 = 3000 and
  // memory 2000 + 3000 = 5000 (two containers):
  //  "nothing scheduled, resources requested, differently sized nodes":
  //    node1 cap 4000/10000: cpu (4000−3000)×100/4000 = 25, mem (10000−5000)×100/10000 = 50,
  //    (25 + 50) / 2 = 37; node2 cap 6000/10000: cpu 50, mem 50 → 50.
  assert.equal(scoreLeastAllocated(res(4000, 10000), res(3000, 5000)), 37);
  assert.equal(scoreLeastAllocated(res(6000, 10000), res(3000, 5000)), 50);
  //  "resources requested, pods scheduled with resources, differently sized nodes":
  //    node1 cap 10000/20000 holding 3000/0 → requested 6000/5000: cpu 40, mem 75 → 57;
  //    node2 cap 10000/50000 holding 3000/5000 → requested 6000/10000: cpu 40, mem 80 → 60.
  assert.equal(scoreLeastAllocated(res(10000, 20000), res(6000, 5000)), 57);
  assert.equal(scoreLeastAllocated(res(10000, 50000), res(6000, 10000)), 60);
  //  "requested resources exceed node capacity": pod 3000/0 on cap 4000/10000 holding 3000/0
  //    → cpu 6000 > 4000 scores 0, mem 100 → 50; holding 3000/5000 → 0 and 50 → 25.
  assert.equal(scoreLeastAllocated(res(4000, 10000), res(6000, 0)), 50);
  assert.equal(scoreLeastAllocated(res(4000, 10000), res(6000, 5000)), 25);
  //  Dirigent's TestLeastAllocated: request 1000/2000; node1 cap 4000/10000 holding 2000/4000
  //    → 3000/6000: cpu 25, mem 40 → 32; node2 cap 6000/10000 holding 1000/2000 → 2000/4000:
  //    cpu 4000×100/6000 = 66, mem 60 → 63.
  assert.equal(scoreLeastAllocated(res(4000, 10000), sum(res(1000, 2000), res(2000, 4000))), 32);
  assert.equal(scoreLeastAllocated(res(6000, 10000), sum(res(1000, 2000), res(1000, 2000))), 63);
  // Zero capacity scores 0, like the "zero node resources" case.
  assert.equal(scoreLeastAllocated(res(0, 0), res(0, 0)), 0);
});

test('BalancedAllocation reproduces kube-scheduler and Dirigent test cases', () => {
  // Goal: (1 − |fCpu − fMem| / 2) × 100, truncated. Method: kube-scheduler's
  // TestNodeResourcesBalancedAllocation with the pod "cpuAndMemory" (3000 cpu / 5000 memory):
  //  "nothing scheduled, resources requested, differently sized nodes":
  //    node1 4000/10000: f 0.75 / 0.5, std 0.125 → 87; node2 6000/10000: 0.5 / 0.5 → 100.
  assert.equal(scoreBalancedAllocation(res(4000, 10000), res(3000, 5000)), 87);
  assert.equal(scoreBalancedAllocation(res(6000, 10000), res(3000, 5000)), 100);
  //  "resources requested, pods scheduled with resources": node1 10000/20000 holding cpuOnly
  //    (3000/0) → 6000/5000: f 0.6 / 0.25, std 0.175 → 82; node2 10000/20000 holding
  //    cpuAndMemory → 6000/10000: 0.6 / 0.5, std 0.05 → 95.
  assert.equal(scoreBalancedAllocation(res(10000, 20000), res(6000, 5000)), 82);
  assert.equal(scoreBalancedAllocation(res(10000, 20000), res(6000, 10000)), 95);
  //  "... differently sized nodes" (also Dirigent's TestBalancedAllocation, 82 / 80):
  //    node2 10000/50000 → 6000/10000: f 0.6 / 0.2, std 0.2 → 80.
  assert.equal(scoreBalancedAllocation(res(10000, 50000), res(6000, 10000)), 80);
  //  "requested resources at node capacity": pod cpuOnly on 6000/10000: holding cpuOnly →
  //    6000/0: f 1 / 0, std 0.5 → 50; holding cpuAndMemory → 6000/5000: 1 / 0.5 → 75.
  assert.equal(scoreBalancedAllocation(res(6000, 10000), res(6000, 0)), 50);
  assert.equal(scoreBalancedAllocation(res(6000, 10000), res(6000, 5000)), 75);
  // Over capacity a fraction is capped at 1; a zero capacity is skipped (std 0).
  assert.equal(scoreBalancedAllocation(res(1000, 1000), res(5000, 500)), 75);
  assert.equal(scoreBalancedAllocation(res(0, 1000), res(0, 500)), 100);
});

test('kubernetes placement sums both scores; highest total wins', () => {
  // Goal: end-to-end scoring over allocated + request. Method: kube's "differently sized
  // nodes" cluster: node1 57 + 82 = 139, node2 60 + 80 = 140 → node2.
  const nodes = [
    node('node1', res(10000, 20000), res(3000, 0)),
    node('node2', res(10000, 50000), res(3000, 5000)),
  ];
  const result = placeKubernetes(nodes, req(3000, 5000), seededRng(1));
  assert.deepEqual(result, { kind: 'placed', nodeId: 'node2', score: 140 });
});

test('filters record one stable reason per rejected node', () => {
  // Goal: "no node fits" is a value with reasons. Method: one node per failing filter; an exact
  // fit (allocated + request = capacity) is feasible.
  const nodes = [
    node('down', res(4000, 4000), res(0, 0), { schedulable: false }),
    node('wasm', res(4000, 4000), res(0, 0), { runtimes: ['wasm'] }),
    node('busy-cpu', res(4000, 4000), res(3500, 0)),
    node('busy-mem', res(4000, 4000), res(0, 3500)),
  ];
  const expected = {
    kind: 'unschedulable',
    reasons: [
      { nodeId: 'down', reason: 'unschedulable' },
      { nodeId: 'wasm', reason: 'runtime not supported' },
      { nodeId: 'busy-cpu', reason: 'insufficient cpu' },
      { nodeId: 'busy-mem', reason: 'insufficient memory' },
    ],
  };
  const rng = seededRng(7);
  assert.deepEqual(placeKubernetes(nodes, req(1000, 1000), rng), expected);
  assert.deepEqual(placeRandom(nodes, req(1000, 1000), rng), expected);
  assert.deepEqual(placeRoundRobin(nodes, req(1000, 1000), 3), { result: expected, cursor: 3 });
  const exact = node('exact', res(4000, 4000), res(3000, 3000));
  assert.deepEqual(placementFilter(exact, req(1000, 1000)), { ok: true });
});

test('an empty cluster is unschedulable with the single reason "no nodes"', () => {
  // Goal: the empty case is explicit, not an empty list. Method: every policy, no nodes.
  const expected = { kind: 'unschedulable', reasons: [{ nodeId: '*', reason: 'no nodes' }] };
  for (const policy of placementPolicyNames) {
    const out = placeWith(policy, [], req(1, 1), { rng: seededRng(3), cursor: 5 });
    assert.deepEqual(out, { result: expected, cursor: 5 }, policy);
  }
  assert.equal(PlacementReason.noNodes, 'no nodes');
});

test('kubernetes ties are broken uniformly (one draw among them), reproducibly per seed', () => {
  // Goal: no bias towards the first or last tied node. Method: 3 equal nodes plus a worse one,
  // 3000 placements: each tied node gets 1000 ± 150 (about 5 standard deviations); the same
  // seed gives the same sequence.
  const nodes = [
    node('a', res(4000, 4000)),
    node('b', res(4000, 4000)),
    node('worse', res(4000, 4000), res(2000, 2000)),
    node('c', res(4000, 4000)),
  ];
  const rng = seededRng(42);
  const counts = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const r = placeKubernetes(nodes, req(100, 100), rng);
    assert.equal(r.kind, 'placed');
    if (r.kind === 'placed') counts.set(r.nodeId, (counts.get(r.nodeId) ?? 0) + 1);
  }
  assert.equal(counts.get('worse'), undefined);
  for (const id of ['a', 'b', 'c']) assert.ok(Math.abs(counts.get(id)! - 1000) < 150, id);
  const sequence = (seed: number): string[] => {
    const seeded = seededRng(seed);
    return Array.from({ length: 20 }, () => {
      const r = placeKubernetes(nodes, req(100, 100), seeded);
      return r.kind === 'placed' ? r.nodeId : '';
    });
  };
  assert.deepEqual(sequence(9), sequence(9));
  assert.notDeepEqual(sequence(9), sequence(10));
});

test('random placement is uniform over feasible nodes only', () => {
  // Goal: the filters apply to random too. Method: 2 feasible of 4; 2000 draws.
  const nodes = [
    node('full', res(1000, 1000), res(1000, 0)),
    node('x', res(4000, 4000)),
    node('down', res(4000, 4000), res(0, 0), { schedulable: false }),
    node('y', res(4000, 4000)),
  ];
  const rng = seededRng(5);
  const counts = new Map<string, number>();
  for (let i = 0; i < 2000; i++) {
    const r = placeRandom(nodes, req(500, 500), rng);
    if (r.kind === 'placed') counts.set(r.nodeId, (counts.get(r.nodeId) ?? 0) + 1);
  }
  assert.deepEqual([...counts.keys()].sort(), ['x', 'y']);
  assert.ok(Math.abs(counts.get('x')! - 1000) < 120);
});

test('round robin walks the given order, skips infeasible nodes, returns the next cursor', () => {
  // Goal: stable rotation. Method: a, b (unschedulable), c; start at cursor 0.
  const nodes = [
    node('a', res(4000, 4000)),
    node('b', res(4000, 4000), res(0, 0), { schedulable: false }),
    node('c', res(4000, 4000)),
  ];
  let cursor = 0;
  const picks: string[] = [];
  for (let i = 0; i < 4; i++) {
    const out = placeWith('round-robin', nodes, req(1, 1), { rng: seededRng(0), cursor });
    cursor = out.cursor;
    picks.push(out.result.kind === 'placed' ? out.result.nodeId : '-');
  }
  assert.deepEqual(picks, ['a', 'c', 'a', 'c']);
  // Cursor 1 (b, infeasible) and cursor 7 (7 mod 3 = 1) both pick c at index 2; next is 0.
  assert.deepEqual(placeRoundRobin(nodes, req(1, 1), 1), {
    result: { kind: 'placed', nodeId: 'c' },
    cursor: 0,
  });
  assert.equal(placeRoundRobin(nodes, req(1, 1), 7).cursor, 0);
});

// ---- Properties ---------------------------------------------------------------------------

const nodeArb = fc.record({
  id: fc.string({ minLength: 1, maxLength: 4 }),
  schedulable: fc.boolean(),
  capacity: fc.record({
    cpuMillis: fc.integer({ min: 0, max: 8000 }),
    memoryMiB: fc.integer({ min: 0, max: 8000 }),
  }),
  allocated: fc.record({
    cpuMillis: fc.integer({ min: 0, max: 8000 }),
    memoryMiB: fc.integer({ min: 0, max: 8000 }),
  }),
  runtimes: fc.subarray(['process', 'oci']),
});
const requestArb = fc.record({
  resources: fc.record({
    cpuMillis: fc.integer({ min: 0, max: 4000 }),
    memoryMiB: fc.integer({ min: 0, max: 4000 }),
  }),
  runtime: fc.constantFrom('process', 'oci'),
});

test('property: placement never picks an infeasible node and explains every rejection', () => {
  // Goal: safety of all three policies. Method: random clusters and requests on frozen inputs;
  // placed ⇒ that node passes the filter; unschedulable ⇒ no node passes and each has a reason.
  fc.assert(
    fc.property(
      fc.array(nodeArb, { maxLength: 8 }),
      requestArb,
      fc.constantFrom(...placementPolicyNames),
      fc.integer({ min: 0, max: 20 }),
      fc.integer(),
      (nodes, request, policy, cursor, seed) => {
        const frozen = Object.freeze(nodes.map((n) => Object.freeze({ ...n })));
        const { result } = placeWith(policy, frozen, request, { rng: seededRng(seed), cursor });
        const feasible = frozen.filter((n) => placementFilter(n, request).ok);
        if (result.kind === 'placed') {
          assert.ok(feasible.some((n) => n.id === result.nodeId));
        } else {
          assert.equal(feasible.length, 0);
          assert.equal(result.reasons.length, Math.max(1, frozen.length));
        }
      },
    ),
    { numRuns: 500 },
  );
});

test('property: both scorers stay in 0..100 and are integers', () => {
  // Goal: MaxNodeScore contract. Method: random capacities and requests, including overflow.
  const r = fc.record({
    cpuMillis: fc.integer({ min: 0, max: 100_000 }),
    memoryMiB: fc.integer({ min: 0, max: 100_000 }),
  });
  fc.assert(
    fc.property(r, r, (capacity, requested) => {
      for (const s of [
        scoreLeastAllocated(capacity, requested),
        scoreBalancedAllocation(capacity, requested),
      ]) {
        assert.ok(Number.isInteger(s) && s >= 0 && s <= 100, `${s}`);
      }
    }),
  );
});

describe('kubernetes placement on large clusters (percentageOfNodesToScore)', () => {
  it('looks for the adaptive number of feasible nodes, as kube-scheduler does', () => {
    assert.deepEqual(
      [50, 100, 1000, 5000, 10000].map(feasibleNodesToFind),
      [50, 100, 420, 500, 500],
    );
  });

  it('scores only the sample and rotates the start between placements', () => {
    const nodes = Array.from({ length: 1000 }, (_, i) => ({
      id: `n${i}`, schedulable: true, runtimes: ['process'],
      capacity: { cpuMillis: 1000, memoryMiB: 1000 }, allocated: { cpuMillis: 0, memoryMiB: 0 },
    }));
    // The emptiest node sits outside the first window: a full scan would pick it.
    nodes[500]!.capacity = { cpuMillis: 100_000, memoryMiB: 100_000 };
    const req = { resources: { cpuMillis: 100, memoryMiB: 100 }, runtime: 'process' };
    const first = placeKubernetesFrom(nodes, req, seededRng(1), 0);
    assert.equal(first.cursor, 420);
    assert.notEqual(first.result.kind === 'placed' && first.result.nodeId, 'n500');
    const second = placeKubernetesFrom(nodes, req, seededRng(1), first.cursor);
    assert.equal(second.result.kind === 'placed' && second.result.nodeId, 'n500');
    assert.equal(second.cursor, 840);
  });
});

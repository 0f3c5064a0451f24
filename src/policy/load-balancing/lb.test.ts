/**
 * Unit tests of the load-balancing policies. Method: small endpoint tables with chosen loads and
 * slots, a seeded Rng, and counts over many picks for the randomized policies (bounds about five
 * standard deviations wide, so a correct policy does not flake and a biased one fails);
 * invariants by fast-check.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { seededRng } from '../../shared/rng.js';
import {
  lbBuildRing,
  lbHasFreeSlot,
  lbInitialState,
  lbPolicyNames,
  pick,
  type LbEndpoint,
  type LbPolicy,
  type LbState,
} from './lb.js';

/** Endpoints e0, e1, … from [inflight, slots] pairs. */
function eps(...specs: [number, number][]): LbEndpoint[] {
  return specs.map(([inflight, slots], i) => ({ id: `e${i}`, inflight, slots }));
}

/** Index counts over `n` picks that do not change the loads. */
function histogram(
  policy: LbPolicy,
  endpoints: LbEndpoint[],
  concurrency: number,
  n: number,
  seed = 1,
): number[] {
  const rng = seededRng(seed);
  const counts = endpoints.map(() => 0);
  let state = lbInitialState();
  for (let i = 0; i < n; i++) {
    const r = pick(policy, endpoints, concurrency, state, rng);
    state = r.state;
    assert.ok(r.index >= 0);
    counts[r.index]++;
  }
  return counts;
}

test('every policy returns -1 when no endpoint has a free slot', () => {
  // Goal: "none free" is -1, not a full endpoint. Method: all full, and the empty table.
  const full = eps([1, 1], [3, 3]);
  for (const policy of lbPolicyNames) {
    for (const concurrency of [0, 1, 3, 10]) {
      const r = pick(policy, full, concurrency, lbInitialState(), seededRng(1), 'k');
      assert.equal(r.index, -1, `${policy}/${concurrency}`);
      assert.equal(pick(policy, [], concurrency, lbInitialState(), seededRng(1), 'k').index, -1);
    }
  }
  assert.ok(lbHasFreeSlot({ id: 'u', inflight: 1000, slots: 0 }), 'slots 0 = unlimited');
});

test('least-loaded: fewest in flight among free; ties rotate from the cursor', () => {
  // Goal: load first, fairness second. Method: loads [2, 0, 1, 0]: the two idle endpoints
  // alternate; a full endpoint with the lowest load is skipped.
  const endpoints = eps([2, 0], [0, 0], [1, 0], [0, 0]);
  let state = lbInitialState();
  const picks: number[] = [];
  for (let i = 0; i < 4; i++) {
    const r = pick('least-loaded', endpoints, 0, state, seededRng(1));
    picks.push(r.index);
    state = r.state;
  }
  assert.deepEqual(picks, [1, 3, 1, 3]);
  const withFull = eps([1, 1], [2, 4], [3, 4]); // e0 has the fewest in flight but is full
  assert.equal(pick('least-loaded', withFull, 4, { cursor: 0 }, seededRng(1)).index, 1);
});

test('knative, concurrency 1–3: first free endpoint in order, state unchanged', () => {
  // Goal: Knative's firstAvailableLBPolicy. Method: e0 full, e1 and e2 free.
  const endpoints = eps([1, 1], [0, 1], [0, 1]);
  const state: LbState = { cursor: 2 };
  for (const concurrency of [1, 2, 3]) {
    const r = pick('knative', endpoints, concurrency, state, seededRng(1));
    assert.equal(r.index, 1);
    assert.equal(r.state, state, 'no new state object on the hot path');
  }
});

test('knative, unlimited: power of two choices keeps the LESS loaded one', () => {
  // Goal: not Dirigent's inverted comparison. Method: two endpoints (the pair is always both):
  // loads [5, 1] → always e1. Three endpoints [5, 1, 9]: the most loaded e2 is never chosen;
  // e1 wins every pair it is in (2/3), e0 only the pair {e0, e2} (1/3).
  assert.deepEqual(histogram('knative', eps([5, 0], [1, 0]), 0, 500), [0, 500]);
  const three = histogram('knative', eps([5, 0], [1, 0], [9, 0]), 0, 3000);
  assert.equal(three[2], 0);
  assert.ok(Math.abs(three[1] - 2000) < 130, `${three}`);
  // The two draws are distinct and uniform: the idle last endpoint is in 2 of the 3 pairs.
  const last = histogram('knative', eps([9, 0], [9, 0], [0, 0]), 0, 3000);
  assert.ok(Math.abs(last[2] - 2000) < 130, `${last}`);
  // Ties by coin flip: equal loads split about evenly.
  const tie = histogram('knative', eps([3, 0], [3, 0]), 0, 2000);
  assert.ok(Math.abs(tie[0] - 1000) < 120, `${tie}`);
  // Only free endpoints are candidates: e1 (least loaded) is full, so e0 and e2 compete.
  assert.equal(histogram('knative', eps([4, 0], [1, 1], [6, 0]), 0, 300)[1], 0);
});

test('knative, concurrency > 3 and round-robin: next free endpoint after the cursor', () => {
  // Goal: round robin with capacity. Method: e1 full; picks alternate e0, e2.
  const endpoints = eps([0, 4], [4, 4], [1, 4]);
  for (const [policy, concurrency] of [
    ['knative', 4],
    ['round-robin', 4],
    ['round-robin', 0],
  ] as const) {
    let state = lbInitialState();
    const picks: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = pick(policy, endpoints, concurrency, state, seededRng(1));
      picks.push(r.index);
      state = r.state;
    }
    assert.deepEqual(picks, [0, 2, 0, 2], `${policy}/${concurrency}`);
  }
  assert.equal(pick('round-robin', endpoints, 4, { cursor: 1 }, seededRng(1)).index, 2);
});

test('random: uniform among the free endpoints', () => {
  // Goal: no pick of a full endpoint, no bias. Method: e1 full, 3000 picks over 3 free.
  const counts = histogram('random', eps([0, 1], [1, 1], [5, 0], [0, 2]), 1, 3000);
  assert.equal(counts[1], 0);
  for (const i of [0, 2, 3]) assert.ok(Math.abs(counts[i] - 1000) < 130, `${counts}`);
});

test('consistent-hash: a key stays home while loads are balanced, moves past 1.25× average', () => {
  // Goal: bounded-load consistent hashing. Method: 4 endpoints with equal loads 2: bound =
  // ceil(1.25 × (8 + 1) / 4) = 3, so every key stays on its home endpoint. Then the home gets
  // load 3 and the others 1: bound = ceil(1.25 × (6 + 1) / 4) = 3 and 3 + 1 > 3, so it moves.
  const endpoints = eps([2, 0], [2, 0], [2, 0], [2, 0]);
  const rng = seededRng(1);
  const first = pick('consistent-hash', endpoints, 0, lbInitialState(), rng, 'fn-a');
  const home = first.index;
  assert.ok(home >= 0);
  const ring = first.state.ring;
  assert.ok(ring !== undefined);
  for (let i = 0; i < 10; i++) {
    const again = pick('consistent-hash', endpoints, 0, first.state, rng, 'fn-a');
    assert.equal(again.index, home);
    assert.equal(again.state.ring, ring, 'ring cached while the endpoint ids are unchanged');
  }
  const skewed = endpoints.map((e, i) => ({ ...e, inflight: i === home ? 3 : 1 }));
  const moved = pick('consistent-hash', skewed, 0, first.state, rng, 'fn-a');
  assert.notEqual(moved.index, home);
  assert.ok(moved.index >= 0 && skewed[moved.index].inflight + 1 <= 3);
  assert.equal(moved.state.ring, ring, 'loads changed, ids did not: no rebuild');
  // Changing the id list rebuilds the ring.
  const renamed = endpoints.map((e, i) => ({ ...e, id: `x${i}` }));
  assert.notEqual(pick('consistent-hash', renamed, 0, first.state, rng, 'fn-a').state.ring, ring);
});

test('consistent-hash: adding an endpoint moves only the keys the new one takes', () => {
  // Goal: the point of a hash ring. Method: 1000 keys at zero load on 4 endpoints, then a 5th:
  // about 1/5 of the keys move (expect < 30 %), and every moved key moves to the new endpoint.
  const four = eps([0, 0], [0, 0], [0, 0], [0, 0]);
  const five = eps([0, 0], [0, 0], [0, 0], [0, 0], [0, 0]);
  const rng = seededRng(1);
  let s4 = lbInitialState();
  let s5 = lbInitialState();
  let moved = 0;
  for (let k = 0; k < 1000; k++) {
    const a = pick('consistent-hash', four, 0, s4, rng, `key-${k}`);
    const b = pick('consistent-hash', five, 0, s5, rng, `key-${k}`);
    s4 = a.state;
    s5 = b.state;
    if (a.index !== b.index) {
      moved++;
      assert.equal(b.index, 4);
    }
  }
  assert.ok(moved > 100 && moved < 300, `moved ${moved}`);
});

test('consistent-hash: slot limits win over the load bound', () => {
  // Goal: never a full endpoint. Method: every endpoint under the bound is full; the only free
  // one is over the bound, and is taken rather than returning -1.
  const endpoints = eps([1, 1], [1, 1], [1, 1], [9, 0]);
  const r = pick('consistent-hash', endpoints, 1, lbInitialState(), seededRng(1), 'k');
  assert.equal(r.index, 3);
  assert.equal(lbBuildRing(endpoints).hashes.length, 4 * 64);
});

// ---- Properties ---------------------------------------------------------------------------

const endpointsArb = fc.array(
  fc.record({
    id: fc.string({ minLength: 1, maxLength: 3 }),
    inflight: fc.integer({ min: 0, max: 6 }),
    slots: fc.integer({ min: 0, max: 4 }),
  }),
  { maxLength: 10 },
);

test('property: pick never returns an endpoint without a free slot, and -1 only if none is', () => {
  // Goal: the contract of every policy. Method: random tables, policies, cursors and keys;
  // inputs frozen (a write would throw), including the cached ring carried between calls.
  fc.assert(
    fc.property(
      endpointsArb,
      fc.constantFrom(...lbPolicyNames),
      fc.integer({ min: 0, max: 5 }),
      fc.integer({ min: -3, max: 30 }),
      fc.string(),
      fc.integer(),
      (endpoints, policy, concurrency, cursor, key, seed) => {
        const frozen = Object.freeze(endpoints.map((e) => Object.freeze({ ...e })));
        let state: LbState = Object.freeze({ cursor });
        for (let round = 0; round < 3; round++) {
          const r = pick(policy, frozen, concurrency, state, seededRng(seed + round), key);
          const anyFree = frozen.some(lbHasFreeSlot);
          if (r.index === -1) assert.ok(!anyFree);
          else assert.ok(lbHasFreeSlot(frozen[r.index]), `picked full endpoint ${r.index}`);
          assert.equal(anyFree, r.index !== -1);
          state = Object.freeze(r.state);
        }
      },
    ),
    { numRuns: 1000 },
  );
});

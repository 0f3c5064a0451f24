/**
 * Unit tests of victim selection. Method: a mixed set of sandboxes with known states, loads
 * and ages; the full order is pinned, then invariants are checked by fast-check.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { chooseVictims, type EvictionCandidate } from './eviction.js';

const sb = (
  id: string,
  state: EvictionCandidate['state'],
  createdAtMs: number,
  inflight = 0,
): EvictionCandidate => ({ id, state, createdAtMs, inflight });

const mixed: readonly EvictionCandidate[] = Object.freeze([
  sb('busy-old', 'ready', 100, 3),
  sb('idle-old', 'ready', 200),
  sb('draining', 'draining', 900),
  sb('creating-old', 'creating', 300),
  sb('busy-new', 'ready', 700, 1),
  sb('idle-new', 'ready', 600),
  sb('creating-new', 'creating', 800),
]);

test('order: creating, then idle ready, then busy ready, newest first; never draining', () => {
  // Goal: remove what wastes least. Method: ask for more than are eligible.
  assert.deepEqual(chooseVictims(mixed, 10), [
    'creating-new',
    'creating-old',
    'idle-new',
    'idle-old',
    'busy-new',
    'busy-old',
  ]);
  assert.deepEqual(chooseVictims(mixed, 3), ['creating-new', 'creating-old', 'idle-new']);
});

test('count 0 or negative gives none; equal ages keep the input order', () => {
  // Goal: edge cases are deterministic. Method: count ≤ 0; two idle sandboxes of equal age.
  assert.deepEqual(chooseVictims(mixed, 0), []);
  assert.deepEqual(chooseVictims(mixed, -2), []);
  const twins = [sb('b', 'ready', 5), sb('a', 'ready', 5)];
  assert.deepEqual(chooseVictims(twins, 1), ['b']);
  assert.deepEqual(chooseVictims([sb('d', 'draining', 1)], 1), []);
});

test('property: victims are distinct, eligible, at most count, and the best are taken', () => {
  // Goal: invariants for any input. Method: random sets checked against an independent rank
  // (group, then newest): victims come in rank order and no eligible sandbox left behind
  // ranks strictly better than the last victim.
  const candidateArb = fc.record({
    createdAtMs: fc.integer({ min: 0, max: 50 }),
    inflight: fc.integer({ min: 0, max: 3 }),
    state: fc.constantFrom('creating' as const, 'ready' as const, 'draining' as const),
  });
  const rank = (s: EvictionCandidate): [number, number] => [
    s.state === 'creating' ? 0 : s.inflight === 0 ? 1 : 2,
    -s.createdAtMs,
  ];
  const before = (a: [number, number], b: [number, number]): boolean =>
    a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
  const countArb = fc.integer({ min: -1, max: 14 });
  fc.assert(
    fc.property(fc.array(candidateArb, { maxLength: 12 }), countArb, (cs, n) => {
      const sandboxes: readonly EvictionCandidate[] = Object.freeze(
        cs.map((c, i) => Object.freeze({ ...c, id: `s${i}` })),
      );
      const victims = chooseVictims(sandboxes, n);
      const eligible = sandboxes.filter((s) => s.state !== 'draining');
      assert.equal(victims.length, Math.max(0, Math.min(n, eligible.length)));
      assert.equal(new Set(victims).size, victims.length);
      const byId = new Map(sandboxes.map((s) => [s.id, s]));
      const ranks = victims.map((id) => rank(byId.get(id)!));
      for (const id of victims) assert.notEqual(byId.get(id)!.state, 'draining');
      for (let i = 1; i < ranks.length; i++) assert.ok(!before(ranks[i], ranks[i - 1]));
      const last = ranks.at(-1);
      for (const s of eligible) {
        if (last !== undefined && !victims.includes(s.id)) assert.ok(!before(rank(s), last));
      }
    }),
  );
});

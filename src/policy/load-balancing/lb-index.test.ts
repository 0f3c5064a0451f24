/**
 * Unit tests of the incremental load-balancing indexes. Method: a small owner that changes
 * in-flight counts the way the data-plane core does (pick, +1, update; release, -1, update;
 * joins and leaves), checked against a brute-force view of the same endpoints: fast-check for
 * the contract, hand-built tables for each policy's character.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { seededRng } from '../../shared/rng.js';
import { createLbIndex, type LbIndex } from './lb-index.js';
import { lbHasFreeSlot, lbPolicyNames, type LbEndpoint, type LbPolicyName } from './lb.js';

class Owner {
  index: LbIndex<LbEndpoint>;
  readonly members: LbEndpoint[] = [];
  constructor(readonly policy: LbPolicyName, readonly slots: number, n: number) {
    this.index = createLbIndex(policy, slots);
    for (let i = 0; i < n; i++) this.join(`e${i}`);
  }
  /** A new index over the same members, as the data plane does when a function's concurrency changes. */
  reindex(): void {
    for (const e of this.members) this.index.remove(e);
    this.index = createLbIndex(this.policy, this.slots);
    for (const e of this.members) this.index.add(e);
  }
  join(id: string): LbEndpoint {
    const e = { id, inflight: 0, slots: this.slots };
    this.members.push(e);
    this.index.add(e);
    return e;
  }
  leave(e: LbEndpoint): void {
    this.members.splice(this.members.indexOf(e), 1);
    this.index.remove(e);
  }
  take(key = 'k', rng = seededRng(1)): LbEndpoint | null {
    const e = this.index.pick(rng, key);
    if (e) this.change(e, 1);
    return e;
  }
  change(e: LbEndpoint, by: 1 | -1): void {
    const before = e.inflight;
    e.inflight += by;
    if (this.members.includes(e)) this.index.update(e, before);
  }
}

test('property: every index picks only members with a free slot, and null only if none has one', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...lbPolicyNames),
      fc.integer({ min: 0, max: 4 }),
      fc.integer({ min: 0, max: 6 }),
      fc.array(fc.tuple(fc.constantFrom('take', 'release', 'join', 'leave', 'reindex'), fc.nat(), fc.string({ maxLength: 3 })), { maxLength: 60 }),
      fc.integer(),
      (policy, slots, n, ops, seed) => {
        const o = new Owner(policy, slots, n);
        const rng = seededRng(seed);
        const busy: LbEndpoint[] = [];
        let joined = n;
        for (const [op, k, key] of ops) {
          if (op === 'take') {
            const e = o.index.pick(rng, key);
            const anyFree = o.members.some(lbHasFreeSlot);
            assert.equal(e !== null, anyFree, `${policy}: null iff none free`);
            if (e) {
              assert.ok(o.members.includes(e) && lbHasFreeSlot(e), `${policy}: picked ${e.id} full or gone`);
              o.change(e, 1);
              busy.push(e);
            }
          } else if (op === 'release' && busy.length > 0) {
            o.change(busy.splice(k % busy.length, 1)[0]!, -1);
          } else if (op === 'join') {
            o.join(`j${joined++}`);
          } else if (op === 'leave' && o.members.length > 0) {
            o.leave(o.members[k % o.members.length]!);
          } else if (op === 'reindex') {
            o.reindex();
          }
        }
      },
    ),
    { numRuns: 500 },
  );
});

test('an endpoint moved to a new index is picked by it, and never by the old one', () => {
  for (const policy of lbPolicyNames) {
    const o = new Owner(policy, 1, 2);
    const old = o.index;
    o.reindex();
    const first = o.take();
    const second = o.take();
    assert.deepEqual([first?.id, second?.id].sort(), ['e0', 'e1'], `${policy}: both free endpoints from the new index`);
    assert.equal(old.pick(seededRng(1), 'k'), null, `${policy}: the old index holds nothing`);
  }
});

test('least-loaded: fewest in flight; idle endpoints take turns', () => {
  const o = new Owner('least-loaded', 0, 3);
  const first = [o.take(), o.take(), o.take()].map((e) => e!.id);
  assert.deepEqual([...first].sort(), ['e0', 'e1', 'e2'], 'each idle endpoint once before any gets a second');
  const [e0, e1] = o.members;
  o.change(e0!, -1);
  assert.equal(o.take(), e0, 'the only one at load 0');
  o.change(e1!, -1);
  o.change(e1!, 1);
  assert.equal(o.index.pick(seededRng(1), 'k')!.inflight, 1);
});

test('knative, concurrency 1-3: first free endpoint in join order', () => {
  const o = new Owner('knative', 2, 3);
  assert.deepEqual([o.take(), o.take(), o.take()].map((e) => e!.id), ['e0', 'e0', 'e1']);
  o.change(o.members[0]!, -1);
  assert.equal(o.take()!.id, 'e0', 'a freed earlier endpoint comes first again');
});

test('round-robin and knative > 3: the free endpoints in turn', () => {
  for (const [policy, slots] of [['round-robin', 4], ['knative', 4], ['round-robin', 0]] as const) {
    const o = new Owner(policy, slots, 3);
    if (slots > 0) for (let i = 0; i < slots; i++) o.change(o.members[1]!, 1); // e1 full
    const picks = [o.take(), o.take(), o.take(), o.take()].map((e) => e!.id);
    if (slots > 0) assert.deepEqual(picks, ['e0', 'e2', 'e0', 'e2'], `${policy}/${slots}`);
    else assert.deepEqual(picks, ['e0', 'e1', 'e2', 'e0'], `${policy}/${slots}`);
  }
});

test('random: uniform among the free endpoints; knative unlimited keeps the less loaded of two', () => {
  const counts = new Map<string, number>();
  const o = new Owner('random', 0, 4);
  const rng = seededRng(3);
  for (let i = 0; i < 4000; i++) {
    const e = o.index.pick(rng, 'k')!;
    counts.set(e.id, (counts.get(e.id) ?? 0) + 1);
  }
  for (const n of counts.values()) assert.ok(Math.abs(n - 1000) < 160, `${[...counts]}`);
  const k = new Owner('knative', 0, 2);
  k.change(k.members[0]!, 1);
  for (let i = 0; i < 50; i++) assert.equal(k.index.pick(seededRng(i), 'k')!.id, 'e1');
});

test('consistent-hash: a key stays home while loads are balanced and leaves it past the bound', () => {
  const o = new Owner('consistent-hash', 0, 4);
  const home = o.index.pick(seededRng(1), 'user-42')!;
  assert.equal(o.index.pick(seededRng(2), 'user-42'), home, 'same key, same endpoint');
  for (let i = 0; i < 3; i++) o.change(home, 1);
  for (const e of o.members) if (e !== home) o.change(e, 1);
  // loads: home 3, others 1: bound = ceil(1.25 × 7 / 4) = 3, so home (3 + 1 > 3) is skipped.
  assert.notEqual(o.index.pick(seededRng(1), 'user-42'), home);
  o.leave(home);
  assert.ok(o.members.includes(o.index.pick(seededRng(1), 'user-42')!), 'ring rebuilt without the leaver');
});

/**
 * Goal: the deadline heap pops due entries in time order and nothing early, and an entry removed
 * before it is due never pops.
 * Method: push out of order, pop at a chosen time; a property test against a sorted list under
 * random pushes, removals and pops.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DeadlineHeap, type Deadline } from './deadlines.js';

describe('DeadlineHeap', () => {
  it('pops due deadlines in time order and nothing early', () => {
    const h = new DeadlineHeap();
    for (const due of [50, 10, 40, 30, 20, 60]) h.push(due, 'creation', String(due));
    assert.equal(h.popDue(5), null);
    const out: number[] = [];
    for (let d = h.popDue(45); d; d = h.popDue(45)) out.push(d.dueMs);
    assert.deepEqual(out, [10, 20, 30, 40]);
    assert.equal(h.size, 2);
  });

  it('removes an entry early; a second removal, or one of a popped entry, changes nothing', () => {
    const h = new DeadlineHeap();
    const [a, b, c] = [h.push(30, 'creation', 'a'), h.push(10, 'drain', 'b'), h.push(20, 'creation', 'c')];
    h.remove(b);
    h.remove(b);
    assert.equal(b.at, -1);
    assert.equal(h.size, 2);
    assert.equal(h.popDue(100), c);
    h.remove(c);
    assert.equal(h.size, 1);
    assert.equal(h.popDue(100), a);
    assert.equal(h.popDue(100), null);
  });

  it('property: what pops is every entry not removed, in due order, each once', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(
          fc.record({ op: fc.constant('push' as const), due: fc.integer({ min: 0, max: 50 }) }),
          fc.record({ op: fc.constant('remove' as const), k: fc.nat() }),
          fc.record({ op: fc.constant('pop' as const), now: fc.integer({ min: 0, max: 50 }) }),
        ), { maxLength: 80 }),
        (ops) => {
          const h = new DeadlineHeap();
          let live: Deadline[] = [];
          let seq = 0;
          for (const o of ops) {
            if (o.op === 'push') live.push(h.push(o.due, 'creation', String(seq++)));
            else if (o.op === 'remove' && live.length > 0) {
              const d = live[o.k % live.length]!;
              h.remove(d);
              live = live.filter((x) => x !== d);
            } else if (o.op === 'pop') {
              const d = h.popDue(o.now);
              const earliest = live.reduce<Deadline | null>((m, x) => (m === null || x.dueMs < m.dueMs ? x : m), null);
              if (earliest === null || earliest.dueMs > o.now) assert.equal(d, null);
              else {
                assert.ok(d !== null && live.includes(d), 'a live entry pops');
                assert.equal(d.dueMs, earliest.dueMs, 'the earliest one');
                live = live.filter((x) => x !== d);
              }
            }
            assert.equal(h.size, live.length);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

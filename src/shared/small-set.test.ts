/**
 * Goal: a SmallSet behaves as a Set of strings (contents, size, membership, insertion order)
 * in both of its forms and across the change from list to Set, and an empty one is the shared
 * frozen empty set. Method: random adds and deletes over a small alphabet (so sizes cross
 * smallSetListMax both ways), checked against a real Set after every step.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { emptySmallSet, smallSetAdd, smallSetDelete, smallSetHas, smallSetListMax, smallSetSize, type SmallSet } from './small-set.js';

test('property: a SmallSet holds what a Set holds, in the same order', () => {
  // Mostly adds, then mostly deletes: sizes grow past the list form and shrink to empty again.
  const op = (addsIn5: number) => fc.record({ add: fc.integer({ min: 1, max: 5 }).map((x) => x <= addsIn5), id: fc.integer({ min: 0, max: smallSetListMax * 2 }) });
  const allIds = Array.from({ length: smallSetListMax * 2 + 1 }, (_, i) => i);
  let becameSet = 0;
  let emptiedFromSet = 0;
  fc.assert(
    fc.property(
      fc.array(op(4), { minLength: 10, maxLength: 120, size: 'max' }),
      fc.array(op(1), { minLength: 10, maxLength: 120, size: 'max' }),
      fc.shuffledSubarray(allIds, { minLength: allIds.length }),
      (growing, shrinking, lastDeletes) => {
      const ops = [...growing, ...shrinking, ...lastDeletes.map((id) => ({ add: false, id }))];
      let wasSet = false;
      let s: SmallSet = emptySmallSet;
      const model = new Set<string>();
      for (const { add, id } of ops) {
        const key = `sb-${id}`;
        if (add) {
          s = smallSetAdd(s, key);
          model.add(key);
        } else {
          s = smallSetDelete(s, key);
          model.delete(key);
        }
        assert.deepEqual([...s], [...model]);
        assert.equal(smallSetSize(s), model.size);
        assert.equal(smallSetHas(s, key), model.has(key));
        if (model.size === 0) {
          assert.equal(s, emptySmallSet, 'empty is the shared empty set');
          if (wasSet) emptiedFromSet += 1;
        }
        wasSet = !Array.isArray(s);
        if (wasSet) becameSet += 1;
      }
    }),
    { numRuns: 300 },
  );
  assert.ok(becameSet > 0 && emptiedFromSet > 0, `steps as a Set: ${becameSet}, emptied from a Set: ${emptiedFromSet}`);
});

test('the list form holds up to smallSetListMax ids; one more makes it a Set; the empty set is frozen', () => {
  let s: SmallSet = emptySmallSet;
  for (let i = 0; i < smallSetListMax; i++) s = smallSetAdd(s, `id-${i}`);
  assert.ok(Array.isArray(s));
  s = smallSetAdd(s, 'one-more');
  assert.ok(s instanceof Set);
  assert.equal(smallSetSize(s), smallSetListMax + 1);
  assert.ok(Object.isFrozen(emptySmallSet));
  assert.throws(() => (emptySmallSet as string[]).push('x'));
});

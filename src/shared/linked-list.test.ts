/**
 * Goal: the linked list keeps FIFO order and removes any node in O(1), once.
 * Method: push, remove from the middle, both ends and twice, then compare with an array model.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { LinkedList, type ListNode } from './linked-list.js';

test('FIFO order; removal anywhere; a second removal is a no-op', () => {
  const l = new LinkedList<number>();
  const nodes = [1, 2, 3, 4].map((v) => l.push(v));
  l.remove(nodes[1]!);
  l.remove(nodes[1]!);
  l.remove(nodes[3]!);
  assert.equal(l.length, 2);
  assert.deepEqual([...l.drain()], [1, 3]);
  assert.equal(l.peek(), undefined);
  l.push(5);
  assert.equal(l.shift(), 5);
});

test('property: any mix of push, unshift, ordered insert, shift and remove matches an array model', () => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom('push', 'unshift', 'insert', 'shift', 'remove'), fc.nat())), (ops) => {
    const l = new LinkedList<number>();
    let model: ListNode<number>[] = [];
    let next = 0;
    for (const [op, k] of ops) {
      if (op === 'push') model.push(l.push(next++));
      else if (op === 'unshift') model.unshift(l.unshift(next++));
      else if (op === 'insert') {
        // Before the first value above k (mod a small range, so both outcomes happen), else last.
        const key = k % 8;
        const at = model.findIndex((n) => n.value > key);
        const node = l.insertBeforeFirst(key, (v) => v > key);
        if (at < 0) model.push(node);
        else model.splice(at, 0, node);
      }
      else if (op === 'shift') assert.equal(l.shift(), model.shift()?.value);
      else if (model.length > 0) {
        const node = model[k % model.length]!;
        l.remove(node);
        model = model.filter((n) => n !== node);
      }
      assert.equal(l.length, model.length);
      assert.equal(l.peek(), model[0]?.value);
    }
    assert.deepEqual([...l.drain()], model.map((n) => n.value));
  }));
});

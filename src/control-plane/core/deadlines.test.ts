/**
 * Goal: the deadline heap pops due entries in time order and nothing early.
 * Method: push out of order, pop at a chosen time.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DeadlineHeap } from './deadlines.js';

describe('DeadlineHeap', () => {
  it('pops due deadlines in time order and nothing early', () => {
    const h = new DeadlineHeap();
    for (const due of [50, 10, 40, 30, 20, 60]) h.push({ dueMs: due, kind: 'creation', key: String(due) });
    assert.equal(h.popDue(5), null);
    const out: number[] = [];
    for (let d = h.popDue(45); d; d = h.popDue(45)) out.push(d.dueMs);
    assert.deepEqual(out, [10, 20, 30, 40]);
    assert.equal(h.size, 2);
  });
});

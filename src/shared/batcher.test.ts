/**
 * Goal: a link's batcher sends what one turn queued in one flush, in order; a deferrable item
 * alone waits `deferMs` for company, and an urgent one queued meanwhile takes it along at the end
 * of its own turn (nothing urgent is ever held back). A scale-down delta is the only routing update
 * that may wait.
 * Method: node:test's mock timers (virtual time) around `Batcher`; `onlyDrains` on deltas that
 * differ from a drain by one field.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { onlyDrains, type RoutingDeltaMsg } from '../api/cluster.js';
import { Batcher } from './grpc.js';

describe('link batcher', () => {
  let flushed: string[][];
  let b: Batcher<string>;
  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout', 'setImmediate'] });
    flushed = [];
    b = new Batcher<string>((items) => flushed.push(items), 5);
  });
  afterEach(() => mock.timers.reset());

  it('urgent items of one turn leave together at its end', () => {
    b.push('a');
    b.push('b');
    assert.deepEqual(flushed, []);
    mock.timers.tick(0);
    assert.deepEqual(flushed, [['a', 'b']]);
  });

  it('a deferrable item alone waits deferMs, then leaves with the deferrable ones queued since', () => {
    b.push('drain-1', true);
    mock.timers.tick(0);
    mock.timers.tick(4);
    b.push('drain-2', true);
    mock.timers.tick(0);
    assert.deepEqual(flushed, []);
    mock.timers.tick(1);
    assert.deepEqual(flushed, [['drain-1', 'drain-2']]);
    mock.timers.tick(10);
    assert.deepEqual(flushed, [['drain-1', 'drain-2']], 'no second flush');
  });

  it('an urgent item takes the waiting deferrable ones along, in order, and the timer sends nothing more', () => {
    b.push('drain', true);
    mock.timers.tick(2);
    b.push('create');
    mock.timers.tick(0);
    assert.deepEqual(flushed, [['drain', 'create']]);
    mock.timers.tick(10);
    assert.equal(flushed.length, 1);
  });

  it('without deferMs a deferrable item leaves at the end of its turn', () => {
    const plain = new Batcher<string>((items) => flushed.push(items));
    plain.push('drain', true);
    mock.timers.tick(0);
    assert.deepEqual(flushed, [['drain']]);
  });
});

describe('onlyDrains', () => {
  const delta = (d: Partial<RoutingDeltaMsg>): RoutingDeltaMsg => ({
    version: 7, upsertFunctions: [], deleteFunctions: [], addEndpoints: [], removeEndpoints: [], drainEndpoints: [],
    failures: [], upsertTokens: [], revokeTokens: [], ...d,
  });
  it('a delta that only drains may wait; one that also does anything else, or drains nothing, may not', () => {
    assert.equal(onlyDrains({ case: 'delta', value: delta({ drainEndpoints: ['sb-1'] }) }), true);
    assert.equal(onlyDrains({ case: 'delta', value: delta({}) }), false);
    assert.equal(onlyDrains({ case: 'delta', value: delta({ drainEndpoints: ['sb-1'], removeEndpoints: ['sb-2'] }) }), false);
    assert.equal(onlyDrains({ case: 'delta', value: delta({ drainEndpoints: ['sb-1'], revokeTokens: ['t'] }) }), false);
    assert.equal(onlyDrains({ case: 'delta', value: delta({ drainEndpoints: ['sb-1'], removePeers: ['dp-2'] }) }), false);
    assert.equal(onlyDrains({ case: 'snapshot', value: { version: 1, functions: [], endpoints: [], tokens: [] } as never }), false);
  });
});

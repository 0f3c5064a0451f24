/**
 * Goal: an idle history read back from a store is trusted only if it is one: counts that are
 * non-negative integers in range, one bin per minute of a window the API accepts, bins that
 * sum to the samples.
 * Method: parseIdleHistory on a valid body and on one broken field at a time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIdleHistories, parseIdleHistory } from './idle-history.js';

const valid = { function: 'f', functionUid: 'u1', windowS: 180, bins: [0, 2, 1], samples: 3, outOfRange: 4 };

describe('parseIdleHistory', () => {
  it('returns a valid record as written', () => {
    assert.deepEqual(parseIdleHistory(JSON.stringify(valid)), valid);
  });

  const broken: [string, unknown][] = [
    ['not JSON', '{'],
    ['not an object', 7],
    ['no function name', { ...valid, function: '' }],
    ['a uid that is not a string', { ...valid, functionUid: 1 }],
    ['a zero window', { ...valid, windowS: 0 }],
    ['a window over the API bound', { ...valid, windowS: 14_401 }],
    ['bins not an array', { ...valid, bins: 'x' }],
    ['no bins', { ...valid, bins: [], samples: 0 }],
    ['a bin count that is not the window in minutes', { ...valid, bins: [0, 2, 1, 0] }],
    ['a negative bin', { ...valid, bins: [-1, 3, 1] }],
    ['a fractional bin', { ...valid, bins: [0.5, 1.5, 1] }],
    ['a bin over the policy bound', { ...valid, bins: [0x10000, 0, 0], samples: 0x10000 }],
    ['samples that are not the bins summed', { ...valid, samples: 4 }],
    ['a negative out-of-range count', { ...valid, outOfRange: -1 }],
  ];
  for (const [what, body] of broken) {
    it(`drops one with ${what}`, () => {
      assert.equal(parseIdleHistory(typeof body === 'string' ? body : JSON.stringify(body)), null);
    });
  }

  it('parseIdleHistories keeps the valid ones in order and counts the others', () => {
    const b = { ...valid, function: 'g' };
    assert.deepEqual(parseIdleHistories([JSON.stringify(valid), 'null', JSON.stringify(b), '{']), { idleHistories: [valid, b], idleHistoriesDropped: 2 });
  });
});

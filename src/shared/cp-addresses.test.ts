/**
 * Goal: followers of the leader pick the right control plane: list order on failures, a standby's
 * redirect at once, bounded redirects in a row.
 * Method: drive CpAddresses directly (pure).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CpAddresses } from './cp-addresses.js';

describe('CpAddresses', () => {
  it('walks the list on failures and wraps around', () => {
    const a = new CpAddresses('a:1, b:2,c:3');
    assert.equal(a.current(), 'a:1');
    assert.equal(a.ended(), false);
    assert.equal(a.current(), 'b:2');
    a.ended();
    a.ended();
    assert.equal(a.current(), 'a:1');
  });

  it('dials a redirect next at once, and falls back to the list when the leader fails', () => {
    const a = new CpAddresses('a:1,b:2');
    a.redirected('c:3');
    assert.equal(a.ended(), true);
    assert.equal(a.current(), 'c:3');
    assert.equal(a.single, false);
    assert.equal(a.ended(), false);
    assert.equal(a.current(), 'a:1');
  });

  it('keeps following redirects past the limit, but after a back-off, until a stream is served', () => {
    const a = new CpAddresses('a:1');
    const atOnce: boolean[] = [];
    for (let i = 0; i < 4; i += 1) {
      a.redirected('b:2');
      atOnce.push(a.ended());
      assert.equal(a.current(), 'b:2');
    }
    assert.deepEqual(atOnce, [true, true, true, false]);
    a.served();
    a.redirected('b:2');
    assert.equal(a.ended(), true);
  });
});

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
    a.failed();
    assert.equal(a.current(), 'b:2');
    a.failed();
    a.failed();
    assert.equal(a.current(), 'a:1');
  });

  it('dials a redirect next, and falls back to the list when the leader fails', () => {
    const a = new CpAddresses('a:1,b:2');
    assert.equal(a.redirected('c:3'), true);
    assert.equal(a.current(), 'c:3');
    assert.equal(a.single, false);
    a.failed();
    assert.equal(a.current(), 'a:1');
  });

  it('backs off after too many redirects in a row, until a stream is served', () => {
    const a = new CpAddresses('a:1');
    assert.deepEqual([a.redirected('b:2'), a.redirected('a:1'), a.redirected('b:2'), a.redirected('a:1')], [true, true, true, false]);
    a.served();
    assert.equal(a.redirected('b:2'), true);
  });
});

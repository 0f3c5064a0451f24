/**
 * Goal: an async invocation id names the DP that accepted it (per-DP store), stays URL-safe and
 * time-sortable, and the forwarding decision only ever picks a peer the CP announced: a forged
 * or unknown owner is answered locally (404), a forwarded request is never forwarded again, and
 * a shared store never forwards.
 * Method: the pure functions of owner.ts and asyncInvocationId; no I/O.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ownerTagChars, ownerTagOf, ownerTagOfId, peersByTag, routeById, type OwnerContext } from './owner.js';
import { asyncInvocationId } from './types.js';

const random = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
const peers = new Map([
  ['dp-a', '127.0.0.1:8080'], ['dp-b', '127.0.0.1:9090'], ['dp-c', ''], ['dp-d', 'evil.example/x?:80'], ['dp-e', 'u@h:1'], ['dp-f', 'h'],
]);

describe('async invocation owner tags', () => {
  it('a tag is fixed-width base 36 and differs between DP ids', () => {
    const tags = ['dp-127.0.0.1-8080', 'dp-127.0.0.1-8081', 'dp-a', 'x'.repeat(256), ''].map(ownerTagOf);
    for (const t of tags) assert.match(t, new RegExp(`^[0-9a-z]{${ownerTagChars}}$`));
    assert.equal(new Set(tags).size, tags.length);
    assert.equal(ownerTagOf('dp-a'), ownerTagOf('dp-a'));
  });

  it('an id carries its tag, is URL-safe and still sorts by accept time', () => {
    const tag = ownerTagOf('dp-a');
    const id = asyncInvocationId(1_700_000_000_000, random, tag);
    assert.equal(ownerTagOfId(id), tag);
    assert.equal(encodeURIComponent(id), id);
    assert.ok(asyncInvocationId(1_700_000_000_001, random, ownerTagOf('dp-b')) > id);
  });

  it('ids without a tag (shared store) and garbage carry no owner', () => {
    assert.equal(ownerTagOfId(asyncInvocationId(1_700_000_000_000, random)), null);
    for (const bad of ['', 'abc', '../../etc', '0000000aa-1234567-zz', '0000000aa-12345678-ab', '0000000aa-1234567-ab/retry']) {
      assert.equal(ownerTagOfId(bad), null, bad);
    }
  });

  it('peers by tag leave out this DP and peers whose address is not host:port', () => {
    const byTag = peersByTag(peers, 'dp-a');
    assert.deepEqual([...byTag.values()], [{ id: 'dp-b', address: '127.0.0.1:9090' }]);
    assert.equal(peersByTag(new Map([['v6', '[::1]:8080'], ['name', 'dp-2.local:443']]), 'x').size, 2);
    assert.equal(byTag.get(ownerTagOf('dp-b'))?.id, 'dp-b');
  });
});

describe('forwarding decision', () => {
  const ctx: OwnerContext = { selfTag: ownerTagOf('dp-a'), forwarded: false, peers: peersByTag(peers, 'dp-a') };
  const idOf = (dp: string): string => asyncInvocationId(1_700_000_000_000, random, ownerTagOf(dp));

  it("another known DP's id is forwarded to the address the CP gave", () => {
    assert.deepEqual(routeById(idOf('dp-b'), ctx), { kind: 'forward', peer: { id: 'dp-b', address: '127.0.0.1:9090' } });
  });

  it('own ids, untagged ids and ids of unknown DPs are answered here', () => {
    assert.deepEqual(routeById(idOf('dp-a'), ctx), { kind: 'local' });
    assert.deepEqual(routeById(asyncInvocationId(1, random), ctx), { kind: 'local' });
    assert.deepEqual(routeById(idOf('dp-evil'), ctx), { kind: 'local' });
    assert.deepEqual(routeById('not-an-id', ctx), { kind: 'local' });
  });

  it('a forwarded request is never forwarded again (one hop)', () => {
    assert.deepEqual(routeById(idOf('dp-b'), { ...ctx, forwarded: true }), { kind: 'local' });
  });

  it('with a shared store nothing is forwarded', () => {
    assert.deepEqual(routeById(idOf('dp-b'), { ...ctx, selfTag: null }), { kind: 'local' });
  });
});

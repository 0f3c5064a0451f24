/**
 * Goal: the compatibility results port reads another DP's ids through the owner: local ids from
 * the local service, a peer's from the peer (404 stays unknown, a malformed or refused answer is
 * owner_unavailable, never a crash), and the peer's public view turns back into the status,
 * result and dead reason the port answers with.
 * Method: withPeerReads over a fake service and fake peers; invocationFromView on hand-built views.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AsyncServicePort } from './compat.js';
import { ownerTagOf } from './owner.js';
import { OwnerUnavailable, type AsyncPeers } from './peer-forward.js';
import { invocationFromView, withPeerReads } from './peer-reads.js';
import { invocationView } from './service.js';
import { asyncInvocationId, type AsyncInvocation } from './types.js';

const random = Uint8Array.from([9, 9, 9, 9]);
const localId = asyncInvocationId(1_700_000_000_000, random, ownerTagOf('me'));
const peerId = asyncInvocationId(1_700_000_000_000, random, ownerTagOf('peer'));
const inv = (id: string, over: Partial<AsyncInvocation> = {}): AsyncInvocation => ({
  id, functionKey: 'fa', status: 'succeeded', attempts: [], nextAttemptAtMs: 0, acceptedAtMs: 1_700_000_000_000,
  request: { method: 'POST', path: '/', query: '', headers: {}, body: Buffer.from('in') },
  result: { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: Buffer.from([0xff, 0x00, 0x41]) }, ...over,
});

function fakes(answer: { statusCode: number; json: unknown }) {
  const service: AsyncServicePort = {
    submit: async () => ({ kind: 'accepted', id: 'x' }),
    get: async (id) => (id === localId ? inv(localId) : undefined),
  };
  const peers: AsyncPeers = {
    route: (id) => (id === peerId ? { kind: 'forward', peer: { id: 'peer', address: 'h:1' } } : { kind: 'local' }),
    forward: async () => undefined,
    readAsPeer: async () => answer,
    isPeerRead: () => false,
    close: async () => undefined,
  };
  return withPeerReads(service, peers);
}

describe('compatibility reads through the owner DP', () => {
  it("answers local ids locally and a peer's ids from the peer's view", async () => {
    const reads = fakes({ statusCode: 200, json: JSON.parse(JSON.stringify(invocationView(inv(peerId)))) });
    assert.equal((await reads.get(localId))?.id, localId);
    const got = await reads.get(peerId);
    assert.equal(got?.status, 'succeeded');
    assert.deepEqual(got?.result?.body, Buffer.from([0xff, 0x00, 0x41]), 'a binary body survives (bodyBase64)');
  });

  it('a 404 from the owner is unknown; a refusal or a malformed view is owner_unavailable', async () => {
    assert.equal(await fakes({ statusCode: 404, json: null }).get(peerId), undefined);
    await assert.rejects(fakes({ statusCode: 401, json: { error: {} } }).get(peerId), OwnerUnavailable);
    await assert.rejects(fakes({ statusCode: 200, json: { id: peerId, function: 'fa', status: 'exploded' } }).get(peerId), OwnerUnavailable);
  });

  it('invocationFromView keeps status, result and dead reason, and refuses malformed views', () => {
    const dead = invocationFromView(JSON.parse(JSON.stringify(invocationView(inv(peerId, { status: 'dead', deadReason: 'attempts', result: undefined })))));
    assert.deepEqual([dead?.status, dead?.deadReason, dead?.result], ['dead', 'attempts', undefined]);
    const text = invocationFromView(JSON.parse(JSON.stringify(invocationView(inv(peerId, { result: { statusCode: 201, headers: { a: 'b' }, body: Buffer.from('ok') } })))));
    assert.deepEqual([text?.result?.statusCode, text?.result?.headers, text?.result?.body.toString()], [201, { a: 'b' }, 'ok']);
    for (const bad of [null, [], 'x', { id: 1 }, { id: 'a', function: 'f', status: 'succeeded', result: { statusCode: 1.5, headers: {}, body: '' } },
      { id: 'a', function: 'f', status: 'succeeded', result: { statusCode: 200, headers: { a: 1 }, body: '' } },
      { id: 'a', function: 'f', status: 'succeeded', result: { statusCode: 200, headers: {} } }]) {
      assert.equal(invocationFromView(bad), null, JSON.stringify(bad));
    }
  });
});

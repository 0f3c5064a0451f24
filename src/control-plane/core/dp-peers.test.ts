/**
 * Goal: the CP tells every DP the other DPs (id -> proxy address) in the routing stream, for
 * forwarding reads of per-DP async invocations (issue #11 part 4): a hello adds (or moves) a
 * peer in the next delta, a repeated hello changes nothing, a DP forgotten after the grace is
 * removed, restored DPs are peers from the start, and every snapshot carries the whole set.
 * Method: feed events to the pure core at chosen virtual times and inspect the deltas and
 * snapshots it emits.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { CpEffect } from './types.js';
import { config, core, deltas } from './testkit.js';

const hello = (id: string, proxyAddress: string) => ({ kind: 'dp_connected' as const, hello: { dataPlaneId: id, proxyAddress, internalAddress: `i-${id}` } });
const snapshots = (eff: CpEffect[]) => eff.flatMap((e) => (e.kind === 'dp_send' && e.update.case === 'snapshot' ? [e.update.value] : []));

describe('data plane peers in the CP routing table', () => {
  it('a hello puts the DP in the next delta and every snapshot; a repeated hello changes nothing', () => {
    const cp = core();
    const eff = cp.handle(hello('dp2', 'p:2'), 10);
    assert.deepEqual(deltas(eff).flatMap((d) => d.upsertPeers ?? []), [{ dataPlaneId: 'dp2', proxyAddress: 'p:2' }]);
    assert.deepEqual(snapshots(eff)[0]!.peers, [{ dataPlaneId: 'dp1', proxyAddress: 'p:1' }, { dataPlaneId: 'dp2', proxyAddress: 'p:2' }]);
    const again = cp.handle(hello('dp2', 'p:2'), 20);
    assert.deepEqual(deltas(again), [], 'same address: no delta');
    const moved = cp.handle(hello('dp2', 'p:22'), 30);
    assert.deepEqual(deltas(moved).flatMap((d) => d.upsertPeers ?? []), [{ dataPlaneId: 'dp2', proxyAddress: 'p:22' }]);
  });

  it('a DP gone past the forget grace is removed; one merely disconnected stays a peer', () => {
    const cp = core();
    cp.handle(hello('dp2', 'p:2'), 0);
    const gone = cp.handle({ kind: 'dp_disconnected', dataPlaneId: 'dp2' }, 100);
    assert.deepEqual(deltas(gone).flatMap((d) => d.removePeers ?? []), [], 'its ids are unreachable (503), not unknown');
    const forgotten = cp.tick(100 + config.peerForgetAfterMs);
    assert.deepEqual(deltas(forgotten).flatMap((d) => d.removePeers ?? []), ['dp2']);
    assert.deepEqual(cp.routing.snapshot([]).peers, [{ dataPlaneId: 'dp1', proxyAddress: 'p:1' }]);
  });

  it('DPs restored from the store are peers before they say hello', () => {
    const cp = core();
    cp.loadPeers([], [{ id: 'dp9', proxyAddress: 'p:9', internalAddress: 'i:9' }], 0);
    assert.ok(cp.routing.snapshot([]).peers!.some((p) => p.dataPlaneId === 'dp9' && p.proxyAddress === 'p:9'));
  });
});

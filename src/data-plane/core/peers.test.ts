/**
 * Goal: the DP keeps the CP's data plane peers (id -> proxy address) exactly as the routing
 * stream says: a snapshot replaces the set (absent = none), a delta removes then upserts, and
 * every change bumps peersVersion so the shell's tag index is rebuilt.
 * Method: drive the core with routing messages in virtual time.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RoutingUpdateMsg } from '../../api/cluster.js';
import { silentLogger } from '../../shared/logger.js';
import { seededRng } from '../../shared/rng.js';
import { DataPlaneCore } from './data-plane.js';

const empty = { upsertFunctions: [], deleteFunctions: [], addEndpoints: [], removeEndpoints: [], drainEndpoints: [], failures: [], upsertTokens: [], revokeTokens: [] };
const delta = (version: number, d: object): RoutingUpdateMsg => ({ case: 'delta', value: { ...empty, version, ...d } });
const snapshot = (version: number, peers?: { dataPlaneId: string; proxyAddress: string }[]): RoutingUpdateMsg =>
  ({ case: 'snapshot', value: { version, functions: [], endpoints: [], drainEndpoints: [], tokens: [], ...(peers ? { peers } : {}) } });

describe('DataPlaneCore peers', () => {
  it('takes the set from a snapshot, changes it by deltas, and replaces it on the next snapshot', () => {
    const core = new DataPlaneCore({ queueDepthMax: 10, queueWaitMsMax: 1000, loadBalancing: 'least-loaded' }, seededRng(1), silentLogger);
    core.applyRouting(snapshot(1, [{ dataPlaneId: 'a', proxyAddress: 'h:1' }, { dataPlaneId: 'b', proxyAddress: 'h:2' }]), 0);
    assert.deepEqual([...core.peers], [['a', 'h:1'], ['b', 'h:2']]);
    const v1 = core.peersVersion;
    assert.ok(core.applyRouting(delta(2, { removePeers: ['a'], upsertPeers: [{ dataPlaneId: 'c', proxyAddress: 'h:3' }, { dataPlaneId: 'b', proxyAddress: 'h:22' }] }), 1).ok);
    assert.deepEqual([...core.peers], [['b', 'h:22'], ['c', 'h:3']]);
    assert.ok(core.peersVersion > v1);
    core.applyRouting(snapshot(5), 2);
    assert.deepEqual([...core.peers], [], 'a snapshot without peers (an older CP) leaves none');
  });
});

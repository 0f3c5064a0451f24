/**
 * Goal: pin the data plane's side of leader fencing. A routing batch of a term below the highest
 * seen is refused; a newer leader's routing versions start afresh, so its snapshot replaces the
 * table even with a lower version and its deltas never apply onto the old leader's table.
 * Method: drive the pure core with hand-built plain routing messages in virtual time, asking
 * `admitTerm` per batch as the DP link and the simulator do.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { EndpointMsg, FunctionSpecMsg, RoutingDeltaMsg, RoutingUpdateMsg } from '../../api/cluster.js';
import { silentLogger } from '../../shared/logger.js';
import { seededRng } from '../../shared/rng.js';
import { DataPlaneCore } from './data-plane.js';

const fnSpec = (name: string): FunctionSpecMsg => ({
  name, uid: `${name}-1`, generation: 1, image: '', command: ['x'], port: 0, env: {}, egress: false, auth: 'none', concurrency: 1, timeoutMs: 1000, workingDir: '',
});
const ep = (id: string, fn: string): EndpointMsg => ({ sandboxId: id, function: fn, functionUid: `${fn}-1`, address: `h:${id}`, workerId: 'w' });
const snapshot = (version: number, functions: FunctionSpecMsg[], endpoints: EndpointMsg[]): RoutingUpdateMsg =>
  ({ case: 'snapshot', value: { version, functions, endpoints, drainEndpoints: [], tokens: [] } });
function delta(version: number, d: Partial<RoutingDeltaMsg>): RoutingUpdateMsg {
  const empty = { upsertFunctions: [], deleteFunctions: [], addEndpoints: [], removeEndpoints: [], drainEndpoints: [], failures: [], upsertTokens: [], revokeTokens: [] };
  return { case: 'delta', value: { version, ...empty, ...d } };
}

/** A DP that followed leader term 1 up to routing version 10: function f on sandbox s1. */
function followingTerm1(): DataPlaneCore {
  const c = new DataPlaneCore({ queueDepthMax: 3, queueWaitMsMax: 100, loadBalancing: 'least-loaded' }, seededRng(1), silentLogger);
  assert.equal(c.admitTerm(1), 'newer');
  c.applyRouting(snapshot(10, [fnSpec('f')], [ep('s1', 'f')]), 0);
  return c;
}

describe('data-plane fencing', () => {
  it('a batch of a lower term than the highest seen is stale; the same term is current', () => {
    const c = followingTerm1();
    assert.equal(c.admitTerm(3), 'newer');
    assert.equal(c.admitTerm(2), 'stale');
    assert.equal(c.admitTerm(1), 'stale');
    assert.equal(c.admitTerm(0), 'stale', 'no term is the lowest term');
    assert.equal(c.admitTerm(3), 'current');
    assert.equal(c.term, 3);
  });

  it("a new leader's snapshot replaces the table although its version is lower", () => {
    const c = followingTerm1();
    assert.equal(c.admitTerm(2), 'newer');
    assert.ok(c.applyRouting(snapshot(2, [fnSpec('g')], [ep('s2', 'g')]), 10).ok);
    assert.equal(c.version, 2);
    assert.deepEqual([...c.functions.keys()], ['g']);
    assert.deepEqual([...c.endpoints.keys()], ['s2']);
    // Its deltas follow its own versions from there.
    assert.ok(c.applyRouting(delta(3, { upsertFunctions: [fnSpec('h')] }), 20).ok);
    assert.equal(c.version, 3);
    assert.ok(c.functions.has('h'));
  });

  it("a new leader's delta before its snapshot neither applies onto the old table nor reports the old version", () => {
    const c = followingTerm1();
    assert.equal(c.admitTerm(2), 'newer');
    // Version 11 would look like the old leader's next delta; from the new leader it is not.
    const r = c.applyRouting(delta(11, { upsertFunctions: [fnSpec('x')], removeEndpoints: ['s1'] }), 10);
    assert.ok(r.ok, 'not a gap: the snapshot is on its way');
    assert.equal(c.functions.has('x'), false);
    assert.ok(c.endpoints.has('s1'), 'warm traffic keeps flowing on the old table');
    // The ack carries this: never the old leader's version 10, which would tell the new leader
    // this DP has applied its versions up to 10.
    assert.equal(c.version, 0);
    c.applyRouting(snapshot(11, [fnSpec('x')], []), 20);
    assert.deepEqual([...c.functions.keys()], ['x']);
  });
});

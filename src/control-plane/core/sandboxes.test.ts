/**
 * Goal: sandboxes belong to a function identity (name + uid) and a delete drains them, bounded by the function's timeout.
 * Method: the pure core in virtual time, driven with events; effects inspected.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { record, info, demand, creates, deletes, deltas, core } from './testkit.js';

describe('Sandbox lifecycle (control-plane core)', () => {
  it('deleting a function drains its sandboxes: deleted only after the DP reports them idle', () => {
    const cp = core();
    cp.handle({ kind: 'function_upserted', record: record('f', 'u1', { timeoutMs: 5000 }) }, 0);
    const [a] = creates(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', 1, 0) }, 10));
    cp.handle({ kind: 'sandbox_ready', workerId: 'w1', sandbox: info(a!.id, 'f', 'u1'), creationMs: 1 }, 50);
    const del = cp.handle({ kind: 'function_deleted', name: 'f' }, 100);
    assert.deepEqual(deltas(del).flatMap((d) => d.drainEndpoints), [a!.id]);
    assert.deepEqual(deletes(del), [], 'not deleted while a request may run on it');
    for (let t = 200; t < 5000; t += 100) assert.deepEqual(deletes(cp.tick(t)), [], `deleted early at ${t} ms`);
    assert.deepEqual(deletes(cp.handle({ kind: 'dp_drained', dataPlaneId: 'dp1', sandboxIds: [a!.id] }, 5000)), [a!.id]);
    cp.checkInvariants();
  });

  it('a sandbox it told a worker to delete is never adopted again, even if a late ready arrives first', () => {
    const cp = core();
    cp.handle({ kind: 'function_upserted', record: record('f', 'u1') }, 0);
    const [a] = creates(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', 1, 0) }, 10));
    // The function goes while the creation runs: the CP cancels it (a delete on its way).
    assert.deepEqual(deletes(cp.handle({ kind: 'function_deleted', name: 'f' }, 20)), [a!.id]);
    cp.handle({ kind: 'function_upserted', record: record('f', 'u1') }, 30); // same identity again
    // The worker finished creating before the delete reached it: its ready report comes first.
    const late = cp.handle({ kind: 'sandbox_ready', workerId: 'w1', sandbox: info(a!.id, 'f', 'u1'), creationMs: 1 }, 40);
    assert.deepEqual(deltas(late).flatMap((d) => d.addEndpoints), [], 'not routed');
    assert.deepEqual(deletes(late), [a!.id], 'the delete is repeated');
    assert.equal(cp.status('f')!.ready, 0);
    cp.checkInvariants();
  });

  it('a drain gives up after the function timeout (capped), not at once', () => {
    const cp = core();
    cp.handle({ kind: 'function_upserted', record: record('f', 'u1', { timeoutMs: 3000 }) }, 0);
    const [a] = creates(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', 1, 0) }, 10));
    cp.handle({ kind: 'sandbox_ready', workerId: 'w1', sandbox: info(a!.id, 'f', 'u1'), creationMs: 1 }, 50);
    cp.handle({ kind: 'function_deleted', name: 'f' }, 1000);
    assert.deepEqual(deletes(cp.tick(3900)), []);
    assert.deepEqual(deletes(cp.tick(4000)), [a!.id]);
  });

  it('a draining sandbox of a deleted function never touches its re-created namesake', () => {
    const cp = core();
    cp.handle({ kind: 'function_upserted', record: record('f', 'u1') }, 0);
    const [a] = creates(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', 1, 0) }, 10));
    cp.handle({ kind: 'sandbox_ready', workerId: 'w1', sandbox: info(a!.id, 'f', 'u1'), creationMs: 1 }, 50);
    cp.handle({ kind: 'function_deleted', name: 'f' }, 100);
    cp.handle({ kind: 'function_upserted', record: record('f', 'u2') }, 110);
    cp.handle({ kind: 'dp_drained', dataPlaneId: 'dp1', sandboxIds: [a!.id] }, 120);
    cp.handle({ kind: 'sandbox_deleted', workerId: 'w1', sandboxId: a!.id }, 130);
    cp.checkInvariants();
    assert.equal(cp.status('f')!.draining, 0);
    // And the old function's sandbox reported again (late ready) is not adopted into the new one:
    // it drains (a DP may have requests on it from before) and then goes.
    const eff = cp.handle({ kind: 'sandbox_ready', workerId: 'w1', sandbox: info('late', 'f', 'u1'), creationMs: 1 }, 140);
    assert.deepEqual(deletes(eff), []);
    assert.equal(cp.status('f')!.draining, 0, 'not counted under the new function');
    cp.checkInvariants();
    assert.deepEqual(deletes(cp.handle({ kind: 'dp_drained', dataPlaneId: 'dp1', sandboxIds: ['late'] }, 150)), ['late']);
    cp.handle({ kind: 'sandbox_deleted', workerId: 'w1', sandboxId: 'late' }, 160);
    cp.checkInvariants();
  });
});

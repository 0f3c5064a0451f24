/**
 * Goal: pin the data-plane core's queueing, slot, drain, routing-version and demand behaviour.
 * Method: drive the pure core with hand-built routing updates and waiters at chosen times.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { RoutingUpdateSchema, type RoutingUpdate } from '../../gen/dirigent/v1/cluster_pb.js';
import { silentLogger } from '../../shared/logger.js';
import { seededRng } from '../../shared/rng.js';
import { DataPlaneCore, type Waiter } from './data-plane.js';

const fnSpec = (name: string, concurrency = 1) => ({ name, concurrency, timeoutMs: 1000, command: ['x'] });
const ep = (id: string, fn = 'f') => ({ sandboxId: id, function: fn, address: `127.0.0.1:${id.length}`, workerId: 'w' });

function snapshot(version: number, fns: ReturnType<typeof fnSpec>[], eps: ReturnType<typeof ep>[]): RoutingUpdate {
  return create(RoutingUpdateSchema, { update: { case: 'snapshot', value: { version, functions: fns, endpoints: eps } } });
}

function delta(version: number, d: Record<string, unknown>): RoutingUpdate {
  return create(RoutingUpdateSchema, { update: { case: 'delta', value: { version, ...d } } });
}

function waiter(fn: string, arrivalMs: number): Waiter {
  return { fn, arrivalMs, state: 'queued', endpoint: null, cold: false, dispatchedAtMs: 0 };
}

function core(queueDepthMax = 3, queueWaitMsMax = 100): DataPlaneCore {
  return new DataPlaneCore({ queueDepthMax, queueWaitMsMax, loadBalancing: 'least-loaded' }, seededRng(1), silentLogger);
}

describe('DataPlaneCore', () => {
  it('queues without a sandbox, reports first demand at once, and dispatches cold when one appears', () => {
    const c = core();
    c.applyRouting(snapshot(1, [fnSpec('f')], []), 0);
    const w = waiter('f', 10);
    assert.deepEqual(c.admit('f', w, 10), { kind: 'queued' });
    assert.deepEqual([...c.firstDemand], ['f']);
    const report = c.firstDemandReport();
    assert.equal(report[0]!.queued, 1);
    assert.ok(c.applyRouting(delta(2, { addEndpoints: [ep('s1')] }), 50));
    assert.equal(c.dispatched.length, 1);
    assert.equal(w.state, 'dispatched');
    assert.equal(w.cold, true);
    assert.equal(w.dispatchedAtMs - w.arrivalMs, 40);
  });

  it('never puts more than `concurrency` requests on a sandbox; a release hands the slot to the queue head', () => {
    const c = core();
    c.applyRouting(snapshot(1, [fnSpec('f', 1)], [ep('s1')]), 0);
    const a = waiter('f', 1);
    const b = waiter('f', 2);
    assert.equal(c.admit('f', a, 1).kind, 'dispatched');
    assert.equal(a.cold, false);
    assert.equal(c.admit('f', b, 2).kind, 'queued');
    assert.equal(c.endpoints.get('s1')!.inflight, 1);
    c.release(a, 5);
    assert.equal(b.state, 'dispatched');
    assert.equal(c.endpoints.get('s1')!.inflight, 1);
    assert.equal(b.cold, false, 'a freed warm slot is not a cold start');
  });

  it('bounds the queue (queue_full) and expires waiters past the wait limit with 504', () => {
    const c = core(2, 100);
    c.applyRouting(snapshot(1, [fnSpec('f')], []), 0);
    c.admit('f', waiter('f', 0), 0);
    c.admit('f', waiter('f', 60), 60);
    assert.deepEqual(c.admit('f', waiter('f', 61), 61), { kind: 'queue_full', depth: 2 });
    c.expire(99);
    assert.equal(c.failed.length, 0);
    c.expire(100);
    assert.equal(c.failed.length, 1);
    assert.equal(c.failed[0]!.status, 504);
    assert.equal(c.functions.get('f')!.queued, 1);
  });

  it('drains: no new requests, reports drained only when the last in-flight one ends', () => {
    const c = core();
    c.applyRouting(snapshot(1, [fnSpec('f', 0)], [ep('s1')]), 0);
    const a = waiter('f', 0);
    c.admit('f', a, 0);
    c.applyRouting(delta(2, { drainEndpoints: ['s1'] }), 1);
    assert.deepEqual(c.drained, []);
    assert.equal(c.admit('f', waiter('f', 2), 2).kind, 'queued');
    c.release(a, 3);
    assert.deepEqual(c.drained, ['s1']);
  });

  it('acknowledges a drain of a sandbox it never routed to at once', () => {
    const c = core();
    c.applyRouting(snapshot(1, [fnSpec('f')], []), 0);
    c.applyRouting(delta(2, { drainEndpoints: ['ghost'] }), 1);
    assert.deepEqual(c.drained, ['ghost']);
  });

  it('applies deltas in order, ignores old ones, and asks for a resync on a gap', () => {
    const c = core();
    c.applyRouting(snapshot(5, [fnSpec('f')], []), 0);
    assert.equal(c.applyRouting(delta(5, { addEndpoints: [ep('old')] }), 1), true);
    assert.equal(c.endpoints.has('old'), false, 'version 5 is already in the snapshot');
    assert.equal(c.applyRouting(delta(7, { addEndpoints: [ep('s7')] }), 1), false);
    assert.equal(c.endpoints.has('s7'), false);
    assert.equal(c.applyRouting(delta(6, { addEndpoints: [ep('s6')] }), 1), true);
    assert.equal(c.version, 6);
  });

  it('fails queued requests fast when the CP reports creation failures, and 404s them on delete', () => {
    const c = core();
    c.applyRouting(snapshot(1, [fnSpec('f'), fnSpec('g')], []), 0);
    c.admit('f', waiter('f', 0), 0);
    c.admit('g', waiter('g', 0), 0);
    c.applyRouting(delta(2, { failures: [{ function: 'f', reason: 'exit code 1' }], deleteFunctions: [{ name: 'g', uid: '' }] }), 1);
    const byFn = new Map(c.failed.map((x) => [x.waiter.fn, x.status]));
    assert.deepEqual([byFn.get('f'), byFn.get('g')], [502, 404]);
  });

  it('reports time-weighted average concurrency, then a final zero, then nothing', () => {
    const c = core(10);
    c.applyRouting(snapshot(1, [fnSpec('f', 0)], [ep('s1')]), 0);
    const a = waiter('f', 0);
    const b = waiter('f', 0);
    c.admit('f', a, 0);
    c.admit('f', b, 0);
    c.release(b, 500); // 2 in flight for 500 ms, then 1 for 500 ms
    const r1 = c.takeDemand(1000);
    assert.equal(r1.length, 1);
    assert.equal(r1[0]!.concurrencyAvg, 1.5);
    c.release(a, 1000);
    assert.equal(c.takeDemand(2000)[0]!.concurrencyAvg, 0);
    assert.deepEqual(c.takeDemand(3000), []);
  });

  it('reports each function one period after its previous report, spreading the work', () => {
    const c = core(10);
    c.applyRouting(snapshot(1, [fnSpec('a', 0), fnSpec('b', 0)], [ep('s1', 'a'), ep('s2', 'b')]), 0);
    c.admit('a', waiter('a', 0), 0);
    c.admit('b', waiter('b', 400), 400);
    assert.deepEqual(c.takeDemand(1000, 1000).map((d) => d.function), ['a']);
    assert.deepEqual(c.takeDemand(1100, 1000).map((d) => d.function), []);
    assert.deepEqual(c.takeDemand(1400, 1000).map((d) => d.function), ['b']);
    assert.deepEqual(c.takeDemand(2000, 1000).map((d) => d.function), ['a']);
  });
});

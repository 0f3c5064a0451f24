/**
 * Goal: pin the data-plane core's queueing, slot, drain, identity, routing-version and demand
 * behaviour. Method: drive the pure core with hand-built plain routing messages and waiters at
 * chosen virtual times, and read the effects it returns.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { EndpointMsg, FunctionSpecMsg, RoutingDeltaMsg, RoutingUpdateMsg } from '../../api/cluster.js';
import { silentLogger } from '../../shared/logger.js';
import { seededRng } from '../../shared/rng.js';
import { DataPlaneCore, newWaiter, type DpEffect, type Waiter } from './data-plane.js';

const fnSpec = (name: string, concurrency = 1, uid = `${name}-1`): FunctionSpecMsg => ({
  name, uid, generation: 1, image: '', command: ['x'], port: 0, env: {}, egress: false, auth: 'none', concurrency, timeoutMs: 1000, workingDir: '',
});
const ep = (id: string, fn = 'f', uid = `${fn}-1`): EndpointMsg => ({
  sandboxId: id, function: fn, functionUid: uid, address: `127.0.0.1:${id.length}`, workerId: 'w',
});

function snapshot(version: number, functions: FunctionSpecMsg[], endpoints: EndpointMsg[], drainEndpoints: string[] = []): RoutingUpdateMsg {
  return { case: 'snapshot', value: { version, functions, endpoints, drainEndpoints, tokens: [] } };
}

function delta(version: number, d: Partial<RoutingDeltaMsg>): RoutingUpdateMsg {
  const empty = { upsertFunctions: [], deleteFunctions: [], addEndpoints: [], removeEndpoints: [], drainEndpoints: [], failures: [], upsertTokens: [], revokeTokens: [] };
  return { case: 'delta', value: { version, ...empty, ...d } };
}

function core(queueDepthMax = 3, queueWaitMsMax = 100): DataPlaneCore {
  return new DataPlaneCore({ queueDepthMax, queueWaitMsMax, loadBalancing: 'least-loaded' }, seededRng(1), silentLogger);
}

/** Effect kinds, without `timed_work` (its own test below says when it comes). */
const kinds = (fx: DpEffect[]): string[] => fx.flatMap((e) => (e.kind === 'timed_work' ? [] : [e.kind]));
const timedWork = (fx: DpEffect[]): number => fx.filter((e) => e.kind === 'timed_work').length;
const drained = (fx: DpEffect[]): string[] => fx.flatMap((e) => (e.kind === 'drained' ? [e.sandboxId] : []));
const fails = (fx: DpEffect[]): [Waiter, number, string][] => fx.flatMap((e) => (e.kind === 'fail' ? [[e.waiter, e.status, e.code] as [Waiter, number, string]] : []));

function admit(c: DataPlaneCore, fn: string, atMs: number): { w: Waiter; kind: string; effects: DpEffect[] } {
  const w = newWaiter(fn, atMs);
  const r = c.admit(fn, w, atMs);
  return { w, kind: r.kind, effects: r.effects };
}

describe('DataPlaneCore', () => {
  it('queues without a sandbox, asks for a first-demand report, and dispatches cold when one appears', () => {
    const c = core();
    c.applyRouting(snapshot(1, [fnSpec('f')], []), 0);
    const a = admit(c, 'f', 10);
    assert.equal(a.kind, 'queued');
    assert.deepEqual(kinds(a.effects), ['first_demand']);
    assert.equal(c.firstDemandReport()[0]!.queued, 1);
    const r = c.applyRouting(delta(2, { addEndpoints: [ep('s1')] }), 50);
    assert.ok(r.ok);
    assert.deepEqual(kinds(r.effects), ['dispatch']);
    assert.equal(a.w.state, 'dispatched');
    assert.equal(a.w.cold, true);
    assert.equal(a.w.dispatchedAtMs - a.w.arrivalMs, 40);
  });

  it('a queue behind busy sandboxes is reported at once (the CP adds sandboxes), at most once per urgentReportMsMin', () => {
    const c = new DataPlaneCore({ queueDepthMax: 10, queueWaitMsMax: 10_000, loadBalancing: 'least-loaded', urgentReportMsMin: 100 }, seededRng(1), silentLogger);
    c.applyRouting(snapshot(1, [fnSpec('f', 1)], [ep('s1')]), 0);
    assert.deepEqual(kinds(admit(c, 'f', 1).effects), ['dispatch']);
    const queued = admit(c, 'f', 2);
    assert.equal(queued.kind, 'queued');
    assert.deepEqual(kinds(queued.effects), ['first_demand']);
    const report = c.firstDemandReport();
    assert.deepEqual(report.map((d) => [d.function, d.inflight, d.queued]), [['f', 1, 1]]);
    // Within 100 ms more arrivals wait for the periodic report; after it, the next one is urgent.
    assert.deepEqual(kinds(admit(c, 'f', 50).effects), []);
    assert.deepEqual(c.firstDemandReport(), []);
    assert.deepEqual(kinds(admit(c, 'f', 102).effects), ['first_demand']);
    assert.deepEqual(c.firstDemandReport().map((d) => d.queued), [3]);
  });

  it('says when its periodic calls have work again: once per start of demand or of a queue', () => {
    const c = core(3, 100);
    c.applyRouting(snapshot(1, [fnSpec('f'), fnSpec('g')], [ep('s1')]), 0);
    assert.equal(c.hasTimedWork, false, 'a fresh core: nothing to report or expire');
    const first = admit(c, 'f', 10);
    assert.equal(first.kind, 'dispatched');
    assert.equal(timedWork(first.effects), 1, 'demand begins');
    assert.equal(c.hasTimedWork, true);
    const queued = admit(c, 'f', 11);
    assert.equal(queued.kind, 'queued');
    assert.equal(timedWork(queued.effects), 0, 'already awake');
    assert.equal(timedWork(admit(c, 'g', 12).effects), 0, 'another function while awake');
    // Demand ends: one more report at zero for each, then nothing.
    c.release(first.w, 20);
    const g = c.expire(10_000);
    assert.equal(fails(g).length, 1, 'g has no sandbox: its request expires');
    c.release(queued.w, 30);
    assert.equal(c.hasTimedWork, true, 'zero reports still owed');
    c.takeDemand(1_000);
    assert.equal(c.hasTimedWork, true, 'reported at zero once; dropped at the next report');
    c.takeDemand(2_000);
    assert.equal(c.hasTimedWork, false);
    // Asleep again: the next queued request wakes the timers (here queued, since g has no sandbox).
    const again = admit(c, 'g', 3_000);
    assert.equal(again.kind, 'queued');
    assert.equal(timedWork(again.effects), 1);
    assert.equal(c.expire(3_000 + 100).length, 1);
    c.takeDemand(4_000);
    c.takeDemand(5_000);
    assert.equal(c.hasTimedWork, false);
  });

  it('never puts more than `concurrency` requests on a sandbox; a release hands the slot to the queue head', () => {
    const c = core();
    c.applyRouting(snapshot(1, [fnSpec('f', 1)], [ep('s1')]), 0);
    const a = admit(c, 'f', 1);
    assert.equal(a.kind, 'dispatched');
    assert.deepEqual(kinds(a.effects), ['dispatch']);
    assert.equal(a.w.cold, false);
    const b = admit(c, 'f', 2);
    assert.equal(b.kind, 'queued');
    assert.equal(c.endpoints.get('s1')!.inflight, 1);
    assert.deepEqual(kinds(c.release(a.w, 5)), ['dispatch']);
    assert.equal(b.w.state, 'dispatched');
    assert.equal(c.endpoints.get('s1')!.inflight, 1);
    assert.equal(b.w.cold, false, 'a freed warm slot is not a cold start');
    assert.deepEqual(c.release(a.w, 6), [], 'a second release is a no-op');
  });

  it('bounds the queue (queue_full) and expires waiters past the wait limit with 504', () => {
    const c = core(2, 100);
    c.applyRouting(snapshot(1, [fnSpec('f')], []), 0);
    admit(c, 'f', 0);
    admit(c, 'f', 60);
    const full = c.admit('f', newWaiter('f', 61), 61);
    assert.equal(full.kind, 'queue_full');
    assert.deepEqual(c.expire(99), []);
    const expired = fails(c.expire(100));
    assert.deepEqual(expired.map(([, s, code]) => [s, code]), [[504, 'queue_timeout']]);
    assert.equal(c.functions.get('f')!.queued, 1);
  });

  it('a cancelled queued request leaves the queue at once, so the depth limit counts only live waiters', () => {
    const c = core(2, 100);
    c.applyRouting(snapshot(1, [fnSpec('f')], []), 0);
    for (let i = 0; i < 1000; i += 1) {
      const { w } = admit(c, 'f', i);
      c.cancel(w, i);
    }
    const fn = c.functions.get('f')!;
    assert.equal(fn.queue.length, 0);
    assert.equal(fn.queued, 0);
    assert.equal(admit(c, 'f', 1000).kind, 'queued');
    assert.deepEqual(c.expire(5000).length, 1, 'cancelled waiters are not expired again');
  });

  it('drains: no new requests, reports drained only when the last in-flight one ends', () => {
    const c = core();
    c.applyRouting(snapshot(1, [fnSpec('f', 0)], [ep('s1')]), 0);
    const a = admit(c, 'f', 0);
    assert.deepEqual(drained(c.applyRouting(delta(2, { drainEndpoints: ['s1'] }), 1).effects), []);
    assert.equal(admit(c, 'f', 2).kind, 'queued');
    const fx = c.release(a.w, 3);
    assert.deepEqual(drained(fx), ['s1']);
    assert.ok(kinds(fx).includes('close_pool'));
  });

  it('acknowledges a drain of a sandbox it never routed to at once', () => {
    const c = core();
    c.applyRouting(snapshot(1, [fnSpec('f')], []), 0);
    assert.deepEqual(drained(c.applyRouting(delta(2, { drainEndpoints: ['ghost'] }), 1).effects), ['ghost']);
  });

  it('a sandbox removed while busy (worker stream lost) and then drained is acknowledged only when its last request ends', () => {
    const c = core();
    c.applyRouting(snapshot(1, [fnSpec('f')], [ep('s1')]), 0);
    const a = admit(c, 'f', 10);
    assert.equal(a.kind, 'dispatched');
    c.applyRouting(delta(2, { removeEndpoints: ['s1'] }), 20); // the CP lost the worker's stream
    const r = c.applyRouting(delta(3, { drainEndpoints: ['s1'] }), 30); // it came back; the CP drains the leftover
    assert.deepEqual(drained(r.effects), [], 'a request still runs on it');
    assert.deepEqual(drained(c.release(a.w, 40)), ['s1']);
  });

  it('a sandbox removed while busy and routed again keeps counting the request on it', () => {
    const c = core();
    c.applyRouting(snapshot(1, [fnSpec('f')], [ep('s1')]), 0);
    const a = admit(c, 'f', 10);
    c.applyRouting(delta(2, { removeEndpoints: ['s1'] }), 20);
    c.applyRouting(delta(3, { addEndpoints: [ep('s1')] }), 30); // adopted again
    assert.equal(admit(c, 'f', 40).kind, 'queued', 'its one slot is still taken');
    assert.deepEqual(kinds(c.release(a.w, 50)), ['dispatch']);
  });

  it('a snapshot names the drains the CP still waits for: busy ones are acknowledged when idle, unknown ones at once', () => {
    const c = core();
    c.applyRouting(snapshot(1, [fnSpec('f')], [ep('s1')]), 0);
    const a = admit(c, 'f', 10);
    const r = c.applyRouting(snapshot(5, [fnSpec('f')], [], ['s1', 'never-seen']), 20); // after a reconnect
    assert.deepEqual(drained(r.effects), ['never-seen']);
    assert.deepEqual(drained(c.release(a.w, 30)), ['s1']);
  });

  it('before its first routing snapshot it does not know which functions exist: not_ready, not not_found', () => {
    const c = core();
    assert.equal(admit(c, 'f', 0).kind, 'not_ready');
    c.applyRouting(snapshot(1, [fnSpec('f')], [ep('s1')]), 1);
    assert.equal(admit(c, 'g', 2).kind, 'not_found');
    assert.equal(admit(c, 'f', 2).kind, 'dispatched');
  });

  it('a delete drains: queued requests get 404, the running one finishes, drained comes after it', () => {
    const c = core();
    c.applyRouting(snapshot(1, [fnSpec('f', 1)], [ep('s1')]), 0);
    const running = admit(c, 'f', 0);
    const queued = admit(c, 'f', 1);
    const del = c.applyRouting(delta(2, { drainEndpoints: ['s1'], deleteFunctions: [{ name: 'f', uid: 'f-1' }] }), 2);
    assert.deepEqual(fails(del.effects).map(([w, s]) => [w, s]), [[queued.w, 404]]);
    assert.deepEqual(drained(del.effects), [], 'busy sandbox not acknowledged');
    assert.equal(admit(c, 'f', 3).kind, 'not_found');
    assert.equal(running.w.state, 'dispatched');
    assert.deepEqual(drained(c.release(running.w, 4)), ['s1']);
  });

  it('a delete without a drain in the same delta still drains the function endpoints', () => {
    const c = core();
    c.applyRouting(snapshot(1, [fnSpec('f', 1)], [ep('s1')]), 0);
    const running = admit(c, 'f', 0);
    const del = c.applyRouting(delta(2, { deleteFunctions: [{ name: 'f', uid: 'f-1' }] }), 2);
    assert.deepEqual(drained(del.effects), []);
    assert.deepEqual(drained(c.release(running.w, 4)), ['s1']);
  });

  it('delete + re-create under the same name while a request runs: the old release never touches the new function', () => {
    const c = core(10);
    c.applyRouting(snapshot(1, [fnSpec('f', 1, 'uid1')], [ep('s1', 'f', 'uid1')]), 0);
    const old = admit(c, 'f', 0);
    assert.equal(old.kind, 'dispatched');
    c.applyRouting(delta(2, { deleteFunctions: [{ name: 'f', uid: 'uid1' }], drainEndpoints: ['s1'] }), 10);
    c.applyRouting(delta(3, { upsertFunctions: [fnSpec('f', 1, 'uid2')] }), 20);
    const fresh = c.functions.get('f')!;
    assert.equal(fresh.uid, 'uid2');
    c.release(old.w, 30);
    assert.equal(fresh.level, 0);
    assert.equal(fresh.inflight, 0);
    for (const d of c.takeDemand(1000)) assert.ok(d.concurrencyAvg >= 0 && d.inflight >= 0, JSON.stringify(d));
    // A new request on the new function is accounted there only.
    const next = admit(c, 'f', 1000);
    assert.equal(next.kind, 'queued');
    assert.equal(fresh.level, 1);
  });

  it('an upsert with a new uid replaces the function; stale deletes, endpoints and failures are ignored', () => {
    const c = core(10);
    c.applyRouting(snapshot(1, [fnSpec('f', 1, 'uid1')], [ep('s1', 'f', 'uid1')]), 0);
    const running = admit(c, 'f', 0);
    const replaced = c.applyRouting(delta(2, { upsertFunctions: [fnSpec('f', 1, 'uid2')] }), 1);
    assert.deepEqual(drained(replaced.effects), [], 'the old sandbox drains');
    assert.equal(c.endpoints.has('s1'), false);
    c.applyRouting(delta(3, { addEndpoints: [ep('s0', 'f', 'uid1')] }), 2);
    assert.equal(c.endpoints.has('s0'), false, 'endpoint of the old uid is stale');
    const q = admit(c, 'f', 3);
    c.applyRouting(delta(4, { deleteFunctions: [{ name: 'f', uid: 'uid1' }], failures: [{ function: 'f', functionUid: 'uid1', code: 'sandbox_failure', reason: 'x' }] }), 4);
    assert.equal(c.functions.get('f')!.uid, 'uid2', 'stale delete ignored');
    assert.equal(q.w.state, 'queued', 'stale failure ignored');
    assert.deepEqual(drained(c.release(running.w, 5)), ['s1']);
  });

  it('applies deltas in order, ignores old ones, and asks for a resync on a gap', () => {
    const c = core();
    c.applyRouting(snapshot(5, [fnSpec('f')], []), 0);
    assert.equal(c.applyRouting(delta(5, { addEndpoints: [ep('old')] }), 1).ok, true);
    assert.equal(c.endpoints.has('old'), false, 'version 5 is already in the snapshot');
    assert.equal(c.applyRouting(delta(7, { addEndpoints: [ep('s7')] }), 1).ok, false);
    assert.equal(c.endpoints.has('s7'), false);
    assert.equal(c.applyRouting(delta(6, { addEndpoints: [ep('s6')] }), 1).ok, true);
    assert.equal(c.version, 6);
  });

  it('fails queued requests fast on creation failures (502) and unschedulable (503), and 404s them on delete', () => {
    const c = core();
    c.applyRouting(snapshot(1, [fnSpec('f'), fnSpec('g'), fnSpec('h')], []), 0);
    for (const name of ['f', 'g', 'h']) admit(c, name, 0);
    const r = c.applyRouting(delta(2, {
      failures: [
        { function: 'f', functionUid: 'f-1', code: 'sandbox_failure', reason: 'exit code 1' },
        { function: 'h', functionUid: 'h-1', code: 'unschedulable', reason: 'no capacity' },
      ],
      deleteFunctions: [{ name: 'g', uid: 'g-1' }],
    }), 1);
    const byFn = new Map(fails(r.effects).map(([w, s]) => [w.fn, s]));
    assert.deepEqual([byFn.get('f'), byFn.get('g'), byFn.get('h')], [502, 404, 503]);
  });

  it('removing one of many endpoints keeps the others routable (swap-remove keeps indexes right)', () => {
    const c = core(10);
    c.applyRouting(snapshot(1, [fnSpec('f', 1)], [ep('a'), ep('b'), ep('c')]), 0);
    c.applyRouting(delta(2, { removeEndpoints: ['a'] }), 1);
    const fn = c.functions.get('f')!;
    assert.deepEqual(fn.endpoints.map((e) => e.id).sort(), ['b', 'c']);
    fn.endpoints.forEach((e, i) => assert.equal(e.index, i));
    const got = [admit(c, 'f', 2), admit(c, 'f', 2), admit(c, 'f', 2)].map((x) => x.w.endpoint?.id ?? x.kind);
    assert.deepEqual(got.sort(), ['b', 'c', 'queued']);
  });

  it('reports time-weighted average concurrency, then a final zero, then nothing', () => {
    const c = core(10);
    c.applyRouting(snapshot(1, [fnSpec('f', 0)], [ep('s1')]), 0);
    const a = admit(c, 'f', 0);
    const b = admit(c, 'f', 0);
    c.release(b.w, 500); // 2 in flight for 500 ms, then 1 for 500 ms
    const r1 = c.takeDemand(1000);
    assert.equal(r1.length, 1);
    assert.equal(r1[0]!.concurrencyAvg, 1.5);
    assert.equal(r1[0]!.functionUid, 'f-1');
    c.release(a.w, 1000);
    assert.equal(c.takeDemand(2000)[0]!.concurrencyAvg, 0);
    assert.deepEqual(c.takeDemand(3000), []);
  });

  it('reports each function one period after its previous report, spreading the work', () => {
    const c = core(10);
    c.applyRouting(snapshot(1, [fnSpec('a', 0), fnSpec('b', 0)], [ep('s1', 'a'), ep('s2', 'b')]), 0);
    admit(c, 'a', 0);
    admit(c, 'b', 400);
    assert.deepEqual(c.takeDemand(1000, 1000).map((d) => d.function), ['a']);
    assert.deepEqual(c.takeDemand(1100, 1000).map((d) => d.function), []);
    assert.deepEqual(c.takeDemand(1400, 1000).map((d) => d.function), ['b']);
    assert.deepEqual(c.takeDemand(2000, 1000).map((d) => d.function), ['a']);
  });

  it('a sandbox that refuses the connection leaves the rotation; its request goes to another sandbox at once', () => {
    const c = core();
    c.applyRouting(snapshot(1, [fnSpec('f')], [ep('s1')]), 0);
    const a = admit(c, 'f', 0);
    assert.equal(a.w.endpoint?.id, 's1');
    c.applyRouting(delta(2, { addEndpoints: [ep('s22')] }), 1);
    const fx = c.retry(a.w, 2, 'refused');
    assert.deepEqual(kinds(fx), ['close_pool', 'dispatch']);
    assert.equal(a.w.state, 'dispatched');
    assert.equal(a.w.endpoint?.id, 's22');
    assert.deepEqual([...c.endpoints.keys()], ['s22']);
    const f = c.functions.get('f')!;
    assert.deepEqual([f.inflight, f.queued, f.level], [1, 0, 1]);
    // The CP's removal (the worker reported the death) finds it gone already; a release ends it.
    assert.ok(c.applyRouting(delta(3, { removeEndpoints: ['s1'] }), 3).ok);
    c.release(a.w, 4);
    assert.deepEqual([f.inflight, f.queued, f.level], [0, 0, 0]);
  });

  it('a refused request with no other sandbox waits at the head of the queue (urgent report) within its wait limit', () => {
    const c = core(10, 100);
    c.applyRouting(snapshot(1, [fnSpec('f'), fnSpec('g')], [ep('s1')]), 0);
    const a = admit(c, 'f', 0);
    const g = admit(c, 'g', 5); // another function's waiter, queued before the refusal
    const b = admit(c, 'f', 10); // queued behind the busy s1
    c.firstDemandReport();
    const fx = c.retry(a.w, 20, 'refused');
    assert.ok(kinds(fx).includes('first_demand'), JSON.stringify(kinds(fx)));
    assert.equal(a.w.state, 'queued');
    assert.deepEqual(c.firstDemandReport().map((d) => [d.function, d.queued]), [['f', 2]]);
    // The first to arrive is served first when a sandbox comes.
    const r = c.applyRouting(delta(2, { addEndpoints: [ep('s2')] }), 30);
    assert.deepEqual(r.effects.flatMap((e) => (e.kind === 'dispatch' ? [e.waiter] : [])), [a.w]);
    assert.equal(b.w.state, 'queued');
    // Expiry keeps arrival order across functions: g (5) before b (10).
    c.release(a.w, 40);
    c.retry(b.w, 41, 'refused');
    assert.deepEqual(fails(c.expire(105)).map(([w, s]) => [w.fn, w.arrivalMs, s]), [['g', 5, 504]]);
    assert.deepEqual(fails(c.expire(110)).map(([w, s]) => [w.fn, w.arrivalMs, s]), [['f', 10, 504]]);
    assert.equal(g.w.state, 'cancelled');
  });

  it('a refused connection takes every sandbox of the function at that address out of rotation', () => {
    // Nothing listens there: emulated sandboxes of one worker share its responder's address, so
    // a killed worker process took them all. Retrying one by one used up the tries on dead ones.
    const c = new DataPlaneCore({ queueDepthMax: 10, queueWaitMsMax: 1000, loadBalancing: 'least-loaded', upstreamRetriesMax: 2 }, seededRng(1), silentLogger);
    const at = (id: string, address: string): EndpointMsg => ({ ...ep(id), address });
    c.applyRouting(snapshot(1, [fnSpec('f')], [at('d1', 'dead:1'), at('d2', 'dead:1'), at('d3', 'dead:1'), at('d4', 'dead:1')]), 0);
    const a = admit(c, 'f', 0);
    assert.equal(a.w.endpoint!.address, 'dead:1');
    c.applyRouting(delta(2, { addEndpoints: [at('ok', 'live:1')] }), 1);
    c.retry(a.w, 2, 'refused');
    assert.equal(a.w.state, 'dispatched');
    assert.equal(a.w.endpoint!.id, 'ok', 'the next try goes to the live address');
    assert.deepEqual(c.functions.get('f')!.endpoints.map((e) => e.id), ['ok']);
    assert.deepEqual([...c.endpoints.keys()], ['ok']);
  });

  it('gives up after upstreamRetriesMax refusals: 502 sandbox_failure, counts back to zero', () => {
    const c = new DataPlaneCore({ queueDepthMax: 10, queueWaitMsMax: 1000, loadBalancing: 'least-loaded', upstreamRetriesMax: 2 }, seededRng(1), silentLogger);
    c.applyRouting(snapshot(1, [fnSpec('f')], [ep('s1'), ep('s22'), ep('s333'), ep('s4444')]), 0);
    const a = admit(c, 'f', 0);
    const seen = [a.w.endpoint!.id];
    let fx = c.retry(a.w, 1, 'refused');
    seen.push(a.w.endpoint!.id);
    fx = c.retry(a.w, 2, 'refused');
    seen.push(a.w.endpoint!.id);
    assert.equal(new Set(seen).size, 3, 'each try on another sandbox');
    fx = c.retry(a.w, 3, 'refused');
    assert.deepEqual(fails(fx).map(([w, s, code]) => [w, s, code]), [[a.w, 502, 'sandbox_failure']]);
    const f = c.functions.get('f')!;
    assert.deepEqual([f.inflight, f.queued, f.level, c.endpoints.size], [0, 0, 0, 1]);
    assert.deepEqual(c.retry(a.w, 4, 'refused'), [], 'a settled request is not retried');
  });

  it('a reset keeps the sandbox in rotation: the request is tried again, there or elsewhere; the message names the reset', () => {
    const c = new DataPlaneCore({ queueDepthMax: 10, queueWaitMsMax: 1000, loadBalancing: 'least-loaded', upstreamRetriesMax: 1 }, seededRng(1), silentLogger);
    c.applyRouting(snapshot(1, [fnSpec('f')], [ep('s1')]), 0);
    const a = admit(c, 'f', 0);
    assert.deepEqual(kinds(c.retry(a.w, 1, 'reset')), ['dispatch']);
    assert.deepEqual([a.w.state, a.w.endpoint?.id, [...c.endpoints.keys()]], ['dispatched', 's1', ['s1']]);
    const fx = c.retry(a.w, 2, 'reset');
    assert.deepEqual(fails(fx).map(([, s, code]) => [s, code]), [[502, 'sandbox_failure']]);
    assert.match((fx.find((e) => e.kind === 'fail') as { message: string }).message, /closed the connection before answering \(2 tries\)/);
    const f = c.functions.get('f')!;
    assert.deepEqual([f.inflight, f.queued, f.level, c.endpoints.size], [0, 0, 0, 1]);
  });

  it('a refusal on a draining sandbox acknowledges the drain when it was the last request', () => {
    const c = core();
    c.applyRouting(snapshot(1, [fnSpec('f')], [ep('s1')]), 0);
    const a = admit(c, 'f', 0);
    assert.deepEqual(drained(c.applyRouting(delta(2, { drainEndpoints: ['s1'] }), 1).effects), []);
    assert.deepEqual(drained(c.retry(a.w, 2, 'refused')), ['s1']);
    assert.equal(a.w.state, 'queued');
  });
});

/**
 * Goal: with proxy processes, every slot decision is the primary core's: a sandbox's concurrency
 * holds across processes, queues stay FIFO across them, a cancel that crosses a dispatch frees the
 * slot, a dead process's requests are settled, retries run on the core, and a replica built from
 * the core's own snapshot knows what the core knows. Malformed messages are refused at the
 * boundary.
 * Method: the real DataPlaneCore, ProxyHub and RemoteAdmission ends wired by an in-memory
 * message pipe that delivers only when the test says (virtual time, explicit interleavings).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EndpointMsg, FunctionSpecMsg, RoutingUpdateMsg } from '../../api/cluster.js';
import { silentLogger } from '../../shared/logger.js';
import { seededRng } from '../../shared/rng.js';
import { DataPlaneCore, newWaiter, type DpEffect, type Waiter } from './data-plane.js';
import {
  heldSlotIdleMs, isHubWaiter, parseToPrimary, parseToProxy, ProxyHub, recallGapMs, recallHoldOffMs, RemoteAdmission, resolveProxyThreads, type ToPrimary, type ToProxy } from './proxy-link.js';

const spec = (concurrency = 1): FunctionSpecMsg => ({
  name: 'f', uid: 'f-1', generation: 1, image: '', command: ['x'], port: 0, env: {}, egress: false, auth: 'none', concurrency, timeoutMs: 1000, workingDir: '',
});
const ep = (id: string): EndpointMsg => ({ sandboxId: id, function: 'f', functionUid: 'f-1', address: `10.0.0.1:${id.length + 8000}`, workerId: 'w' });
const snapshot = (endpoints: EndpointMsg[], concurrency = 1): RoutingUpdateMsg => ({
  case: 'snapshot', value: { version: 1, functions: [spec(concurrency)], endpoints, drainEndpoints: [], tokens: [{ id: 't1', sha256Hex: 'ab', scope: 'invoke', namespace: 'default' }] },
});
const newCore = (): DataPlaneCore => new DataPlaneCore({ queueDepthMax: 100, queueWaitMsMax: 1_000, loadBalancing: 'least-loaded' }, seededRng(1), silentLogger);

/** A primary with its core and hub, and proxy processes 1..n, joined by queues the test drains. */
class Rig {
  readonly core = newCore();
  readonly hub = new ProxyHub(this.core, newWaiter);
  readonly toPrimary: [number, ToPrimary][] = [];
  readonly toProxy = new Map<number, ToProxy[]>();
  readonly replicas = new Map<number, DataPlaneCore>();
  readonly admissions = new Map<number, RemoteAdmission>();
  /** What each process's proxy was told to do: [process, kind, waiter]. */
  readonly done: [number, string, Waiter, number?][] = [];

  constructor(processes: number, endpoints: EndpointMsg[], concurrency = 1) {
    this.core.trackQueued = true;
    this.core.applyRouting(snapshot(endpoints, concurrency), 0);
    for (let p = 1; p <= processes; p++) {
      const replica = newCore();
      replica.applyRouting({ case: 'snapshot', value: this.core.routingSnapshot() }, 0);
      this.replicas.set(p, replica);
      this.admissions.set(p, new RemoteAdmission(replica, (m) => this.toPrimary.push([p, m])));
      this.toProxy.set(p, []);
    }
  }

  request(p: number, atMs: number): Waiter {
    const w = newWaiter('f', atMs);
    const r = this.admissions.get(p)!.admit('f', w, atMs);
    assert.equal(r.kind, 'queued');
    return w;
  }

  /** Delivers everything sent to the primary, then everything sent back (at `nowMs`). */
  deliver(nowMs: number): void {
    for (const [p, m] of this.toPrimary.splice(0)) {
      const r = this.hub.handle(p, m, nowMs);
      this.toProxy.get(p)!.push(...r.reply);
      this.runPrimary(r.effects, nowMs);
    }
    for (const [p, queue] of this.toProxy) {
      for (const m of queue.splice(0)) this.record(p, this.admissions.get(p)!.handle(m, nowMs));
    }
  }

  /** The primary's effect runner: dispatches and failures to their process, recalls to all. */
  runPrimary(effects: DpEffect[], nowMs: number): void {
    for (const fx of effects) {
      if (fx.kind === 'dispatch' && isHubWaiter(fx.waiter)) this.toProxy.get(fx.waiter.proxy)!.push(this.hub.dispatchMessage(fx.waiter));
      else if (fx.kind === 'fail' && isHubWaiter(fx.waiter)) this.toProxy.get(fx.waiter.proxy)!.push(this.hub.failMessage(fx.waiter, fx.status, fx.code, fx.message));
    }
    for (const m of this.hub.recalls(this.core.takeNewlyQueued(), nowMs)) for (const queue of this.toProxy.values()) queue.push(m);
  }

  /** The primary's periodic timer: queue expiry, and recalls for queues that last. */
  tick(nowMs: number): void {
    this.runPrimary(this.core.expire(nowMs), nowMs);
    for (const m of this.hub.recalls([...this.core.functionsWithQueue], nowMs)) for (const queue of this.toProxy.values()) queue.push(m);
  }

  /** A routing update the primary applied, forwarded to every replica (as the shell does). */
  route(update: RoutingUpdateMsg, nowMs: number): void {
    const r = this.core.applyRouting(update, nowMs);
    assert.ok(r.ok);
    this.runPrimary(r.effects, nowMs);
    for (const [p, replica] of this.replicas) {
      assert.ok(replica.applyRouting(update, nowMs).ok);
      this.admissions.get(p)!.expireHeld(nowMs);
    }
  }

  private record(p: number, effects: DpEffect[]): void {
    for (const fx of effects) {
      if (fx.kind === 'dispatch') this.done.push([p, fx.kind, fx.waiter]);
      else if (fx.kind === 'fail') this.done.push([p, fx.kind, fx.waiter, fx.status]);
    }
  }
}

describe('proxy processes: admission through the primary core', () => {
  it("a sandbox's concurrency holds across processes, and its queue is FIFO across them", () => {
    const rig = new Rig(2, [ep('s1')]);
    const a = rig.request(1, 0);
    const b = rig.request(2, 1);
    const c = rig.request(1, 2);
    rig.deliver(3);
    assert.deepEqual(rig.done.map(([p, k]) => [p, k]), [[1, 'dispatch']], 'one slot: one request runs');
    assert.equal(a.state, 'dispatched');
    assert.equal(a.endpoint!.address, '10.0.0.1:8002');
    assert.equal(rig.core.functions.get('f')!.queued, 2);
    rig.admissions.get(1)!.release(a, 10);
    rig.deliver(10);
    assert.equal(b.state, 'dispatched', 'the next in arrival order is the other process\'s');
    assert.equal(c.state, 'queued');
    rig.admissions.get(2)!.release(b, 20);
    rig.deliver(20);
    assert.equal(c.state, 'dispatched');
    rig.admissions.get(1)!.release(c, 30);
    rig.deliver(30);
    const fn = rig.core.functions.get('f')!;
    assert.deepEqual([fn.inflight, fn.queued, fn.level], [0, 0, 0]);
  });

  it('a cancel that crosses its dispatch frees the slot; the late dispatch is ignored', () => {
    const rig = new Rig(1, [ep('s1')]);
    const a = rig.request(1, 0);
    const b = rig.request(1, 1);
    for (const [p, m] of rig.toPrimary.splice(0)) {
      const r = rig.hub.handle(p, m, 2);
      rig.runPrimary(r.effects, 2); // a dispatched in the primary; its dispatch is on the way
    }
    rig.admissions.get(1)!.cancel(a, 3); // the client of a left before the dispatch arrived
    rig.deliver(4);
    assert.equal(a.state, 'cancelled');
    assert.equal(b.state, 'dispatched', "a's slot went to b");
    assert.equal(rig.core.functions.get('f')!.inflight, 1);
    assert.equal(rig.hub.held(1), 1);
  });

  it('a process that dies: its running requests free their slots, its queued ones leave the queue, the others go on', () => {
    const rig = new Rig(2, [ep('s1')]);
    rig.request(1, 0);
    rig.request(1, 1);
    const other = rig.request(2, 2);
    rig.deliver(3);
    assert.equal(rig.hub.held(1), 2);
    rig.runPrimary(rig.hub.lost(1, 5), 5);
    rig.deliver(5);
    assert.equal(other.state, 'dispatched');
    const fn = rig.core.functions.get('f')!;
    assert.deepEqual([fn.inflight, fn.queued, fn.level], [1, 0, 1]);
    assert.equal(rig.hub.held(1), 0);
  });

  it('a refused connection is retried by the core on another sandbox; the refusing one leaves rotation', () => {
    const rig = new Rig(1, [ep('s1'), ep('s22')]);
    const a = rig.request(1, 0);
    rig.deliver(1);
    const first = a.endpoint!.id;
    rig.admissions.get(1)!.retry(a, 2, 'refused');
    assert.deepEqual(rig.toPrimary.at(-1), [1, ['retry', (a as Waiter & { remoteId?: number }).remoteId, 'refused', 2]], 'with its age at the proxy process');
    assert.equal(a.state, 'queued');
    rig.deliver(2);
    assert.equal(a.state, 'dispatched');
    assert.notEqual(a.endpoint!.id, first);
    assert.ok(!rig.core.endpoints.has(first), 'evicted in the primary');
    assert.equal(rig.done.filter(([, k]) => k === 'dispatch').length, 2);
  });

  it("the core's failures reach the process: queue timeout, a function unknown to the primary", () => {
    const rig = new Rig(1, []);
    const a = rig.request(1, 0);
    rig.deliver(1);
    rig.runPrimary(rig.core.expire(2_000), 2_000);
    rig.deliver(2_000);
    assert.deepEqual(rig.done.map(([, k, , s]) => [k, s]), [['fail', 504]]);
    assert.equal(a.state, 'done');
    rig.toPrimary.push([1, ['admit', 99, 'nope', null]]);
    rig.deliver(2_001);
    assert.equal(rig.toProxy.get(1)!.length, 0);
    assert.equal(rig.hub.held(1), 0);
    assert.equal(rig.core.functions.get('f')!.level, 0);
  });

  it('a held slot serves the next request of its process without a message; it goes back after idling', () => {
    const rig = new Rig(1, [ep('s1')]);
    const adm = rig.admissions.get(1)!;
    const a = rig.request(1, 0);
    rig.deliver(1);
    adm.release(a, 10);
    assert.equal(rig.toPrimary.length, 0, 'held, not released');
    assert.equal(adm.heldSlots, 1);
    const b = newWaiter('f', 12);
    const r = adm.admit('f', b, 12);
    assert.deepEqual([r.kind, r.effects.map((e) => e.kind)], ['dispatched', ['dispatch']]);
    assert.deepEqual([b.state, b.endpoint!.id, b.cold, rig.toPrimary.length], ['dispatched', 's1', false, 0]);
    const fn = rig.core.functions.get('f')!;
    assert.equal(fn.inflight, 1, 'the primary counted the slot busy all along');
    adm.release(b, 13);
    assert.equal(adm.nextHeldExpiryMs(), 13 + heldSlotIdleMs);
    adm.expireHeld(13 + heldSlotIdleMs - 1);
    assert.equal(adm.heldSlots, 1);
    adm.expireHeld(13 + heldSlotIdleMs);
    assert.deepEqual([adm.heldSlots, adm.nextHeldExpiryMs()], [0, null]);
    rig.deliver(20);
    assert.deepEqual([fn.inflight, fn.level, rig.hub.held(1)], [0, 0, 0]);
  });

  it('a queue in the primary recalls held slots: the holder gives them back and holds none of that function for a while', () => {
    const rig = new Rig(2, [ep('s1')]);
    const holder = rig.admissions.get(1)!;
    const a = rig.request(1, 0);
    rig.deliver(1);
    holder.release(a, 2);
    assert.equal(holder.heldSlots, 1);
    const b = rig.request(2, 3);
    rig.deliver(3); // b queues in the primary: a recall goes to every process
    assert.equal(holder.heldSlots, 0, 'given back on the recall');
    rig.deliver(4);
    assert.equal(b.state, 'dispatched', "the other process's request got the slot");
    // While the hold-off lasts, no process holds a slot of f: the recall went to every one.
    const c = rig.request(1, 5);
    rig.admissions.get(2)!.release(b, 6);
    assert.equal(rig.admissions.get(2)!.heldSlots, 0);
    rig.deliver(6);
    assert.equal(c.state, 'dispatched', "b's slot went back to the primary, which gave it to c");
    holder.release(c, 8);
    assert.equal(holder.heldSlots, 0, `no holding within ${recallHoldOffMs} ms of a recall`);
    assert.deepEqual(rig.toPrimary.at(-1), [1, ['release', (c as Waiter & { remoteId?: number }).remoteId]]);
    rig.deliver(9);
    assert.deepEqual(rig.hub.recalls([rig.core.functions.get('f')!], 10), [], `one recall per ${recallGapMs} ms`);
    assert.equal(rig.hub.recalls([rig.core.functions.get('f')!], 10 + recallGapMs).length, 1);
    const cold = new Rig(1, []);
    cold.request(1, 0);
    for (const [p, m] of cold.toPrimary.splice(0)) cold.hub.handle(p, m, 1);
    const queued = cold.core.takeNewlyQueued();
    assert.deepEqual(queued.map((f) => f.name), ['f']);
    assert.deepEqual(cold.hub.recalls(queued, 1), [], 'no recall for a queue waiting for a first sandbox (a cold start)');
  });

  it('a queue that outlasts the hold-off is recalled again: a long request ending late does not keep its slot from the queue', () => {
    const rig = new Rig(2, [ep('s1')]);
    const a = rig.request(1, 0);
    rig.deliver(0);
    const b = rig.request(2, 1);
    rig.deliver(1); // b queues: recall, process 1 holds nothing until 501
    assert.equal(b.state, 'queued');
    rig.tick(300); // the queue is still there: recalled again, hold-off until 800
    rig.deliver(300);
    rig.admissions.get(1)!.release(a, 600); // a ends after the first hold-off
    assert.equal(rig.admissions.get(1)!.heldSlots, 0, 'not held: the queue was recalled again');
    rig.deliver(600);
    assert.equal(b.state, 'dispatched');
    assert.equal(rig.core.functionsWithQueue.size, 0);
  });

  it('a held slot whose sandbox drains goes back at the routing update, and the drain completes', () => {
    const rig = new Rig(1, [ep('s1')]);
    const adm = rig.admissions.get(1)!;
    const a = rig.request(1, 0);
    rig.deliver(1);
    adm.release(a, 2);
    rig.route({ case: 'delta', value: { version: 2, upsertFunctions: [], deleteFunctions: [], addEndpoints: [], removeEndpoints: [], drainEndpoints: ['s1'], failures: [], upsertTokens: [], revokeTokens: [] } }, 3);
    assert.equal(adm.heldSlots, 0);
    const drained: DpEffect[] = [];
    for (const [p, m] of rig.toPrimary.splice(0)) drained.push(...rig.hub.handle(p, m, 4).effects);
    assert.deepEqual(drained.filter((e) => e.kind === 'drained').map((e) => (e as { sandboxId: string }).sandboxId), ['s1']);
  });

  it("a retry after a held slot's reuse keeps the wait limit of the new request, not the first one's", () => {
    const rig = new Rig(1, [ep('s1'), ep('s22')]); // queueWaitMsMax 1,000
    const adm = rig.admissions.get(1)!;
    let w = rig.request(1, 0);
    rig.deliver(0);
    for (let t = 3; t < 5_000; t += 3) {
      adm.release(w, t);
      w = newWaiter('f', t + 1);
      assert.equal(adm.admit('f', w, t + 1).kind, 'dispatched', `reused at ${t + 1}`);
    }
    adm.retry(w, 5_000, 'refused');
    rig.deliver(5_000);
    rig.runPrimary(rig.core.expire(5_001), 5_001);
    rig.deliver(5_001);
    assert.equal(w.state, 'dispatched', 'tried on the other sandbox, not failed with 504');
  });

  it('an unknown function is answered by the replica itself, without a message', () => {
    const rig = new Rig(1, [ep('s1')]);
    const w = newWaiter('g', 0);
    assert.equal(rig.admissions.get(1)!.admit('g', w, 0).kind, 'not_found');
    const unsynced = new RemoteAdmission(newCore(), () => assert.fail('sent'));
    assert.equal(unsynced.admit('f', newWaiter('f', 0), 0).kind, 'not_ready');
    assert.equal(rig.toPrimary.length, 0);
  });

  it("a replica fed the core's snapshot knows its functions, routable endpoints, tokens and version", () => {
    const rig = new Rig(1, [ep('s1'), ep('s22')], 4);
    rig.core.applyRouting({ case: 'delta', value: { version: 2, upsertFunctions: [], deleteFunctions: [], addEndpoints: [], removeEndpoints: [], drainEndpoints: ['s1'], failures: [], upsertTokens: [], revokeTokens: [] } }, 1);
    const replica = newCore();
    replica.applyRouting({ case: 'snapshot', value: rig.core.routingSnapshot() }, 2);
    assert.equal(replica.version, 2);
    assert.deepEqual([...replica.endpoints.keys()], ['s22'], 'a draining sandbox is not routable');
    assert.equal(replica.functions.get('f')!.spec.concurrency, 4);
    assert.deepEqual([...replica.tokens.keys()], ['t1']);
    assert.ok(replica.synced);
  });

  it('proxyThreads 0 means every core from 4 cores up, one process below; a set number stands', () => {
    assert.deepEqual([1, 2, 3].map((cores) => resolveProxyThreads(0, cores)), [1, 1, 1]);
    assert.deepEqual([4, 16, 1024].map((cores) => resolveProxyThreads(0, cores)), [4, 16, 256]);
    assert.deepEqual([resolveProxyThreads(1, 64), resolveProxyThreads(3, 2)], [1, 3]);
  });

  it('messages of another shape are refused at the boundary, both ways', () => {
    const bad: unknown[] = [
      null, 'admit', [], ['admit'], ['admit', 0, 'f', null], ['admit', 1.5, 'f', null], ['admit', 1, '', null], ['admit', 1, 'f', 3],
      ['admit', 1, 'f'], ['release', -1], ['release', 1, 2], ['retry', 1, 'other', 0], ['retry', 1, 'reset'], ['retry', 1, 'reset', -1], ['cancel', '1'], ['resync', 1], ['dispatch', 1], ['admit', 1, 'x'.repeat(20_000), null],
    ];
    for (const m of bad) assert.equal(parseToPrimary(m), null, JSON.stringify(m)?.slice(0, 40));
    assert.deepEqual(parseToPrimary(['admit', 7, 'f', 'k']), ['admit', 7, 'f', 'k']);
    assert.deepEqual(parseToPrimary(['retry', 7, 'reset', 12.5]), ['retry', 7, 'reset', 12.5]);
    assert.deepEqual(parseToPrimary(['resync']), ['resync']);
    const badDown: unknown[] = [
      null, ['dispatch', 1, 's', 'a'], ['dispatch', 0, 's', 'a', true], ['dispatch', 1, 's', 'a', 'yes'], ['fail', 1, 200, 'c', 'm'], ['fail', 1, 502, 'c'],
      ['recall', ''], ['recall', 3], ['routing', -1, { case: 'delta', value: {} }], ['routing', 1, { case: 'other', value: {} }], ['routing', 1, null], ['admit', 1, 'f', null],
    ];
    for (const m of badDown) assert.equal(parseToProxy(m), null, JSON.stringify(m));
    assert.deepEqual(parseToProxy(['dispatch', 3, 's1', '10.0.0.1:80', false]), ['dispatch', 3, 's1', '10.0.0.1:80', false]);
    assert.deepEqual(parseToProxy(['fail', 3, 504, 'queue_timeout', 'late']), ['fail', 3, 504, 'queue_timeout', 'late']);
    assert.deepEqual(parseToProxy(['recall', 'f']), ['recall', 'f']);
    assert.equal(parseToProxy(['routing', 2, { case: 'snapshot', value: { version: 1 } }])?.[0], 'routing');
  });
});

/**
 * Goal: under any interleaving of requests, releases, cancels, held-slot expiry, recalls, queue
 * expiry and proxy-process deaths, the primary's core and the proxy processes agree: no sandbox
 * ever runs more requests than its slots across all processes, no request is left hanging, and
 * once everything has ended every slot and every unit of demand is back.
 * Method: the real DataPlaneCore, ProxyHub and RemoteAdmission ends; one FIFO channel per
 * direction per process, delivered in a seeded random order (virtual time, many seeds).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EndpointMsg, FunctionSpecMsg } from '../../api/cluster.js';
import { silentLogger } from '../../shared/logger.js';
import { seededRng, type Rng } from '../../shared/rng.js';
import { DataPlaneCore, newWaiter, type DpEffect, type Waiter } from './data-plane.js';
import { isHubWaiter, ProxyHub, RemoteAdmission, type ToPrimary, type ToProxy } from './proxy-link.js';

const processes = 3;
const spec: FunctionSpecMsg = {
  name: 'f', uid: 'f-1', generation: 1, image: '', command: ['x'], port: 0, env: {}, egress: false, auth: 'none', concurrency: 1, timeoutMs: 1000, workingDir: '',
};
const endpoints: EndpointMsg[] = ['s1', 's2'].map((id, i) => ({ sandboxId: id, function: 'f', functionUid: 'f-1', address: `10.0.0.1:${8000 + i}`, workerId: 'w' }));

class World {
  readonly core = new DataPlaneCore({ queueDepthMax: 1_000, queueWaitMsMax: 400, loadBalancing: 'least-loaded' }, seededRng(7), silentLogger);
  readonly hub = new ProxyHub(this.core, newWaiter);
  readonly up = new Map<number, ToPrimary[]>();
  readonly down = new Map<number, ToProxy[]>();
  readonly admissions = new Map<number, RemoteAdmission>();
  /** Every request each process has not seen end, by process. */
  readonly open = new Map<number, Set<Waiter>>();
  nowMs = 0;

  constructor(private readonly rng: Rng) {
    this.core.trackQueued = true;
    this.core.applyRouting({ case: 'snapshot', value: { version: 1, functions: [spec], endpoints, drainEndpoints: [], tokens: [] } }, 0);
    for (let p = 1; p <= processes; p++) this.start(p);
  }

  start(p: number): void {
    const replica = new DataPlaneCore({ queueDepthMax: 1_000, queueWaitMsMax: 400, loadBalancing: 'least-loaded' }, seededRng(p), silentLogger);
    replica.applyRouting({ case: 'snapshot', value: this.core.routingSnapshot() }, this.nowMs);
    this.up.set(p, []);
    this.down.set(p, []);
    this.open.set(p, new Set());
    this.admissions.set(p, new RemoteAdmission(replica, (m) => this.up.get(p)!.push(m)));
  }

  runPrimary(effects: DpEffect[]): void {
    for (const fx of effects) {
      if (fx.kind === 'dispatch' && isHubWaiter(fx.waiter)) this.down.get(fx.waiter.proxy)?.push(this.hub.dispatchMessage(fx.waiter));
      else if (fx.kind === 'fail' && isHubWaiter(fx.waiter)) this.down.get(fx.waiter.proxy)?.push(this.hub.failMessage(fx.waiter, fx.status, fx.code, fx.message));
    }
    this.broadcast(this.hub.recalls(this.core.takeNewlyQueued(), this.nowMs));
  }

  broadcast(messages: ToProxy[]): void {
    for (const m of messages) for (const q of this.down.values()) q.push(m);
  }

  settle(p: number, effects: DpEffect[]): void {
    for (const fx of effects) if (fx.kind === 'fail') this.open.get(p)!.delete(fx.waiter);
  }

  step(): void {
    this.nowMs += this.rng.int(4);
    const p = 1 + this.rng.int(processes);
    const adm = this.admissions.get(p)!;
    const mine = [...this.open.get(p)!];
    const pick = <T>(xs: T[]): T | undefined => xs[this.rng.int(Math.max(1, xs.length))];
    switch (this.rng.int(9)) {
      case 0:
      case 1: {
        const w = newWaiter('f', this.nowMs);
        const r = adm.admit('f', w, this.nowMs);
        assert.ok(r.kind === 'queued' || r.kind === 'dispatched', r.kind);
        this.open.get(p)!.add(w);
        break;
      }
      case 2: {
        const w = pick(mine.filter((x) => x.state === 'dispatched'));
        if (w) {
          adm.release(w, this.nowMs);
          this.open.get(p)!.delete(w);
        }
        break;
      }
      case 3: {
        const w = pick(mine.filter((x) => x.state === 'queued'));
        if (w) {
          adm.cancel(w, this.nowMs);
          this.open.get(p)!.delete(w);
        }
        break;
      }
      case 4: {
        const m = this.up.get(p)!.shift();
        if (m) {
          const r = this.hub.handle(p, m, this.nowMs);
          this.down.get(p)!.push(...r.reply);
          this.runPrimary(r.effects);
        }
        break;
      }
      case 5: {
        const m = this.down.get(p)!.shift();
        if (m) this.settle(p, adm.handle(m, this.nowMs));
        break;
      }
      case 6:
        adm.expireHeld(this.nowMs);
        break;
      case 7:
        this.runPrimary(this.core.expire(this.nowMs));
        this.broadcast(this.hub.recalls([...this.core.functionsWithQueue], this.nowMs));
        break;
      default:
        if (this.rng.int(40) === 0) {
          // The process dies: its messages in flight are lost, the primary settles what it held.
          this.runPrimary(this.hub.lost(p, this.nowMs));
          this.start(p);
        }
    }
    this.checkSlots();
  }

  /** No sandbox serves more requests than its one slot, over every process's view. */
  checkSlots(): void {
    const running = new Map<string, number>();
    for (const set of this.open.values()) {
      for (const w of set) if (w.state === 'dispatched') running.set(w.endpoint!.id, (running.get(w.endpoint!.id) ?? 0) + 1);
    }
    for (const [id, n] of running) assert.ok(n <= 1, `sandbox ${id} runs ${n} requests at t=${this.nowMs}`);
  }

  /** Everything ends: running requests finish, queued ones leave, held slots idle out. */
  drain(): void {
    for (let round = 0; round < 10_000; round++) {
      this.nowMs += 1;
      let moved = false;
      for (let p = 1; p <= processes; p++) {
        const adm = this.admissions.get(p)!;
        for (const w of [...this.open.get(p)!]) {
          if (w.state === 'dispatched') adm.release(w, this.nowMs);
          else if (w.state === 'queued') adm.cancel(w, this.nowMs);
          else continue;
          this.open.get(p)!.delete(w);
          moved = true;
        }
        adm.expireHeld(this.nowMs + 1_000);
        for (let m = this.up.get(p)!.shift(); m; m = this.up.get(p)!.shift()) {
          const r = this.hub.handle(p, m, this.nowMs);
          this.down.get(p)!.push(...r.reply);
          this.runPrimary(r.effects);
          moved = true;
        }
        for (let m = this.down.get(p)!.shift(); m; m = this.down.get(p)!.shift()) {
          this.settle(p, adm.handle(m, this.nowMs));
          moved = true;
        }
      }
      if (!moved) return;
    }
    assert.fail('the world did not settle');
  }
}

describe('proxy processes: random interleavings (property)', () => {
  it('keep every sandbox within its slots and give every slot and unit of demand back', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const world = new World(seededRng(seed));
      for (let i = 0; i < 1_500; i++) world.step();
      world.drain();
      const fn = world.core.functions.get('f')!;
      assert.deepEqual([fn.inflight, fn.queued, fn.level], [0, 0, 0], `seed ${seed}`);
      for (let p = 1; p <= processes; p++) {
        assert.equal(world.hub.held(p), 0, `seed ${seed}: process ${p}`);
        assert.equal(world.admissions.get(p)!.heldSlots, 0);
      }
    }
  });
});

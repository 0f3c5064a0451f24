/**
 * @module sim/fake-client
 * Open-loop clients: per function, a seeded Poisson arrival process switched on and off in
 * seeded phases (so functions also scale to zero and back). Open loop because real callers do
 * not wait for earlier answers before sending more. Each request holds its slot for a seeded
 * duration. The ledger tracks every request from admission until it ends in a response (200)
 * or a typed error (404/502/503/504), and counts in-flight requests per endpoint independently
 * of the DP core, so a checker can compare the two.
 */
import type { DpEndpoint, Waiter } from '../data-plane/core/data-plane.js';
import { assert } from '../shared/assert.js';
import type { Rng } from '../shared/rng.js';
import type { TimerQueue } from './clock.js';

export interface FunctionLoad {
  fn: string;
  ratePerS: number;
  holdMs: readonly [number, number];
  onMs: readonly [number, number];
  offMs: readonly [number, number];
}

export interface SimRequest {
  id: number;
  fn: string;
  dp: number;
  acceptedAtMs: number;
  holdMs: number;
  /** 0 while pending. */
  status: number;
  code: string;
  endpoint: DpEndpoint | null;
  /** When it was dispatched to its endpoint; 0 while queued. */
  startedAtMs: number;
}

export class RequestLedger {
  private seq = 0;
  readonly byWaiter = new Map<Waiter, SimRequest>();
  readonly pending = new Set<SimRequest>();
  readonly counts = new Map<string, number>();
  /** Requests dispatched and not yet released, per endpoint object: the oracle for inflight. */
  readonly inflight = new Map<DpEndpoint, number>();

  accept(waiter: Waiter, fn: string, dp: number, holdMs: number, nowMs: number): SimRequest {
    this.seq += 1;
    const r: SimRequest = {
      id: this.seq, fn, dp, acceptedAtMs: nowMs, holdMs, status: 0, code: '', endpoint: null,
      startedAtMs: 0,
    };
    this.byWaiter.set(waiter, r);
    this.pending.add(r);
    return r;
  }

  /** Refused at admission: it never was pending. */
  reject(status: number, code: string): void {
    this.count(`${status} ${code}`);
  }

  started(r: SimRequest, ep: DpEndpoint, nowMs: number): void {
    assert(r.endpoint === null && r.status === 0, `request ${r.id} started twice`);
    r.endpoint = ep;
    r.startedAtMs = nowMs;
    this.inflight.set(ep, (this.inflight.get(ep) ?? 0) + 1);
  }

  finish(waiter: Waiter, status: number, code: string): void {
    const r = this.byWaiter.get(waiter);
    assert(r !== undefined, 'finish of an unknown request');
    assert(r.status === 0, `request ${r.id} answered twice (${r.status}, then ${status})`);
    r.status = status;
    r.code = code;
    this.pending.delete(r);
    this.byWaiter.delete(waiter);
    if (r.endpoint) {
      const n = (this.inflight.get(r.endpoint) ?? 0) - 1;
      assert(n >= 0, `oracle inflight below zero on ${r.endpoint.id}`);
      if (n === 0) this.inflight.delete(r.endpoint);
      else this.inflight.set(r.endpoint, n);
    }
    this.count(`${status} ${code}`);
  }

  private count(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  total(prefix: string): number {
    let n = 0;
    for (const [k, v] of this.counts) if (k.startsWith(prefix)) n += v;
    return n;
  }
}

export type Invoke = (fn: string, holdMs: number, nowMs: number) => void;

/** Drives one function's arrivals until `stopAtMs`. */
export function startLoad(
  load: FunctionLoad,
  rng: Rng,
  timers: TimerQueue,
  stopAtMs: number,
  invoke: Invoke,
): void {
  assert(load.ratePerS > 0, 'rate must be positive');
  const draw = (r: readonly [number, number]): number => r[0] + rng.next() * (r[1] - r[0]);
  let phaseEndMs = 0;
  // `atMs` is the process's own schedule (keeps the rate exact); `nowMs` is the step time.
  const arrive = (atMs: number, nowMs: number): void => {
    if (atMs >= stopAtMs) return;
    if (atMs >= phaseEndMs) {
      // The next on phase starts after an off phase: demand drops to zero in between.
      const offMs = phaseEndMs === 0 ? 0 : draw(load.offMs);
      phaseEndMs = atMs + offMs + draw(load.onMs);
      if (offMs > 0) {
        timers.at(atMs + offMs, (t) => arrive(atMs + offMs, t));
        return;
      }
    }
    invoke(load.fn, Math.round(draw(load.holdMs)), nowMs);
    const gapMs = (-Math.log(1 - rng.next()) / load.ratePerS) * 1000;
    timers.at(atMs + gapMs, (t) => arrive(atMs + gapMs, t));
  };
  timers.at(0, (t) => arrive(0, t));
}

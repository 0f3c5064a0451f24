/**
 * @module policy/load-balancing/lb-index
 * The load-balancing policies of `lb.ts` as incremental indexes, so the data plane's hot path
 * never scans every endpoint per request: the owner tells the index when an endpoint joins,
 * leaves, or changes its in-flight count, and `pick` answers from the index.
 *
 *   policy                    index                                   pick     update
 *   least-loaded              lists of free endpoints per load level  O(1)*    O(1)*
 *   knative, concurrency 1-3  min-heap of free endpoints by join order O(1)   O(log n)
 *   knative, concurrency > 3  rotation list of free endpoints         O(1)     O(1)
 *   round-robin               rotation list of free endpoints         O(1)     O(1)
 *   knative, unlimited        array of free endpoints (two choices)   O(1)     O(1)
 *   random                    array of free endpoints                 O(1)     O(1)
 *   consistent-hash           cached ring + running load total        walk     O(1)
 *   (* plus a walk over empty load levels, bounded by the concurrency, not by the endpoints)
 *
 * Semantics follow `lb.ts`: only endpoints with a free slot are picked; `null` means none is
 * free. Ties of least-loaded rotate because a picked endpoint goes to the tail of its next level.
 * Pure: no I/O, randomness only from the `Rng` port.
 */
import { LinkedList, type ListNode } from '../../shared/linked-list.js';
import type { Rng } from '../../shared/rng.js';
import { lbBuildRing, lbHasFreeSlot, lbKnativeFirstAvailableMax, pickConsistentHash, type LbEndpoint, type LbPolicyName, type LbState } from './lb.js';

export interface LbIndex<E extends LbEndpoint> {
  add(e: E): void;
  remove(e: E): void;
  /** `e.inflight` changed from `before` (the owner changed it, then calls this). */
  update(e: E, before: number): void;
  /** An endpoint with a free slot, or null. `key` is used by consistent-hash only. */
  pick(rng: Rng, key: string): E | null;
}

export function createLbIndex<E extends LbEndpoint>(policy: LbPolicyName, concurrency: number): LbIndex<E> {
  switch (policy) {
    case 'least-loaded':
      return new LeastLoadedIndex<E>();
    case 'round-robin':
      return new RotationIndex<E>();
    case 'random':
      return new FreeArrayIndex<E>(false);
    case 'consistent-hash':
      return new HashIndex<E>();
    case 'knative':
      if (concurrency >= 1 && concurrency <= lbKnativeFirstAvailableMax) return new FirstFreeIndex<E>();
      return concurrency === 0 ? new FreeArrayIndex<E>(true) : new RotationIndex<E>();
  }
}

/**
 * Free endpoints in lists by load level; `min` is the lowest level that may be non-empty. An
 * endpoint's list node is kept on the endpoint (`lbNode`), not in a map of the index: a map per
 * function was its largest part in the data plane (an empty one is ~180 bytes, and the table of
 * levels, grown by one push, held 17 slots for the one level of a function of concurrency 1).
 */
class LeastLoadedIndex<E extends LbEndpoint> implements LbIndex<E> {
  private levels: LinkedList<E>[] = [];
  private min = 0;

  add(e: E): void {
    if (lbHasFreeSlot(e)) this.insert(e);
  }

  remove(e: E): void {
    const node = e.lbNode;
    if (!node) return;
    node.list?.remove(node);
    e.lbNode = null;
  }

  update(e: E, _before: number): void {
    this.remove(e);
    this.add(e);
  }

  pick(): E | null {
    while (this.min < this.levels.length && this.levels[this.min]!.length === 0) this.min += 1;
    return this.levels[this.min]?.peek() ?? null;
  }

  private insert(e: E): void {
    const level = e.inflight;
    if (this.levels.length <= level) this.levels = lbLevelsTo(this.levels, level);
    e.lbNode = this.levels[level]!.push(e);
    if (level < this.min) this.min = level;
  }
}

/** `levels` with a list for every level up to `level`, in an array of exactly that size. */
function lbLevelsTo<E>(levels: LinkedList<E>[], level: number): LinkedList<E>[] {
  const out = new Array<LinkedList<E>>(level + 1);
  for (let i = 0; i <= level; i++) out[i] = levels[i] ?? new LinkedList<E>();
  return out;
}

/** Round robin over the free endpoints: the head serves and moves to the tail (nodes on the endpoints). */
class RotationIndex<E extends LbEndpoint> implements LbIndex<E> {
  private readonly ring = new LinkedList<E>();

  add(e: E): void {
    if (lbHasFreeSlot(e) && e.lbNode?.list !== this.ring) e.lbNode = this.ring.push(e);
  }

  remove(e: E): void {
    const node = e.lbNode;
    if (!node) return;
    this.ring.remove(node as ListNode<E>);
    e.lbNode = null;
  }

  update(e: E, _before: number): void {
    if (lbHasFreeSlot(e)) this.add(e);
    else this.remove(e);
  }

  pick(): E | null {
    const e = this.ring.peek();
    if (e === undefined) return null;
    this.remove(e);
    this.add(e);
    return e;
  }
}

/** Uniform among the free endpoints, or Knative's power of two choices (the less loaded). */
class FreeArrayIndex<E extends LbEndpoint> implements LbIndex<E> {
  private readonly free: E[] = [];
  private readonly at = new Map<E, number>();

  constructor(private readonly twoChoices: boolean) {}

  add(e: E): void {
    if (!lbHasFreeSlot(e) || this.at.has(e)) return;
    this.at.set(e, this.free.length);
    this.free.push(e);
  }

  remove(e: E): void {
    const i = this.at.get(e);
    if (i === undefined) return;
    const last = this.free.pop()!;
    if (last !== e) {
      this.free[i] = last;
      this.at.set(last, i);
    }
    this.at.delete(e);
  }

  update(e: E, _before: number): void {
    if (lbHasFreeSlot(e)) this.add(e);
    else this.remove(e);
  }

  pick(rng: Rng): E | null {
    const n = this.free.length;
    if (n === 0) return null;
    if (!this.twoChoices || n === 1) return this.free[n === 1 ? 0 : rng.int(n)]!;
    let a = 0;
    let b = 1;
    if (n > 2) {
      a = rng.int(n);
      b = rng.int(n - 1);
      if (b >= a) b += 1;
    }
    const ea = this.free[a]!;
    const eb = this.free[b]!;
    if (ea.inflight !== eb.inflight) return ea.inflight < eb.inflight ? ea : eb;
    return rng.int(2) === 0 ? ea : eb;
  }
}

/** First free endpoint in join order: a binary min-heap by join sequence with positions. */
class FirstFreeIndex<E extends LbEndpoint> implements LbIndex<E> {
  private readonly heap: E[] = [];
  private readonly pos = new Map<E, number>();
  private readonly seq = new Map<E, number>();
  private nextSeq = 0;

  add(e: E): void {
    if (!this.seq.has(e)) this.seq.set(e, this.nextSeq++);
    if (!lbHasFreeSlot(e) || this.pos.has(e)) return;
    this.heap.push(e);
    this.pos.set(e, this.heap.length - 1);
    this.up(this.heap.length - 1);
  }

  remove(e: E): void {
    this.unfree(e);
    this.seq.delete(e);
  }

  update(e: E, _before: number): void {
    if (lbHasFreeSlot(e)) this.add(e);
    else this.unfree(e);
  }

  pick(): E | null {
    return this.heap[0] ?? null;
  }

  private unfree(e: E): void {
    const i = this.pos.get(e);
    if (i === undefined) return;
    const last = this.heap.pop()!;
    this.pos.delete(e);
    if (last === e) return;
    this.heap[i] = last;
    this.pos.set(last, i);
    this.up(i);
    this.down(this.pos.get(last)!);
  }

  private key(i: number): number {
    return this.seq.get(this.heap[i]!)!;
  }

  private swap(i: number, j: number): void {
    const a = this.heap[i]!;
    const b = this.heap[j]!;
    this.heap[i] = b;
    this.heap[j] = a;
    this.pos.set(b, i);
    this.pos.set(a, j);
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.key(parent) <= this.key(i)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    const n = this.heap.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.key(l) < this.key(m)) m = l;
      if (r < n && this.key(r) < this.key(m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}

/** Consistent hashing with bounded loads over every member; the ring is rebuilt on joins/leaves. */
class HashIndex<E extends LbEndpoint> implements LbIndex<E> {
  private readonly members: E[] = [];
  private readonly at = new Map<E, number>();
  private state: LbState = { cursor: 0 };
  private total = 0;

  add(e: E): void {
    if (this.at.has(e)) return;
    this.at.set(e, this.members.length);
    this.members.push(e);
    this.total += e.inflight;
    this.state = { cursor: 0 };
  }

  remove(e: E): void {
    const i = this.at.get(e);
    if (i === undefined) return;
    const last = this.members.pop()!;
    if (last !== e) {
      this.members[i] = last;
      this.at.set(last, i);
    }
    this.at.delete(e);
    this.total -= e.inflight;
    this.state = { cursor: 0 };
  }

  update(e: E, before: number): void {
    if (this.at.has(e)) this.total += e.inflight - before;
  }

  pick(_rng: Rng, key: string): E | null {
    if (this.members.length === 0) return null;
    if (this.state.ring === undefined) this.state = { cursor: 0, ring: lbBuildRing(this.members) };
    const r = pickConsistentHash(this.members, this.state, key, this.total);
    this.state = r.state;
    return r.index >= 0 ? this.members[r.index]! : null;
  }
}

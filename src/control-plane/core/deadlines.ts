/**
 * @module control-plane/core/deadlines
 * A min-heap of deadlines keyed by due time. The core pushes one entry when something starts
 * a timed wait (a creation, a drain, a silent worker, a gone peer) and pops only what is due,
 * so a tick costs O(due · log n), not a scan of every sandbox and worker. An entry knows its
 * place in the heap, so its owner can remove it early in O(log n): a sandbox's creation and
 * drain deadlines leave when the wait ends (a sandbox is ready in tens of milliseconds; left
 * for their 30 s limits, they kept 120,000 entries of each kind in the control plane's live heap
 * at 4,000 cold starts/s). Other entries stay until due: when one pops, the caller checks that
 * it still applies (lazy invalidation).
 */

export type DeadlineKind = 'creation' | 'drain' | 'heartbeat' | 'forget_worker' | 'forget_dp' | 'dp_expected' | 'worker_expected' | 'unschedulable';

export interface Deadline {
  readonly dueMs: number;
  readonly kind: DeadlineKind;
  /** Sandbox id, worker id, data-plane id or function name. */
  readonly key: string;
  /** Its index in the heap; -1 once popped or removed. */
  at: number;
}

export class DeadlineHeap {
  private readonly items: Deadline[] = [];

  get size(): number {
    return this.items.length;
  }

  push(dueMs: number, kind: DeadlineKind, key: string): Deadline {
    const d: Deadline = { dueMs, kind, key, at: this.items.length };
    this.items.push(d);
    this.siftUp(d.at);
    return d;
  }

  /** The earliest entry if it is due at `nowMs`, removed; otherwise null. */
  popDue(nowMs: number): Deadline | null {
    const a = this.items;
    if (a.length === 0 || a[0]!.dueMs > nowMs) return null;
    const top = a[0]!;
    this.remove(top);
    return top;
  }

  /** Out of the heap before it is due; an entry already popped or removed is left alone. */
  remove(d: Deadline): void {
    const i = d.at;
    if (i < 0) return;
    const a = this.items;
    const last = a.pop()!;
    d.at = -1;
    if (last === d) return;
    this.place(i, last);
    this.siftUp(i);
    this.siftDown(last.at);
  }

  /** Entries of one kind (O(n): for invariant checks). */
  countOf(kind: DeadlineKind): number {
    let n = 0;
    for (const d of this.items) if (d.kind === kind) n += 1;
    return n;
  }

  private place(i: number, d: Deadline): void {
    this.items[i] = d;
    d.at = i;
  }

  private siftUp(start: number): void {
    const a = this.items;
    const d = a[start]!;
    let i = start;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent]!.dueMs <= d.dueMs) break;
      this.place(i, a[parent]!);
      i = parent;
    }
    this.place(i, d);
  }

  private siftDown(start: number): void {
    const a = this.items;
    const d = a[start]!;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = -1;
      let dueMs = d.dueMs;
      if (l < a.length && a[l]!.dueMs < dueMs) {
        m = l;
        dueMs = a[l]!.dueMs;
      }
      if (r < a.length && a[r]!.dueMs < dueMs) m = r;
      if (m < 0) break;
      this.place(i, a[m]!);
      i = m;
    }
    this.place(i, d);
  }
}

/**
 * @module control-plane/core/deadlines
 * A min-heap of deadlines keyed by due time. The core pushes one entry when something starts
 * a timed wait (a creation, a drain, a silent worker, a gone peer) and pops only what is due,
 * so a tick costs O(due · log n), not a scan of every sandbox and worker. Entries are never
 * removed early: when one pops, the caller checks that it still applies (lazy invalidation).
 */

export type DeadlineKind = 'creation' | 'drain' | 'heartbeat' | 'forget_worker' | 'forget_dp' | 'dp_expected' | 'worker_expected' | 'unschedulable';

export interface Deadline {
  dueMs: number;
  kind: DeadlineKind;
  /** Sandbox id, worker id, data-plane id or function name. */
  key: string;
}

export class DeadlineHeap {
  private readonly items: Deadline[] = [];

  get size(): number {
    return this.items.length;
  }

  push(d: Deadline): void {
    const a = this.items;
    a.push(d);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent]!.dueMs <= a[i]!.dueMs) break;
      [a[parent], a[i]] = [a[i]!, a[parent]!];
      i = parent;
    }
  }

  /** The earliest entry if it is due at `nowMs`, removed; otherwise null. */
  popDue(nowMs: number): Deadline | null {
    const a = this.items;
    if (a.length === 0 || a[0]!.dueMs > nowMs) return null;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private siftDown(start: number): void {
    const a = this.items;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && a[l]!.dueMs < a[m]!.dueMs) m = l;
      if (r < a.length && a[r]!.dueMs < a[m]!.dueMs) m = r;
      if (m === i) return;
      [a[m], a[i]] = [a[i]!, a[m]!];
      i = m;
    }
  }
}

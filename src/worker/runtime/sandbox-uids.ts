/**
 * @module worker/runtime/sandbox-uids
 * One host uid per live sandbox, shared by every runtime of a worker. A uid is what the packet
 * filter (sandbox-firewall.ts) matches on, and what keeps two sandboxes from signalling, reading
 * or port-stealing each other (SO_REUSEPORT needs the same uid).
 *
 *   [first .............. mid-1][mid ............... last]
 *    sandboxes without egress    sandboxes with egress
 *
 * A released uid goes to the back of its queue, so it is reused as late as possible: a process
 * of a deleted sandbox that somehow survived never shares a uid with a fresh one soon.
 * No I/O: the owner (a runtime) acquires at create and releases once the sandbox is gone.
 */
import { assert } from '../../shared/assert.js';

export interface UidRanges {
  /** Inclusive bounds of the uids handed to sandboxes without egress. */
  noEgress: readonly [number, number];
  /** Inclusive bounds of the uids handed to sandboxes with egress. */
  egress: readonly [number, number];
}

export interface SandboxUids {
  readonly ranges: UidRanges;
  /** A free uid of the right half, or undefined when that half is exhausted. */
  acquire(egress: boolean): number | undefined;
  /** Gives a uid back; releasing one that is not held is a bug. */
  release(uid: number): void;
  /** Uids held now. */
  inUse(): number;
}

/** Splits the configured inclusive range [first, last] into the two halves. */
export function splitUidRange(range: readonly [number, number]): UidRanges {
  const [first, last] = range;
  assert(Number.isInteger(first) && Number.isInteger(last) && last > first, 'bad uid range');
  assert(first > 0, 'uid 0 is root and never a sandbox uid');
  const mid = first + Math.ceil((last - first + 1) / 2);
  return { noEgress: [first, mid - 1], egress: [mid, last] };
}

export function createSandboxUids(range: readonly [number, number]): SandboxUids {
  const ranges = splitUidRange(range);
  const pools = { noEgress: new UidQueue(ranges.noEgress), egress: new UidQueue(ranges.egress) };
  const held = new Set<number>();
  return {
    ranges,
    acquire(egress) {
      const uid = (egress ? pools.egress : pools.noEgress).take();
      if (uid !== undefined) held.add(uid);
      return uid;
    },
    release(uid) {
      assert(held.delete(uid), `uid ${uid} released but not held`);
      const [lo, hi] = ranges.egress;
      (uid >= lo && uid <= hi ? pools.egress : pools.noEgress).give(uid);
    },
    inUse: () => held.size,
  };
}

/** FIFO of free uids in [lo, hi], materialised lazily (a range may hold millions). */
class UidQueue {
  private next: number;
  private readonly returned: number[] = [];
  private head = 0;

  constructor(private readonly range: readonly [number, number]) {
    this.next = range[0];
  }

  take(): number | undefined {
    // Fresh uids first: a never-used uid is the safest; returned ones only when none is left.
    if (this.next <= this.range[1]) return this.next++;
    if (this.head === this.returned.length) return undefined;
    const uid = this.returned[this.head++];
    if (this.head > 1024 && this.head * 2 > this.returned.length) {
      this.returned.splice(0, this.head);
      this.head = 0;
    }
    return uid;
  }

  give(uid: number): void {
    this.returned.push(uid);
  }
}

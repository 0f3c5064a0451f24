/**
 * @module worker/runtime/port-allocator
 * Hands out host ports from a fixed inclusive range, O(1) per acquire and release.
 *
 * Free ports sit in a FIFO ring, so a released port goes to the back and is reused as late as
 * possible (a foreign process that grabbed it, or a slow kernel teardown, has the longest time
 * to go away). `held` marks ports our own sandboxes own, so a port is never handed out twice.
 *
 *   ring:  [ 20003 20004 ... 29999 20000 20001 ]   head -> next acquire, tail <- release
 *             ^head                        ^tail-1
 */
import { assert } from '../../shared/assert.js';

/** A range this large would cost more memory than it is worth (65,536 ports is all of them). */
const portRangeSizeMax = 65_536;

export interface PortAllocator {
  /** The next free port, or undefined when every port of the range is held. */
  acquire(): number | undefined;
  /** Gives a held port back. Releasing a port that is not held is a bug. */
  release(port: number): void;
  isHeld(port: number): boolean;
  readonly freeCount: number;
  readonly size: number;
}

export function createPortAllocator(range: readonly [number, number]): PortAllocator {
  const [first, last] = range;
  assert(Number.isInteger(first) && Number.isInteger(last), 'port range must be integers');
  assert(first >= 1 && last <= 65_535, `port range [${first}, ${last}] outside [1, 65535]`);
  assert(first <= last, `port range [${first}, ${last}] is empty`);
  const size = last - first + 1;
  assert(size <= portRangeSizeMax, 'port range too large');

  const ring = new Uint16Array(size);
  const held = new Uint8Array(size);
  for (let i = 0; i < size; i++) ring[i] = first + i;
  let head = 0;
  let freeCount = size;

  return {
    acquire(): number | undefined {
      if (freeCount === 0) return undefined;
      const port = ring[head];
      head = (head + 1) % size;
      freeCount -= 1;
      assert(held[port - first] === 0, `port ${port} handed out twice`);
      held[port - first] = 1;
      return port;
    },
    release(port: number): void {
      assert(port >= first && port <= last, `port ${port} outside [${first}, ${last}]`);
      assert(held[port - first] === 1, `port ${port} released but not held`);
      held[port - first] = 0;
      ring[(head + freeCount) % size] = port;
      freeCount += 1;
      assert(freeCount <= size, 'more free ports than the range holds');
    },
    isHeld: (port) => port >= first && port <= last && held[port - first] === 1,
    get freeCount() {
      return freeCount;
    },
    size,
  };
}

export interface CheckedPort {
  /** A held port that passed the check, or undefined when none did. */
  port: number | undefined;
  /** Ports that failed the check; they were released to the back of the ring. */
  busy: number[];
}

/**
 * Acquires ports until `isFree` accepts one, trying at most `skipsMax + 1` ports. Ports it
 * rejects (a foreign process listens there) go back to the end of the ring, to be retried last.
 */
export async function acquireCheckedPort(
  ports: PortAllocator,
  isFree: (port: number) => Promise<boolean>,
  skipsMax: number,
): Promise<CheckedPort> {
  assert(Number.isInteger(skipsMax) && skipsMax >= 0, 'skipsMax must be a count');
  const busy: number[] = [];
  let port: number | undefined;
  for (let skips = 0; skips <= skipsMax; skips++) {
    port = ports.acquire();
    if (port === undefined || (await isFree(port))) break;
    busy.push(port);
    port = undefined;
  }
  for (const held of busy) ports.release(held);
  return { port, busy };
}

/**
 * Port allocator: hands out every port of the range once, reuses released ports last (FIFO),
 * and treats double release as a bug. Method: drive a small range by hand.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AssertionError } from '../../shared/assert.js';
import { acquireCheckedPort, createPortAllocator } from './port-allocator.js';

describe('port allocator', () => {
  it('hands out each port once, then nothing', () => {
    const ports = createPortAllocator([100, 103]);
    const got = [ports.acquire(), ports.acquire(), ports.acquire(), ports.acquire()];
    assert.deepEqual(got, [100, 101, 102, 103]);
    assert.equal(ports.acquire(), undefined);
    assert.equal(ports.freeCount, 0);
    assert.equal(ports.isHeld(102), true);
  });

  it('reuses a released port only after every other free port', () => {
    const ports = createPortAllocator([100, 102]);
    const first = ports.acquire();
    assert.equal(first, 100);
    ports.release(100);
    assert.deepEqual([ports.acquire(), ports.acquire(), ports.acquire()], [101, 102, 100]);
    ports.release(102);
    ports.release(101);
    assert.deepEqual([ports.acquire(), ports.acquire()], [102, 101]);
  });

  it('rejects releasing a port that is not held', () => {
    const ports = createPortAllocator([100, 101]);
    assert.throws(() => ports.release(100), AssertionError);
    assert.throws(() => ports.release(99), AssertionError);
    assert.throws(() => createPortAllocator([5, 4]), AssertionError);
  });
});

describe('acquireCheckedPort', () => {
  it('skips ports that fail the check and retries them last', async () => {
    const ports = createPortAllocator([100, 103]);
    const taken = new Set([100, 101]);
    const got = await acquireCheckedPort(ports, async (p) => !taken.has(p), 4);
    assert.deepEqual(got, { port: 102, busy: [100, 101] });
    assert.deepEqual([ports.acquire(), ports.acquire(), ports.acquire()], [103, 100, 101]);
  });

  it('gives up after skipsMax rejections', async () => {
    const ports = createPortAllocator([100, 109]);
    const got = await acquireCheckedPort(ports, async () => false, 2);
    assert.deepEqual(got, { port: undefined, busy: [100, 101, 102] });
    assert.equal(ports.freeCount, 10);
  });
});

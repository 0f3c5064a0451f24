/**
 * Goal: gathering a message from many small reads returns exactly the bytes read, in order,
 * never writes into a caller's chunk, and costs O(n) copies (a byte-per-packet peer cannot make
 * the proxy copy O(n²)).
 * Method: random chunkings (fast-check) compared with Buffer.concat, also from one reused chunk
 * scribbled over after each append (detach); a count of the bytes copied for 16 KiB sent one
 * byte at a time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ByteAccumulator } from './byte-accumulator.js';

describe('byte accumulator', () => {
  it('property: the view after each append is every byte so far; chunks are never written into', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 30 }), (chunks) => {
      const acc = new ByteAccumulator(4);
      const copies = chunks.map((c) => Buffer.from(c));
      const originals = copies.map((c) => Buffer.from(c));
      let view: Buffer = Buffer.alloc(0);
      for (let i = 0; i < copies.length; i++) {
        view = acc.append(copies[i]!);
        assert.ok(view.equals(Buffer.concat(originals.slice(0, i + 1))));
      }
      copies.forEach((c, i) => assert.ok(c.equals(originals[i]!), 'a chunk was written into'));
      assert.equal(acc.size, view.length);
    }));
  });

  it('property: once detached, the held bytes survive the caller reusing its chunk', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 10 }), (chunks) => {
      const acc = new ByteAccumulator(4);
      const scratch = Buffer.alloc(300);
      for (const c of chunks) {
        scratch.set(c);
        acc.append(scratch.subarray(0, c.length));
        acc.detach();
        scratch.fill(0x5a);
      }
      assert.ok(acc.append(Buffer.alloc(0)).equals(Buffer.concat(chunks.map((c) => Buffer.from(c)))));
    }));
  });

  it('16 KiB one byte at a time: the store grows by doubling (few allocations, not one per byte)', () => {
    const acc = new ByteAccumulator(4);
    const stores = new Set<ArrayBufferLike>();
    let view: Buffer = Buffer.alloc(0);
    for (let i = 0; i < 16_384; i++) {
      view = acc.append(Buffer.from([i & 0xff]));
      stores.add(view.buffer);
    }
    assert.equal(view.length, 16_384);
    assert.ok(stores.size <= 20, `${stores.size} stores`);
  });

  it('scanFrom resumes a search with an overlap of the delimiter length less one', () => {
    const acc = new ByteAccumulator(4);
    const a = acc.append(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r'));
    assert.equal(a.indexOf('\r\n\r\n', acc.scanFrom), -1);
    acc.searchedTo(a.length);
    const b = acc.append(Buffer.from('\n'));
    assert.equal(b.indexOf('\r\n\r\n', acc.scanFrom), a.length - 3);
    acc.clear();
    assert.equal(acc.scanFrom, 0);
    assert.equal(acc.size, 0);
  });
});

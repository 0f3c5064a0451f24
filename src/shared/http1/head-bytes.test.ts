/**
 * HeadBytes: the bytes of a head built piece by piece are those a socket writes for the same
 * string with 'latin1' (the encoding heads were written in before), at any length (the buffer
 * grows), followed by a body's bytes or a string's UTF-8. Method: fast-check over pieces of any
 * UTF-16 text and any numbers, against Buffer.from.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { HeadBytes } from './head-bytes.js';

const piece = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }), fc.nat(), fc.integer(), fc.double());

test('property: pieces and numbers give the Latin-1 bytes of their concatenation; body and text follow', () => {
  fc.assert(fc.property(fc.array(piece, { maxLength: 80 }), fc.uint8Array({ maxLength: 64 }), fc.string({ unit: 'binary', maxLength: 30 }), (pieces, body, text) => {
    const hb = new HeadBytes(8); // small, so most heads grow it
    hb.put('stale bytes of the head before');
    hb.reset();
    for (const p of pieces) if (typeof p === 'number') hb.putInt(p); else hb.put(p);
    const expected = Buffer.from(pieces.map(String).join(''), 'latin1');
    assert.deepEqual(hb.take(), expected);
    assert.deepEqual(hb.takeWith(body), Buffer.concat([expected, body]));
    assert.deepEqual(hb.takeWithText(text), Buffer.concat([expected, Buffer.from(text, 'utf8')]));
    assert.equal(hb.length, expected.length);
  }), { numRuns: 300 });
});

test('a status line and a length, as an answer writes them', () => {
  const hb = new HeadBytes();
  hb.put('HTTP/1.1 ');
  hb.putInt(200);
  hb.put(' OK\r\ncontent-length: ');
  hb.putInt(0);
  hb.put('\r\n\r\n');
  assert.equal(hb.take().toString('latin1'), 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
});

/**
 * Goal: the deframer hands out exactly the bodies that were framed, however the bytes are cut
 * into chunks, and refuses what this link never accepts; a call's status is read as gRPC defines.
 * Method: a property test against the framing of random bodies split at random points; fixed
 * cases for the limits and for the status headers.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MessageDeframer, framed, grpcPrefixBytes, grpcStatus, percentEncoded, statusOfReset, statusOfTrailers, statusTrailers } from './frames.js';

function cutAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    parts.push(bytes.subarray(from, p));
    from = p;
  }
  parts.push(bytes.subarray(from));
  return parts;
}

describe('MessageDeframer', () => {
  it('gives back every framed body in order, for any split into chunks', () => {
    fc.assert(fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (bodies, cuts) => {
        const wire = Buffer.concat(bodies.map((b) => framed(b)));
        const d = new MessageDeframer(1024);
        const got: Buffer[] = [];
        for (const chunk of cutAt(wire, cuts)) assert.equal(d.push(chunk, (b) => got.push(Buffer.from(b))), null);
        assert.deepEqual(got.map((b) => b.toString('hex')), bodies.map((b) => Buffer.from(b).toString('hex')));
        assert.equal(d.pendingBytes, 0);
      },
    ));
  });

  it('keeps a partial message as pending until its last byte', () => {
    const d = new MessageDeframer(1024);
    const wire = framed(Buffer.from('hello'));
    const got: string[] = [];
    d.push(wire.subarray(0, 3), (b) => got.push(b.toString()));
    d.push(wire.subarray(3, 8), (b) => got.push(b.toString()));
    assert.equal(got.length, 0);
    assert.equal(d.pendingBytes, 8);
    d.push(wire.subarray(8), (b) => got.push(b.toString()));
    assert.deepEqual(got, ['hello']);
    assert.equal(d.pendingBytes, 0);
  });

  it('refuses a body above the limit from its prefix alone, and stays stopped', () => {
    const d = new MessageDeframer(10);
    const prefix = Buffer.from([0, 0, 0, 0, 11]);
    const fault = d.push(prefix, () => assert.fail('no body may come out'));
    assert.equal(fault?.code, grpcStatus.RESOURCE_EXHAUSTED);
    assert.match(fault?.details ?? '', /11 bytes, above the limit of 10/);
    assert.equal(d.push(framed(Buffer.from('ok')), () => assert.fail('stopped')), fault);
  });

  it('refuses a compressed message (this link offers no encoding)', () => {
    const d = new MessageDeframer(1024);
    const wire = framed(Buffer.from('zz'));
    wire[0] = 1;
    assert.equal(d.push(wire, () => assert.fail('no body'))?.code, grpcStatus.INTERNAL);
  });

  it('hands out an empty message (an all-default protobuf)', () => {
    const d = new MessageDeframer(1024);
    const got: number[] = [];
    d.push(Buffer.concat([framed(Buffer.alloc(0)), framed(Buffer.alloc(0))]), (b) => got.push(b.length));
    assert.deepEqual(got, [0, 0]);
    assert.equal(grpcPrefixBytes, 5);
  });
});

describe('statusOfTrailers', () => {
  it('reads the code and the percent-encoded message', () => {
    assert.deepEqual(statusOfTrailers({ 'grpc-status': '16', 'grpc-message': 'refused%3A need a token' }, 200), { code: 16, details: 'refused: need a token' });
    assert.deepEqual(statusOfTrailers({ 'grpc-status': '0' }, 200), { code: 0, details: '' });
  });

  it('keeps a message that is not valid percent-encoding as it came', () => {
    assert.equal(statusOfTrailers({ 'grpc-status': '2', 'grpc-message': 'bad %zz' }, 200).details, 'bad %zz');
  });

  it('turns a missing or malformed grpc-status into UNKNOWN, never OK', () => {
    assert.equal(statusOfTrailers({}, 200).code, grpcStatus.UNKNOWN);
    assert.equal(statusOfTrailers({ 'grpc-status': '17' }, 200).code, grpcStatus.UNKNOWN);
    assert.equal(statusOfTrailers({ 'grpc-status': '-1' }, 200).code, grpcStatus.UNKNOWN);
    assert.equal(statusOfTrailers({ 'grpc-status': '0x0' }, 200).code, grpcStatus.UNKNOWN);
  });

  it('maps an HTTP error without grpc-status as gRPC says', () => {
    assert.equal(statusOfTrailers({}, 401).code, grpcStatus.UNAUTHENTICATED);
    assert.equal(statusOfTrailers({}, 404).code, grpcStatus.UNIMPLEMENTED);
    assert.equal(statusOfTrailers({}, 503).code, grpcStatus.UNAVAILABLE);
    assert.equal(statusOfTrailers({}, 500).code, grpcStatus.UNKNOWN);
  });
});

describe('statusOfReset', () => {
  it("maps the server's RST_STREAM codes as gRPC says", () => {
    assert.equal(statusOfReset(0x7).code, grpcStatus.UNAVAILABLE);
    assert.equal(statusOfReset(0x8).code, grpcStatus.CANCELLED);
    assert.equal(statusOfReset(0xb).code, grpcStatus.RESOURCE_EXHAUSTED);
    assert.equal(statusOfReset(0xc).code, grpcStatus.PERMISSION_DENIED);
    assert.equal(statusOfReset(0x2).code, grpcStatus.INTERNAL);
    assert.equal(statusOfReset(0x0).code, grpcStatus.INTERNAL);
  });
});

describe('statusTrailers', () => {
  it('any status survives the trip through trailers, and grpc-message is printable ASCII', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 16 }), fc.string({ unit: 'grapheme', maxLength: 80 }), (code, details) => {
      const trailers = statusTrailers({ code, details });
      const message = trailers['grpc-message'] ?? '';
      assert.match(message, /^[\x20-\x7e]*$/);
      assert.deepEqual(statusOfTrailers(trailers, 200), { code, details });
    }));
  });

  it('leaves printable text as it is and encodes only what it must', () => {
    assert.equal(percentEncoded('refused: no token (see --cluster-token-file)'), 'refused: no token (see --cluster-token-file)');
    assert.equal(percentEncoded('50% done\nnext'), '50%25 done%0Anext');
    assert.equal(percentEncoded('ü'), '%C3%BC');
    assert.deepEqual(statusTrailers({ code: 0, details: '' }), { 'grpc-status': '0' });
  });
});

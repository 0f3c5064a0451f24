/**
 * Goal: the compiled stream codec is protobuf, byte-compatible with protobuf-es both ways, so a
 * peer running either reads the other, and what it decodes is the object protobuf-es would give
 * the shells. Method: fast-check over schema-shaped hostile messages of every stream message
 * type (every oneof case, nested messages, lists, maps, NaN, -0, long and non-ASCII strings):
 * (1) our bytes decode with protobuf-es to what its own bytes decode to; (2) we decode its bytes
 * to the same object; (3) arbitrary bytes give our decode Error or a well-formed message (one
 * that encodes and reads back the same). Hand-checked bytes pin the edges, among them where we
 * differ on purpose: a field sent with the wrong wire type is skipped as unknown (protobuf-es
 * reads the bytes as the declared type anyway).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { create, fromBinary, toBinary, type DescMessage } from '@bufbuild/protobuf';
import {
  DataPlaneBatchSchema,
  FunctionSpecSchema,
  ResourcesSchema,
  RoutingBatchSchema,
  SandboxFailedSchema,
  WorkerBatchSchema,
  WorkerCommandBatchSchema,
  WorkerEventSchema,
} from '../gen/dirigent/v1/cluster_pb.js';
import { DescriptorSchema } from '../gen/containerd/types/types_pb.js';
import { message } from './schema-arbitrary.testkit.js';
import { fastCodec } from './fast-codec.js';

const streamMessages: [string, DescMessage][] = [
  ['WorkerBatch (worker -> CP)', WorkerBatchSchema],
  ['WorkerCommandBatch (CP -> worker)', WorkerCommandBatchSchema],
  ['DataPlaneBatch (DP -> CP)', DataPlaneBatchSchema],
  ['RoutingBatch (CP -> DP)', RoutingBatchSchema],
];

/** protobuf-es keeps unknown fields in `$unknown`; we skip them. Everything else must match. */
function known(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(known);
  if (v instanceof Uint8Array || v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (k !== '$unknown') out[k] = known(x);
  return out;
}

function pbBytes(desc: DescMessage, init: Record<string, unknown>): Uint8Array | null {
  try {
    return toBinary(desc, create(desc, init));
  } catch {
    return null; // a value protobuf itself refuses (out of range): not a message a peer sends
  }
}

describe('fast codec against protobuf-es', () => {
  for (const [what, desc] of streamMessages) {
    const codec = fastCodec(desc);

    test(`${what}: our bytes decode with protobuf-es to what its bytes decode to`, () => {
      fc.assert(fc.property(message(desc), (init) => {
        const theirs = pbBytes(desc, init);
        if (theirs === null) return;
        const msg = create(desc, init);
        assert.deepEqual(known(fromBinary(desc, codec.encode(msg))), known(fromBinary(desc, theirs)));
      }), { numRuns: 400 });
    });

    test(`${what}: the framed encoding is gRPC's 5-byte prefix before the same bytes`, () => {
      fc.assert(fc.property(message(desc), (init) => {
        if (pbBytes(desc, init) === null) return;
        const msg = create(desc, init);
        const body = codec.encode(msg);
        const wire = codec.encodeFramed(msg);
        assert.equal(wire[0], 0, 'uncompressed');
        assert.equal(wire.readUInt32BE(1), body.length);
        assert.deepEqual(wire.subarray(5), body);
      }), { numRuns: 200 });
    });

    test(`${what}: a plain object (no $typeName, fields left out) encodes as create() of it`, () => {
      // wire/codec hands the codec plain objects, not protobuf-es messages.
      fc.assert(fc.property(message(desc), (init) => {
        const theirs = pbBytes(desc, init);
        if (theirs === null) return;
        assert.deepEqual(known(fromBinary(desc, codec.encode(init))), known(fromBinary(desc, theirs)));
      }), { numRuns: 400 });
    });

    test(`${what}: we decode protobuf-es bytes to the object protobuf-es decodes`, () => {
      fc.assert(fc.property(message(desc), (init) => {
        const theirs = pbBytes(desc, init);
        if (theirs === null) return;
        assert.deepEqual(known(codec.decode(theirs)), known(fromBinary(desc, theirs)));
      }), { numRuns: 400 });
    });

    test(`${what}: arbitrary bytes: an Error or a well-formed message`, () => {
      fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        let got: unknown;
        try {
          got = codec.decode(bytes);
        } catch (e) {
          assert.ok(e instanceof Error && e.message.startsWith('protobuf decode: '), String(e));
          return;
        }
        // What we decoded is a message of the type: it encodes, and protobuf-es reads it back.
        assert.deepEqual(known(fromBinary(desc, codec.encode(got))), known(got));
      }), { numRuns: 3000 });
    });
  }
});

describe('fast codec: hand-checked bytes', () => {
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

  test('varints, implicit presence and field order', () => {
    // cpu_millis = 300 (field 1, varint: 0x08, 0xac 0x02); memory_mib = 0 is left out.
    assert.equal(hex(fastCodec(ResourcesSchema).encode(create(ResourcesSchema, { cpuMillis: 300 }))), '08ac02');
    assert.equal(hex(fastCodec(ResourcesSchema).encode(create(ResourcesSchema, {}))), '');
    // 2^32 - 1 takes five bytes.
    assert.equal(hex(fastCodec(ResourcesSchema).encode(create(ResourcesSchema, { memoryMib: 0xffffffff }))), '10ffffffff0f');
  });

  test('an unknown enum value round-trips; a negative one takes ten bytes', () => {
    const codec = fastCodec(SandboxFailedSchema);
    const neg = create(SandboxFailedSchema, { kind: -1 as never });
    assert.equal(hex(codec.encode(neg)), '18ffffffffffffffffff01');
    assert.equal((codec.decode(codec.encode(neg)) as { kind: number }).kind, -1);
    assert.equal(hex(toBinary(SandboxFailedSchema, neg)), '18ffffffffffffffffff01');
  });

  test('a set oneof case is written even at its default; -0 is a default, as protobuf-es has it', () => {
    const codec = fastCodec(WorkerEventSchema);
    const deleted = create(WorkerEventSchema, { event: { case: 'deleted', value: {} } });
    assert.equal(hex(codec.encode(deleted)), '2a00');
    const back = codec.decode(codec.encode(deleted)) as { event: { case: string } };
    assert.equal(back.event.case, 'deleted');
    const hb = create(WorkerEventSchema, { event: { case: 'ready', value: { breakdown: { totalMs: -0 } } } });
    assert.equal(hex(codec.encode(hb)), hex(toBinary(WorkerEventSchema, hb)));
    assert.equal(hex(codec.encode(hb)), '1a021200');
  });

  test('a known field with the wrong wire type is skipped, later fields still read', () => {
    const codec = fastCodec(WorkerCommandBatchSchema);
    // term (field 2, a double) sent as varint 5, then leader_address (field 3) = "a".
    const m = codec.decode(Uint8Array.from([0x10, 0x05, 0x1a, 0x01, 0x61])) as { term: number; leaderAddress: string };
    assert.equal(m.term, 0);
    assert.equal(m.leaderAddress, 'a');
  });

  test('a map key named like an Object.prototype member survives: "__proto__" and "constructor" are entries', () => {
    // A function's env may name a variable __proto__ (the API accepts it); it must reach the
    // worker. protobuf-es drops that key when it decodes; our decoder must not.
    const codec = fastCodec(FunctionSpecSchema);
    const env: Record<string, string> = Object.fromEntries([['__proto__', 'p'], ['constructor', 'c'], ['PATH', '/bin']]);
    const back = codec.decode(codec.encode({ name: 'f', env })) as { env: Record<string, string> };
    assert.deepEqual(Object.entries(back.env), [['__proto__', 'p'], ['constructor', 'c'], ['PATH', '/bin']]);
    assert.equal(Object.getPrototypeOf(back.env), Object.prototype, 'the map is still a plain object');
  });

  test('non-ASCII and long strings survive both paths', () => {
    const codec = fastCodec(SandboxFailedSchema);
    for (const reason of ['naïve ✓ 😀', 'x'.repeat(65), 'é'.repeat(100), '\ud800 lone']) {
      const m = create(SandboxFailedSchema, { reason });
      assert.equal(hex(codec.encode(m)), hex(toBinary(SandboxFailedSchema, m)));
      assert.equal((codec.decode(codec.encode(m)) as { reason: string }).reason, fromBinary(SandboxFailedSchema, toBinary(SandboxFailedSchema, m)).reason);
    }
  });

  test('truncated input is refused with an Error, never a partial message', () => {
    const codec = fastCodec(WorkerBatchSchema);
    const full = codec.encode(create(WorkerBatchSchema, { events: [{ event: { case: 'failed', value: { sandboxId: 'sb-1', reason: 'exit code 1' } } }] }));
    for (let cut = 1; cut < full.length; cut += 1) {
      assert.throws(() => codec.decode(full.subarray(0, cut)), /protobuf decode: truncated/);
    }
  });

  test('a schema outside what it compiles is refused when compiled, naming the field', () => {
    // containerd's Descriptor has an int64 size.
    assert.throws(() => fastCodec(DescriptorSchema), /fast-codec: scalar type INT64 of containerd\.types\.Descriptor\.size is not supported/);
  });
});

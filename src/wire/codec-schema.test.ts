/**
 * Goal: every stream decoder (worker->CP events, CP->worker commands and batch headers, DP->CP
 * events, CP->DP routing updates and batch headers) takes any message a peer can put on the wire
 * without throwing: it yields a message or an error naming a field. Unlike raw random bytes, which
 * protobuf mostly refuses or decodes to empty messages, these messages are built from the schema
 * itself (every oneof case, nested messages, lists, maps) with hostile leaf values, then sent
 * through real protobuf bytes. Method: fast-check over a generator driven by the descriptors.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { create, fromBinary, toBinary, ScalarType, type DescField, type DescMessage } from '@bufbuild/protobuf';
import {
  DataPlaneEventSchema,
  RoutingBatchSchema,
  RoutingUpdateSchema,
  WorkerCommandBatchSchema,
  WorkerCommandSchema,
  WorkerEventSchema,
} from '../gen/dirigent/v1/cluster_pb.js';
import { decodeBatchHeader, decodeDataPlaneEvent, decodeRoutingUpdate, decodeWorkerCommand, decodeWorkerEvent } from './codec.js';

/** Nesting of generated messages; the schema's real depth is 3. */
const messageDepthMax = 4;

const hostileString = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '\0', '../..', '__proto__', 'a:1:2', '127.0.0.1:0') },
  { weight: 1, arbitrary: fc.integer({ min: 200, max: 10_000 }).map((n) => 'x'.repeat(n)) },
);
const hostileDouble = fc.oneof(fc.double(), fc.constantFrom(-1, -0, Number.NaN, Infinity, -Infinity, 2 ** 53, 1e300, 0.5));

function scalar(t: ScalarType): fc.Arbitrary<unknown> {
  switch (t) {
    case ScalarType.STRING: return hostileString;
    case ScalarType.BOOL: return fc.boolean();
    case ScalarType.DOUBLE: case ScalarType.FLOAT: return hostileDouble;
    case ScalarType.UINT32: case ScalarType.FIXED32: return fc.oneof(fc.nat({ max: 2 ** 32 - 1 }), fc.constantFrom(0, 2 ** 32 - 1));
    case ScalarType.INT32: case ScalarType.SINT32: case ScalarType.SFIXED32: return fc.integer();
    case ScalarType.BYTES: return fc.uint8Array({ maxLength: 20 });
    default: return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
  }
}

function field(f: DescField, depth: number): fc.Arbitrary<unknown> {
  switch (f.fieldKind) {
    case 'scalar': return scalar(f.scalar);
    case 'enum': return fc.constantFrom(...f.enum.values.map((v) => v.number), 99);
    case 'message': return message(f.message, depth + 1);
    case 'list': {
      const item = f.listKind === 'scalar' ? scalar(f.scalar) : f.listKind === 'enum' ? fc.constant(0) : message(f.message, depth + 1);
      return fc.array(item, { maxLength: depth >= messageDepthMax ? 0 : 3 });
    }
    case 'map': {
      const value = f.mapKind === 'scalar' ? scalar(f.scalar) : f.mapKind === 'enum' ? fc.constant(0) : message(f.message, depth + 1);
      return fc.dictionary(fc.string({ maxLength: 10 }), value, { maxKeys: depth >= messageDepthMax ? 0 : 3 });
    }
  }
}

/** An init object for `create(desc, ...)`: some plain fields, and one case of every oneof. */
function message(desc: DescMessage, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  if (depth > messageDepthMax) return fc.constant({});
  const plain: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of desc.fields) if (!f.oneof) plain[f.localName] = field(f, depth);
  const oneofs: Record<string, fc.Arbitrary<unknown>> = {};
  for (const o of desc.oneofs) {
    oneofs[o.localName] = fc.oneof(...o.fields.map((f) => field(f, depth).map((value) => ({ case: f.localName, value }))));
  }
  return fc.tuple(fc.record(plain, { requiredKeys: [] }), fc.record(oneofs, { requiredKeys: [] })).map(([a, b]) => ({ ...a, ...b }));
}

/** The message as a peer's bytes would arrive, or null when protobuf itself cannot encode it. */
function overTheWire(desc: DescMessage, init: Record<string, unknown>): unknown {
  let bytes: Uint8Array;
  try {
    bytes = toBinary(desc, create(desc, init));
  } catch {
    return null;
  }
  return fromBinary(desc, bytes);
}

type Decoder = (m: never) => { ok: boolean; field?: string };
const decoders: [string, DescMessage, Decoder][] = [
  ['worker -> CP event', WorkerEventSchema, decodeWorkerEvent as Decoder],
  ['CP -> worker command', WorkerCommandSchema, decodeWorkerCommand as Decoder],
  ['CP -> worker batch header', WorkerCommandBatchSchema, decodeBatchHeader as Decoder],
  ['DP -> CP event', DataPlaneEventSchema, decodeDataPlaneEvent as Decoder],
  ['CP -> DP routing update', RoutingUpdateSchema, decodeRoutingUpdate as Decoder],
  ['CP -> DP batch header', RoutingBatchSchema, decodeBatchHeader as Decoder],
];

describe('stream decoders against schema-shaped hostile messages', () => {
  for (const [what, desc, decode] of decoders) {
    test(`${what}: never throws; an error names a field`, () => {
      let accepted = 0;
      fc.assert(fc.property(message(desc), (init) => {
        const msg = overTheWire(desc, init);
        if (msg === null) return;
        let d: { ok: boolean; field?: string };
        try {
          d = decode(msg as never);
        } catch (e) {
          assert.fail(`threw ${String(e)}`);
        }
        if (d.ok) accepted += 1;
        else assert.ok(typeof d.field === 'string' && d.field.length > 0, JSON.stringify(d));
      }), { numRuns: 1500 });
      // The generator is not so hostile that nothing passes: good messages are exercised too.
      assert.ok(accepted > 0, `${what}: no generated message was accepted`);
    });
  }
});

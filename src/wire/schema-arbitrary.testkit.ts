/**
 * @module wire/schema-arbitrary.testkit
 * Test support: fast-check generators of stream messages driven by the protobuf descriptors
 * (every oneof case, nested messages, lists, maps) with hostile leaf values, and the trip through
 * real protobuf bytes that a peer's message takes. Used by the decoder and core property tests.
 */
import fc from 'fast-check';
import { create, fromBinary, toBinary, ScalarType, type DescField, type DescMessage } from '@bufbuild/protobuf';

/** Nesting of generated messages; the schema's real depth is 3. */
const messageDepthMax = 4;

export const hostileString = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '\0', '../..', '__proto__', 'a:1:2', '127.0.0.1:0') },
  { weight: 1, arbitrary: fc.integer({ min: 200, max: 10_000 }).map((n) => 'x'.repeat(n)) },
);
export const hostileDouble = fc.oneof(fc.double(), fc.constantFrom(-1, -0, Number.NaN, Infinity, -Infinity, 2 ** 53, 1e300, 0.5));

/** The leaf values of generated messages. */
export interface Leaves { strings: fc.Arbitrary<string>; doubles: fc.Arbitrary<number>; uints: fc.Arbitrary<number> }
export const hostileUint = fc.oneof(fc.nat({ max: 2 ** 32 - 1 }), fc.constantFrom(0, 1, 65_535, 65_536, 2 ** 32 - 1));
const hostileLeaves: Leaves = { strings: hostileString, doubles: hostileDouble, uints: hostileUint };

function scalar(t: ScalarType, leaves: Leaves): fc.Arbitrary<unknown> {
  switch (t) {
    case ScalarType.STRING: return leaves.strings;
    case ScalarType.BOOL: return fc.boolean();
    case ScalarType.DOUBLE: case ScalarType.FLOAT: return leaves.doubles;
    case ScalarType.UINT32: case ScalarType.FIXED32: return leaves.uints;
    case ScalarType.INT32: case ScalarType.SINT32: case ScalarType.SFIXED32: return fc.integer();
    case ScalarType.BYTES: return fc.uint8Array({ maxLength: 20 });
    default: return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
  }
}

function field(f: DescField, depth: number, s: Leaves): fc.Arbitrary<unknown> {
  switch (f.fieldKind) {
    case 'scalar': return scalar(f.scalar, s);
    case 'enum': return fc.constantFrom(...f.enum.values.map((v) => v.number), 99);
    case 'message': return message(f.message, s, depth + 1);
    case 'list': {
      const item = f.listKind === 'scalar' ? scalar(f.scalar, s) : f.listKind === 'enum' ? fc.constant(0) : message(f.message, s, depth + 1);
      return fc.array(item, { maxLength: depth >= messageDepthMax ? 0 : 3 });
    }
    case 'map': {
      const value = f.mapKind === 'scalar' ? scalar(f.scalar, s) : f.mapKind === 'enum' ? fc.constant(0) : message(f.message, s, depth + 1);
      return fc.dictionary(fc.string({ maxLength: 10 }), value, { maxKeys: depth >= messageDepthMax ? 0 : 3 });
    }
  }
}

/** An init object for `create(desc, ...)`: some plain fields, and one case of every oneof. */
export function message(desc: DescMessage, s: Leaves = hostileLeaves, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  if (depth > messageDepthMax) return fc.constant({});
  const plain: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of desc.fields) if (!f.oneof) plain[f.localName] = field(f, depth, s);
  const oneofs: Record<string, fc.Arbitrary<unknown>> = {};
  for (const o of desc.oneofs) {
    oneofs[o.localName] = fc.oneof(...o.fields.map((f) => field(f, depth, s).map((value) => ({ case: f.localName, value }))));
  }
  return fc.tuple(fc.record(plain, { requiredKeys: [] }), fc.record(oneofs, { requiredKeys: [] })).map(([a, b]) => ({ ...a, ...b }));
}

/** The message as a peer's bytes would arrive, or null when protobuf itself cannot encode it. */
export function overTheWire(desc: DescMessage, init: Record<string, unknown>): unknown {
  let bytes: Uint8Array;
  try {
    bytes = toBinary(desc, create(desc, init));
  } catch {
    return null;
  }
  return fromBinary(desc, bytes);
}

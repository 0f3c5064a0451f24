/**
 * @module wire/fast-codec
 * A protobuf binary codec for the internal stream messages, compiled once per message type from
 * the protobuf-es descriptors into plain closures: no reflection per message, one exact-size
 * Buffer per encode, strings written and read without a TextEncoder round trip when ASCII.
 * protobuf-es's reflective `toBinary` took 6-17 µs per stream item and `fromBinary` 1.3-3.3 µs
 * (BENCHMARKS "Stream codec"); every cold start crosses four such items.
 *
 * What it produces is what protobuf-es's `fromBinary` produces (same object shape: `$typeName`,
 * defaults for absent scalars, `[]`, `{}`, `{ case: undefined }`, message fields left out), and
 * its bytes decode with protobuf-es to the same message; `fast-codec.test.ts` checks both ways
 * over schema-shaped hostile messages. Unknown fields are skipped (not kept in `$unknown`), and
 * so is a known field sent with the wrong wire type (protobuf-es would read its bytes as the
 * declared type regardless).
 *
 * Supported: proto3 implicit-presence scalars (string, bool, double, uint32, int32), enums,
 * messages, oneofs, repeated strings and messages, maps from strings to scalars. Anything else fails at compile time (module load), never on a live stream.
 *
 * Encoding is two passes over the message: `size` computes every length-delimited length
 * (strings' UTF-8 lengths and nested messages' sizes) into one list in pre-order, `write`
 * consumes the same list in the same order.
 */
import { ScalarType, type DescField, type DescMessage } from '@bufbuild/protobuf';
import { grpcPrefixBytes, writePrefix } from '../shared/grpc-link/frames.js';

const wireVarint = 0;
const wireFixed64 = 1;
const wireDelimited = 2;
const wireStartGroup = 3;
const wireEndGroup = 4;
const wireFixed32 = 5; // only skipped: no 32-bit fixed field in the schema
/** Strings this long or shorter are measured for UTF-8 in JS (an ASCII scan, no call into C++). */
const asciiFastLengthMax = 64;
/** Nested groups skipped in unknown fields before the input is refused. */
const groupDepthMax = 32;

type Obj = Record<string, unknown>;

/** Encoding scratch: lengths computed by `size`, consumed by `write`. */
class Lengths {
  list: number[] = [];
  next = 0;
}

class Writer {
  pos = 0;
  constructor(readonly buf: Buffer, readonly lengths: Lengths) {}
}

class Reader {
  pos: number;
  /** End of the message being read; nested messages narrow it and restore it. */
  end: number;
  constructor(readonly buf: Buffer, start: number, end: number) {
    this.pos = start;
    this.end = end;
  }
}

function fail(what: string): never {
  throw new Error(`protobuf decode: ${what}`);
}

// ---------------------------------------------------------------- primitives

function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  return 5;
}

/** An unsigned 32-bit value. */
function writeVarint(w: Writer, v: number): void {
  const buf = w.buf;
  let pos = w.pos;
  while (v >= 0x80) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
  w.pos = pos;
}

/** A signed 32-bit value: negatives take ten bytes, sign-extended to 64 bits as protobuf says. */
function writeInt32(w: Writer, v: number): void {
  if (v >= 0) return writeVarint(w, v);
  const buf = w.buf;
  let pos = w.pos;
  let lo = v >>> 0;
  for (let i = 0; i < 4; i += 1) {
    buf[pos++] = (lo & 0x7f) | 0x80;
    lo >>>= 7;
  }
  // Bits 28-31 of the low word, then 32 set bits of the high word.
  buf[pos++] = (lo & 0x0f) | 0x70 | 0x80;
  for (let i = 0; i < 4; i += 1) buf[pos++] = 0xff;
  buf[pos++] = 0x01;
  w.pos = pos;
}

function int32Size(v: number): number {
  return v < 0 ? 10 : varintSize(v);
}

/** The low 32 bits of a varint of up to ten bytes, as an unsigned number. */
function readVarint32(r: Reader): number {
  const buf = r.buf;
  let pos = r.pos;
  let result = 0;
  let shift = 0;
  for (let i = 0; i < 10; i += 1) {
    if (pos >= r.end) fail('truncated varint');
    const b = buf[pos++]!;
    if (shift < 32) result += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (b < 0x80) {
      r.pos = pos;
      return result % 0x1_0000_0000;
    }
  }
  return fail('varint longer than 10 bytes');
}

function skipBytes(r: Reader, n: number): void {
  if (n > r.end - r.pos) fail('truncated field');
  r.pos += n;
}

function skipField(r: Reader, wireType: number, fieldNo: number, depth: number): void {
  switch (wireType) {
    case wireVarint: readVarint32(r); return;
    case wireFixed64: skipBytes(r, 8); return;
    case wireDelimited: skipBytes(r, readVarint32(r)); return;
    case wireFixed32: skipBytes(r, 4); return;
    case wireStartGroup: {
      if (depth >= groupDepthMax) fail('groups nested too deep');
      for (;;) {
        if (r.pos >= r.end) fail('unterminated group');
        const tag = readVarint32(r);
        const wt = tag & 7;
        if (wt === wireEndGroup) {
          if (tag >>> 3 !== fieldNo) fail('group ended by another field');
          return;
        }
        skipField(r, wt, tag >>> 3, depth + 1);
      }
    }
    default: fail(`wire type ${wireType}`);
  }
}

/** UTF-8 length of a string; ASCII strings are counted without leaving JS. */
function utf8Length(s: string): number {
  const n = s.length;
  if (n <= asciiFastLengthMax) {
    let i = 0;
    while (i < n && s.charCodeAt(i) < 0x80) i += 1;
    if (i === n) return n;
  }
  return Buffer.byteLength(s, 'utf8');
}

function writeString(w: Writer, s: string, byteLength: number): void {
  if (byteLength === s.length && byteLength <= asciiFastLengthMax) {
    const buf = w.buf;
    let pos = w.pos;
    for (let i = 0; i < byteLength; i += 1) buf[pos++] = s.charCodeAt(i);
    w.pos = pos;
    return;
  }
  w.pos += w.buf.write(s, w.pos, byteLength, 'utf8');
}

/**
 * One call into Node's UTF-8 decoder, whatever the length. Building short ASCII strings a
 * character at a time in JS was 2-2.7x slower per string and made 14x the young-generation
 * garbage (each `+=` is a new string, and the result a chain of cons strings that a Map lookup
 * flattens again): on the CP it was the largest single source of allocation under cold starts.
 */
function readString(r: Reader): string {
  const n = readVarint32(r);
  if (n > r.end - r.pos) fail('truncated string');
  const start = r.pos;
  r.pos = start + n;
  return r.buf.toString('utf8', start, start + n);
}

function readDouble(r: Reader): number {
  if (r.end - r.pos < 8) fail('truncated double');
  const v = r.buf.readDoubleLE(r.pos);
  r.pos += 8;
  return v;
}

// ---------------------------------------------------------------- compiled field codecs

/** How one value (a field's value, a list item, a map key or value) is sized, written and read. */
interface ValueCodec {
  wireType: number;
  /** Whether this is the type's default (an implicit-presence field then stays off the wire). */
  isDefault(v: unknown): boolean;
  /** Bytes of the value itself (without tag); may push lengths for `write`. */
  size(v: unknown, l: Lengths): number;
  write(w: Writer, v: unknown): void;
  read(r: Reader): unknown;
  zero(): unknown;
}

const stringCodec: ValueCodec = {
  wireType: wireDelimited,
  isDefault: (v) => v === '' || v === undefined,
  size(v, l) {
    const n = utf8Length(v as string);
    l.list.push(n);
    return varintSize(n) + n;
  },
  write(w, v) {
    const n = w.lengths.list[w.lengths.next++]!;
    writeVarint(w, n);
    writeString(w, v as string, n);
  },
  read: readString,
  zero: () => '',
};

const boolCodec: ValueCodec = {
  wireType: wireVarint,
  isDefault: (v) => v !== true,
  size: () => 1,
  write(w, v) {
    w.buf[w.pos++] = v === true ? 1 : 0;
  },
  read: readVarintNonZero,
  zero: () => false,
};

/** Whether a varint of up to ten bytes has any bit set (a bool: 2^35 is true too). */
function readVarintNonZero(r: Reader): boolean {
  const buf = r.buf;
  let any = false;
  for (let i = 0; i < 10; i += 1) {
    if (r.pos >= r.end) fail('truncated varint');
    const b = buf[r.pos++]!;
    if ((b & 0x7f) !== 0) any = true;
    if (b < 0x80) return any;
  }
  return fail('varint longer than 10 bytes');
}

const doubleCodec: ValueCodec = {
  wireType: wireFixed64,
  // -0 === 0: left out like 0, as protobuf-es does.
  isDefault: (v) => v === undefined || v === 0,
  size: () => 8,
  write(w, v) {
    w.pos = w.buf.writeDoubleLE(v as number, w.pos);
  },
  read: readDouble,
  zero: () => 0,
};

const uint32Codec: ValueCodec = {
  wireType: wireVarint,
  isDefault: (v) => v === 0 || v === undefined,
  size: (v) => varintSize((v as number) >>> 0),
  write(w, v) {
    writeVarint(w, (v as number) >>> 0);
  },
  read: readVarint32,
  zero: () => 0,
};

const int32Codec: ValueCodec = {
  wireType: wireVarint,
  isDefault: (v) => v === 0 || v === undefined,
  size: (v) => int32Size((v as number) | 0),
  write(w, v) {
    writeInt32(w, (v as number) | 0);
  },
  read: (r) => readVarint32(r) | 0,
  zero: () => 0,
};

function scalarCodec(t: ScalarType, where: string): ValueCodec {
  switch (t) {
    case ScalarType.STRING: return stringCodec;
    case ScalarType.BOOL: return boolCodec;
    case ScalarType.DOUBLE: return doubleCodec;
    case ScalarType.UINT32: return uint32Codec;
    case ScalarType.INT32: return int32Codec;
    default: throw new Error(`fast-codec: scalar type ${ScalarType[t]} of ${where} is not supported`);
  }
}

function messageCodec(desc: DescMessage): ValueCodec {
  // Compiled lazily: the schema may refer to a message before it is compiled (or to itself).
  let c: MessageCodec | undefined;
  const get = (): MessageCodec => (c ??= compile(desc));
  return {
    wireType: wireDelimited,
    isDefault: (v) => v === undefined,
    size(v, l) {
      const at = l.list.length;
      l.list.push(0);
      const n = get().size(v as Obj, l);
      l.list[at] = n;
      return varintSize(n) + n;
    },
    write(w, v) {
      const n = w.lengths.list[w.lengths.next++]!;
      writeVarint(w, n);
      const end = w.pos + n;
      get().write(w, v as Obj);
      if (w.pos !== end) throw new Error(`fast-codec: ${desc.typeName} wrote ${w.pos - end + n} bytes, sized ${n}`);
    },
    read(r) {
      const n = readVarint32(r);
      if (n > r.end - r.pos) fail(`truncated ${desc.typeName}`);
      const outerEnd = r.end;
      r.end = r.pos + n;
      const m = get().read(r);
      r.end = outerEnd;
      return m;
    },
    zero: () => undefined,
  };
}

function tagBytes(fieldNo: number, wireType: number): { tag: number; size: number } {
  const tag = ((fieldNo << 3) | wireType) >>> 0;
  return { tag, size: varintSize(tag) };
}

/** One field of a message: sizes and writes its part of the message, reads one occurrence. */
interface FieldCodec {
  number: number;
  size(m: Obj, l: Lengths): number;
  write(w: Writer, m: Obj): void;
  /** Reads one occurrence (wire type already checked) into the message under construction. */
  read(r: Reader, m: Obj, wireType: number): void;
}

function singularField(name: string, no: number, vc: ValueCodec, alwaysWrite: boolean): FieldCodec {
  const { tag, size: tagSize } = tagBytes(no, vc.wireType);
  return {
    number: no,
    size(m, l) {
      const v = m[name];
      if (!alwaysWrite && vc.isDefault(v)) return 0;
      return tagSize + vc.size(v, l);
    },
    write(w, m) {
      const v = m[name];
      if (!alwaysWrite && vc.isDefault(v)) return;
      writeVarint(w, tag);
      vc.write(w, v);
    },
    read(r, m, wireType) {
      if (wireType !== vc.wireType) return skipField(r, wireType, no, 0);
      m[name] = vc.read(r);
    },
  };
}

function listField(name: string, no: number, vc: ValueCodec): FieldCodec {
  const { tag, size: tagSize } = tagBytes(no, vc.wireType);
  return {
    number: no,
    size(m, l) {
      const list = m[name] as unknown[] | undefined;
      if (!list) return 0;
      let n = 0;
      for (let i = 0; i < list.length; i += 1) n += tagSize + vc.size(list[i], l);
      return n;
    },
    write(w, m) {
      const list = m[name] as unknown[] | undefined;
      if (!list) return;
      for (let i = 0; i < list.length; i += 1) {
        writeVarint(w, tag);
        vc.write(w, list[i]);
      }
    },
    read(r, m, wireType) {
      if (wireType !== vc.wireType) return skipField(r, wireType, no, 0);
      (m[name] as unknown[]).push(vc.read(r));
    },
  };
}

function mapField(name: string, no: number, valueCodec: ValueCodec): FieldCodec {
  const { tag, size: tagSize } = tagBytes(no, wireDelimited);
  const keyTag = tagBytes(1, wireDelimited);
  const valueTag = tagBytes(2, valueCodec.wireType);
  return {
    number: no,
    size(m, l) {
      const map = m[name] as Obj | undefined;
      if (!map) return 0;
      let n = 0;
      for (const k of Object.keys(map)) {
        const at = l.list.length;
        l.list.push(0);
        const entry = keyTag.size + stringCodec.size(k, l) + valueTag.size + valueCodec.size(map[k], l);
        l.list[at] = entry;
        n += tagSize + varintSize(entry) + entry;
      }
      return n;
    },
    write(w, m) {
      const map = m[name] as Obj | undefined;
      if (!map) return;
      for (const k of Object.keys(map)) {
        writeVarint(w, tag);
        writeVarint(w, w.lengths.list[w.lengths.next++]!);
        writeVarint(w, keyTag.tag);
        stringCodec.write(w, k);
        writeVarint(w, valueTag.tag);
        valueCodec.write(w, map[k]);
      }
    },
    read(r, m, wireType) {
      if (wireType !== wireDelimited) return skipField(r, wireType, no, 0);
      const n = readVarint32(r);
      if (n > r.end - r.pos) fail(`truncated map entry of ${name}`);
      const outerEnd = r.end;
      r.end = r.pos + n;
      let key = '';
      let value = valueCodec.zero();
      while (r.pos < r.end) {
        const t = readVarint32(r);
        const wt = t & 7;
        const fieldNo = t >>> 3;
        if (fieldNo === 1 && wt === wireDelimited) key = readString(r);
        else if (fieldNo === 2 && wt === valueCodec.wireType) value = valueCodec.read(r);
        else skipField(r, wt, fieldNo, 0);
      }
      r.end = outerEnd;
      const map = m[name] as Obj;
      // An assignment to "__proto__" would set the map's prototype (and drop the entry): that
      // key is defined as an own property instead.
      if (key === '__proto__') Object.defineProperty(map, key, { value, enumerable: true, writable: true, configurable: true });
      else map[key] = value;
    },
  };
}

/** The fields of one oneof group: the set case is always written, even at its default value. */
function oneofFields(name: string, cases: { localName: string; number: number; vc: ValueCodec }[]): FieldCodec[] {
  return cases.map(({ localName, number: no, vc }) => {
    const { tag, size: tagSize } = tagBytes(no, vc.wireType);
    return {
      number: no,
      size(m, l) {
        const o = m[name] as { case?: string; value?: unknown } | undefined;
        if (!o || o.case !== localName) return 0;
        return tagSize + vc.size(o.value, l);
      },
      write(w, m) {
        const o = m[name] as { case?: string; value?: unknown } | undefined;
        if (!o || o.case !== localName) return;
        writeVarint(w, tag);
        vc.write(w, o.value);
      },
      read(r, m, wireType) {
        if (wireType !== vc.wireType) return skipField(r, wireType, no, 0);
        m[name] = { case: localName, value: vc.read(r) };
      },
    };
  });
}

// ---------------------------------------------------------------- messages

interface MessageCodec {
  size(m: Obj, l: Lengths): number;
  write(w: Writer, m: Obj): void;
  read(r: Reader): Obj;
}

function valueCodecOf(f: DescField, where: string): ValueCodec {
  switch (f.fieldKind) {
    case 'scalar': return scalarCodec(f.scalar, where);
    case 'enum': return int32Codec;
    case 'message': return messageCodec(f.message);
    default: throw new Error(`fast-codec: ${where} is not a singular field`);
  }
}

function compile(desc: DescMessage): MessageCodec {
  const fields: FieldCodec[] = [];
  /** Builds the empty message, every field at its default, in declaration order. */
  const zeros: [string, () => unknown][] = [];
  const seenOneofs = new Set<string>();
  for (const f of desc.fields) {
    const where = `${desc.typeName}.${f.name}`;
    if (f.oneof) {
      const o = f.oneof;
      if (seenOneofs.has(o.localName)) continue;
      seenOneofs.add(o.localName);
      fields.push(...oneofFields(o.localName, o.fields.map((of) => ({ localName: of.localName, number: of.number, vc: valueCodecOf(of, `${desc.typeName}.${of.name}`) }))));
      zeros.push([o.localName, () => ({ case: undefined })]);
      continue;
    }
    switch (f.fieldKind) {
      case 'scalar':
      case 'enum':
        if (f.presence !== 2) throw new Error(`fast-codec: ${where} has explicit presence (proto3 implicit only)`);
        fields.push(singularField(f.localName, f.number, valueCodecOf(f, where), false));
        zeros.push([f.localName, scalarZero(valueCodecOf(f, where))]);
        break;
      case 'message':
        fields.push(singularField(f.localName, f.number, valueCodecOf(f, where), false));
        break;
      case 'list': {
        const vc = f.listKind === 'message' ? messageCodec(f.message)
          : f.listKind === 'scalar' && f.scalar === ScalarType.STRING ? stringCodec
            : null;
        if (!vc) throw new Error(`fast-codec: ${where}: only repeated strings and messages are supported`);
        fields.push(listField(f.localName, f.number, vc));
        zeros.push([f.localName, () => []]);
        break;
      }
      case 'map': {
        if (f.mapKey !== ScalarType.STRING) throw new Error(`fast-codec: ${where}: only string map keys are supported`);
        const vc = f.mapKind === 'scalar' ? scalarCodec(f.scalar, where) : null;
        if (!vc) throw new Error(`fast-codec: ${where}: map values of kind ${f.mapKind} are not supported`);
        fields.push(mapField(f.localName, f.number, vc));
        zeros.push([f.localName, () => ({})]);
        break;
      }
    }
  }
  const byNumber = new Map(fields.map((f) => [f.number, f]));
  const maxNumber = Math.max(0, ...fields.map((f) => f.number));
  const table: (FieldCodec | undefined)[] = [];
  for (let i = 0; i <= maxNumber; i += 1) table.push(byNumber.get(i));
  const typeName = desc.typeName;
  // Scalars are copied from a template (one shape for every message of the type); lists, maps
  // and oneofs get fresh objects.
  const template: Obj = { $typeName: typeName };
  const fresh: [string, () => unknown][] = [];
  for (const [k, z] of zeros) {
    const v = z();
    template[k] = typeof v === 'object' ? undefined : v;
    if (typeof v === 'object') fresh.push([k, z]);
  }
  const empty = (): Obj => {
    const m: Obj = { ...template };
    for (let i = 0; i < fresh.length; i += 1) m[fresh[i]![0]] = fresh[i]![1]();
    return m;
  };
  return {
    size(m, l) {
      let n = 0;
      for (let i = 0; i < fields.length; i += 1) n += fields[i]!.size(m, l);
      return n;
    },
    write(w, m) {
      for (let i = 0; i < fields.length; i += 1) fields[i]!.write(w, m);
    },
    read(r) {
      const m = empty();
      while (r.pos < r.end) {
        const tag = readVarint32(r);
        const wireType = tag & 7;
        const no = tag >>> 3;
        if (no === 0) fail(`field number 0 in ${typeName}`);
        if (wireType === wireEndGroup) fail(`unexpected end group in ${typeName}`);
        const f = no < table.length ? table[no] : undefined;
        if (f) f.read(r, m, wireType);
        else skipField(r, wireType, no, 0);
      }
      return m;
    },
  };
}

function scalarZero(vc: ValueCodec): () => unknown {
  const z = vc.zero();
  return () => z;
}

/** Encodes and decodes one message type. */
export interface FastCodec {
  encode(m: unknown): Buffer;
  /** The message behind gRPC's 5-byte prefix (flag 0, big-endian length), in one buffer. */
  encodeFramed(m: unknown): Buffer;
  decode(bytes: Uint8Array): unknown;
}


const compiled = new Map<string, FastCodec>();

/** The codec of a message type, compiled on first use and kept. */
export function fastCodec(desc: DescMessage): FastCodec {
  const known = compiled.get(desc.typeName);
  if (known) return known;
  const c = compile(desc);
  const lengths = new Lengths();
  const encodeAt = (m: unknown, prefixBytes: number): Buffer => {
    lengths.list.length = 0;
    lengths.next = 0;
    const n = c.size(m as Obj, lengths);
    const w = new Writer(Buffer.allocUnsafe(prefixBytes + n), lengths);
    w.pos = prefixBytes;
    c.write(w, m as Obj);
    if (w.pos !== prefixBytes + n) throw new Error(`fast-codec: ${desc.typeName} wrote ${w.pos - prefixBytes} bytes, sized ${n}`);
    return w.buf;
  };
  const codec: FastCodec = {
    encode: (m) => encodeAt(m, 0),
    encodeFramed: (m) => writePrefix(encodeAt(m, grpcPrefixBytes)),
    decode(bytes) {
      const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      return c.read(new Reader(buf, 0, buf.length));
    },
  };
  compiled.set(desc.typeName, codec);
  return codec;
}

/**
 * @module wire/fast-codec
 * A protobuf binary codec for the internal stream messages, generated once per message type from
 * the protobuf-es descriptors as JavaScript specialized to the type (see `generate`): no
 * reflection per message, one exact-size Buffer per encode, strings written and read without a
 * TextEncoder round trip when ASCII.
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
 * messages, oneofs, repeated strings and messages, maps from strings to scalars. Anything else
 * fails when the codec of a type (or of any type it contains) is made, never on a live stream.
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

function readDouble(r: Reader): number {
  if (r.end - r.pos < 8) fail('truncated double');
  const v = r.buf.readDoubleLE(r.pos);
  r.pos += 8;
  return v;
}

// ---------------------------------------------------------------- generated message codecs

/**
 * One message type's codec. Each is generated once as JavaScript source specialized to the
 * type (`new Function` over the descriptor, at module load or first use), so every field is a
 * named property load, every tag a constant, and the empty message one object literal. The
 * closures it replaced shared one body among all types: their calls per field and their loads
 * by computed name were megamorphic, and the empty message was a spread of a template.
 * Only the schema shapes the source (names as JSON string literals, numbers from the
 * descriptor); no input from a peer does.
 */
interface MessageCodec {
  size(m: Obj, l: Lengths): number;
  write(w: Writer, m: Obj): void;
  read(r: Reader): Obj;
}

/** How one value (a field's value, a list item, a map value) is sized, written and read. */
type ValueKind = 'string' | 'bool' | 'double' | 'uint32' | 'int32' | { message: number };

function scalarKind(t: ScalarType, where: string): ValueKind {
  switch (t) {
    case ScalarType.STRING: return 'string';
    case ScalarType.BOOL: return 'bool';
    case ScalarType.DOUBLE: return 'double';
    case ScalarType.UINT32: return 'uint32';
    case ScalarType.INT32: return 'int32';
    default: throw new Error(`fast-codec: scalar type ${ScalarType[t]} of ${where} is not supported`);
  }
}

function wireTypeOf(k: ValueKind): number {
  if (typeof k === 'object' || k === 'string') return wireDelimited;
  return k === 'double' ? wireFixed64 : wireVarint;
}

/** Source of a JS expression: whether value `v` is the type's default (an implicit-presence field then stays off the wire). */
function isDefaultSrc(k: ValueKind, v: string): string {
  if (typeof k === 'object') return `${v} === undefined`;
  switch (k) {
    case 'string': return `(${v} === '' || ${v} === undefined)`;
    case 'bool': return `${v} !== true`;
    // -0 === 0: left out like 0, as protobuf-es does.
    case 'double': return `(${v} === undefined || ${v} === 0)`;
    default: return `(${v} === 0 || ${v} === undefined)`;
  }
}

/** Source of the zero a map value starts at before its entry is read. */
function zeroSrc(k: ValueKind): string {
  if (typeof k === 'object') return 'undefined';
  return k === 'string' ? "''" : k === 'bool' ? 'false' : '0';
}

/** Statements adding to `acc` the bytes of tag (`tagSize` bytes) and value `v`; may push lengths for `write`. */
function sizeSrc(k: ValueKind, v: string, acc: string, tagSize: number): string {
  if (typeof k === 'object') {
    return `{ const at = L.length; L.push(0); const k = S${k.message}.size(${v}, l); L[at] = k; ${acc} += ${tagSize} + varintSize(k) + k; }`;
  }
  switch (k) {
    case 'string': return `{ const k = utf8Length(${v}); L.push(k); ${acc} += ${tagSize} + varintSize(k) + k; }`;
    case 'bool': return `${acc} += ${tagSize + 1};`;
    case 'double': return `${acc} += ${tagSize + 8};`;
    case 'uint32': return `${acc} += ${tagSize} + varintSize(${v} >>> 0);`;
    case 'int32': return `${acc} += ${tagSize} + int32Size(${v} | 0);`;
  }
}

/** Statements writing a varint known at generation time. */
function constVarintSrc(n: number): string {
  const bytes: number[] = [];
  let v = n >>> 0;
  while (v >= 0x80) {
    bytes.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  bytes.push(v);
  return bytes.map((b) => `buf[w.pos++] = ${b};`).join(' ');
}

/** Statements writing value `v` (its tag already written). */
function writeSrc(k: ValueKind, v: string, typeName: string): string {
  if (typeof k === 'object') {
    return `{ const k = LL[w.lengths.next++]; writeVarint(w, k); const e = w.pos + k; S${k.message}.write(w, ${v}); ` +
      `if (w.pos !== e) throw new Error(${JSON.stringify(`fast-codec: a message in ${typeName} wrote a size other than it sized`)}); }`;
  }
  switch (k) {
    case 'string': return `{ const k = LL[w.lengths.next++]; writeVarint(w, k); writeString(w, ${v}, k); }`;
    case 'bool': return `buf[w.pos++] = ${v} === true ? 1 : 0;`;
    case 'double': return `w.pos = buf.writeDoubleLE(${v}, w.pos);`;
    case 'uint32': return `writeVarint(w, ${v} >>> 0);`;
    case 'int32': return `writeInt32(w, ${v} | 0);`;
  }
}

/** Statements reading one value; `assign` turns the expression read into the statement that stores it. */
function readSrc(k: ValueKind, assign: (expr: string) => string, what: string): string {
  if (typeof k === 'object') {
    return `{ const k = readVarint32(r); if (k > r.end - r.pos) fail(${JSON.stringify(`truncated ${what}`)}); ` +
      `const oe = r.end; r.end = r.pos + k; const x = S${k.message}.read(r); r.end = oe; ${assign('x')} }`;
  }
  switch (k) {
    case 'string': return assign('readString(r)');
    case 'bool': return assign('readVarintNonZero(r)');
    case 'double': return assign('readDouble(r)');
    case 'uint32': return assign('readVarint32(r)');
    case 'int32': return assign('(readVarint32(r) | 0)');
  }
}

function tagOf(fieldNo: number, wireType: number): number {
  return ((fieldNo << 3) | wireType) >>> 0;
}

/** An own enumerable property, also for the key "__proto__" (an assignment would set the prototype). */
function defineOwn(o: Obj, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

const helpers = {
  varintSize, writeVarint, writeInt32, int32Size, utf8Length, writeString, readVarint32,
  readVarintNonZero, readString, readDouble, skipField, fail, defineOwn,
};
const helperNames = Object.keys(helpers);
const helperValues = Object.values(helpers);

/** Every message type's codec; a holder is registered before its source is generated, so types may refer to each other (or themselves). */
const messageCodecs = new Map<string, MessageCodec>();

function unready(): never {
  throw new Error('fast-codec: codec used before it was generated');
}

function messageCodecOf(desc: DescMessage): MessageCodec {
  const known = messageCodecs.get(desc.typeName);
  if (known) return known;
  const holder: MessageCodec = { size: unready, write: unready, read: unready };
  messageCodecs.set(desc.typeName, holder);
  try {
    const made = generate(desc);
    holder.size = made.size;
    holder.write = made.write;
    holder.read = made.read;
  } catch (e) {
    messageCodecs.delete(desc.typeName);
    throw e;
  }
  return holder;
}

function generate(desc: DescMessage): MessageCodec {
  const typeName = desc.typeName;
  const nested: MessageCodec[] = [];
  const kindOf = (f: DescField, where: string): ValueKind => {
    switch (f.fieldKind) {
      case 'scalar': return scalarKind(f.scalar, where);
      case 'enum': return 'int32';
      case 'message': return messageKind(f.message);
      default: throw new Error(`fast-codec: ${where} is not a singular field`);
    }
  };
  const messageKind = (d: DescMessage): ValueKind => {
    nested.push(messageCodecOf(d));
    return { message: nested.length - 1 };
  };
  const key = (name: string): string => {
    if (name === '__proto__') throw new Error(`fast-codec: ${typeName} has a field named __proto__`);
    return JSON.stringify(name);
  };
  const empty: string[] = [`"$typeName": ${JSON.stringify(typeName)}`];
  const size: string[] = [];
  const write: string[] = [];
  const read: string[] = [];
  const seenOneofs = new Set<string>();
  for (const f of desc.fields) {
    const where = `${typeName}.${f.name}`;
    if (f.oneof) {
      const o = f.oneof;
      if (seenOneofs.has(o.localName)) continue;
      seenOneofs.add(o.localName);
      const ok = key(o.localName);
      empty.push(`${ok}: { case: undefined }`);
      // The set case is always written, even at its default value.
      for (const of of o.fields) {
        const k = kindOf(of, `${typeName}.${of.name}`);
        const tag = tagOf(of.number, wireTypeOf(k));
        const c = JSON.stringify(of.localName);
        size.push(`{ const o = m[${ok}]; if (o && o.case === ${c}) { const v = o.value; ${sizeSrc(k, 'v', 'n', varintSize(tag))} } }`);
        write.push(`{ const o = m[${ok}]; if (o && o.case === ${c}) { const v = o.value; ${constVarintSrc(tag)} ${writeSrc(k, 'v', typeName)} } }`);
        read.push(`case ${tag}: ${readSrc(k, (x) => `m[${ok}] = { case: ${c}, value: ${x} };`, `${typeName}.${of.name}`)} break;`);
      }
      continue;
    }
    const fk = key(f.localName);
    switch (f.fieldKind) {
      case 'scalar':
      case 'enum':
      case 'message': {
        if (f.fieldKind !== 'message' && f.presence !== 2) throw new Error(`fast-codec: ${where} has explicit presence (proto3 implicit only)`);
        const k = kindOf(f, where);
        const tag = tagOf(f.number, wireTypeOf(k));
        if (typeof k !== 'object') empty.push(`${fk}: ${zeroSrc(k)}`);
        size.push(`{ const v = m[${fk}]; if (!(${isDefaultSrc(k, 'v')})) { ${sizeSrc(k, 'v', 'n', varintSize(tag))} } }`);
        write.push(`{ const v = m[${fk}]; if (!(${isDefaultSrc(k, 'v')})) { ${constVarintSrc(tag)} ${writeSrc(k, 'v', typeName)} } }`);
        read.push(`case ${tag}: ${readSrc(k, (x) => `m[${fk}] = ${x};`, where)} break;`);
        break;
      }
      case 'list': {
        const k = f.listKind === 'message' ? messageKind(f.message)
          : f.listKind === 'scalar' && f.scalar === ScalarType.STRING ? 'string'
            : null;
        if (!k) throw new Error(`fast-codec: ${where}: only repeated strings and messages are supported`);
        const tag = tagOf(f.number, wireTypeOf(k));
        empty.push(`${fk}: []`);
        size.push(`{ const list = m[${fk}]; if (list) for (let i = 0; i < list.length; i += 1) { const v = list[i]; ${sizeSrc(k, 'v', 'n', varintSize(tag))} } }`);
        write.push(`{ const list = m[${fk}]; if (list) for (let i = 0; i < list.length; i += 1) { const v = list[i]; ${constVarintSrc(tag)} ${writeSrc(k, 'v', typeName)} } }`);
        read.push(`case ${tag}: ${readSrc(k, (x) => `m[${fk}].push(${x});`, where)} break;`);
        break;
      }
      case 'map': {
        if (f.mapKey !== ScalarType.STRING) throw new Error(`fast-codec: ${where}: only string map keys are supported`);
        if (f.mapKind !== 'scalar') throw new Error(`fast-codec: ${where}: map values of kind ${f.mapKind} are not supported`);
        const vk = scalarKind(f.scalar, where);
        const tag = tagOf(f.number, wireDelimited);
        const valueTag = tagOf(2, wireTypeOf(vk));
        empty.push(`${fk}: {}`);
        // An entry is its key (field 1) and its value (field 2), both always written.
        size.push(`{ const mp = m[${fk}]; if (mp) { const ks = Object.keys(mp); for (let i = 0; i < ks.length; i += 1) { ` +
          `const key = ks[i]; const v = mp[key]; const at = L.length; L.push(0); let e = 0; ` +
          `${sizeSrc('string', 'key', 'e', 1)} ${sizeSrc(vk, 'v', 'e', varintSize(valueTag))} ` +
          `L[at] = e; n += ${varintSize(tag)} + varintSize(e) + e; } } }`);
        write.push(`{ const mp = m[${fk}]; if (mp) { const ks = Object.keys(mp); for (let i = 0; i < ks.length; i += 1) { ` +
          `const key = ks[i]; const v = mp[key]; ${constVarintSrc(tag)} writeVarint(w, LL[w.lengths.next++]); ` +
          `${constVarintSrc(tagOf(1, wireDelimited))} ${writeSrc('string', 'key', typeName)} ${constVarintSrc(valueTag)} ${writeSrc(vk, 'v', typeName)} } } }`);
        read.push(`case ${tag}: { const k = readVarint32(r); if (k > r.end - r.pos) fail(${JSON.stringify(`truncated map entry of ${f.localName}`)}); ` +
          `const oe = r.end; r.end = r.pos + k; let key = ''; let value = ${zeroSrc(vk)}; ` +
          `while (r.pos < r.end) { const t = readVarint32(r); ` +
          `if (t === ${tagOf(1, wireDelimited)}) key = readString(r); ` +
          `else if (t === ${valueTag}) { ${readSrc(vk, (x) => `value = ${x};`, where)} } ` +
          `else skipField(r, t & 7, t >>> 3, 0); } ` +
          `r.end = oe; const mp = m[${fk}]; if (key === '__proto__') defineOwn(mp, key, value); else mp[key] = value; break; }`);
        break;
      }
    }
  }
  const source = `"use strict";
${nested.map((_, i) => `const S${i} = nested[${i}];`).join('\n')}
function empty() { return { ${empty.join(', ')} }; }
function size(m, l) { const L = l.list; let n = 0;
${size.join('\n')}
return n; }
function write(w, m) { const buf = w.buf; const LL = w.lengths.list;
${write.join('\n')}
}
function read(r) { const m = empty();
while (r.pos < r.end) { const tag = readVarint32(r);
switch (tag) {
${read.join('\n')}
default: { const wt = tag & 7; const no = tag >>> 3;
if (no === 0) fail(${JSON.stringify(`field number 0 in ${typeName}`)});
if (wt === ${wireEndGroup}) fail(${JSON.stringify(`unexpected end group in ${typeName}`)});
skipField(r, wt, no, 0); } } }
return m; }
return { size, write, read };`;
  // Source built from the schema only (see MessageCodec).
  const make = new Function(...helperNames, 'nested', source) as (...args: unknown[]) => MessageCodec;
  return make(...helperValues, nested);
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
  const c = messageCodecOf(desc);
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

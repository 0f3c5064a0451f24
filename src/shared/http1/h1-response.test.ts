/**
 * Goal: the lean upstream's response reader frames every response as RFC 9112 says, however
 * the bytes are split across reads, and refuses what a hostile sandbox could use to confuse the
 * proxy (bad status lines, conflicting lengths, bad chunk sizes, oversized heads).
 * Method: responses fed whole, byte by byte, and (property, fast-check) in random splits with
 * random bodies under each framing; the body read back must equal the body sent. The head is
 * read by a scan of character codes; a second property checks it against the rules written as
 * regular expressions (`oracleHead` below) on heads built from hostile pieces.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { H1ResponseReader, responseHeadBytesMax, SandboxProtocolError, type ResponseHead } from './h1-response.js';

interface Read { heads: ResponseHead[]; body: Buffer; ended: number }

function reader(isHead = false): { r: H1ResponseReader; out: Read; sink: { head(h: ResponseHead): void; data(b: Buffer): void; end(): void } } {
  const out: Read = { heads: [], body: Buffer.alloc(0), ended: 0 };
  const sink = {
    head: (h: ResponseHead) => out.heads.push(h),
    data: (b: Buffer) => { out.body = Buffer.concat([out.body, b]); },
    end: () => { out.ended += 1; },
  };
  return { r: new H1ResponseReader(isHead), out, sink };
}

function feedIn(text: string | Buffer, splits: number[], isHead = false): Read & { reader: H1ResponseReader } {
  const { r, out, sink } = reader(isHead);
  const bytes = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  let at = 0;
  for (const n of splits) {
    if (at >= bytes.length) break;
    r.feed(bytes.subarray(at, at + n), sink);
    at += n;
  }
  if (at < bytes.length) r.feed(bytes.subarray(at), sink);
  return { ...out, reader: r };
}

const bytewise = (text: string): number[] => Array.from({ length: text.length }, () => 1);

describe('sandbox response reader', () => {
  it('Content-Length: head, body and end, whole or byte by byte', () => {
    const text = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nSet-Cookie: a\r\nSet-Cookie: b\r\n\r\nhello';
    for (const splits of [[], bytewise(text)]) {
      const got = feedIn(text, splits);
      assert.equal(got.heads.length, 1);
      assert.equal(got.heads[0]!.statusCode, 200);
      assert.deepEqual(got.heads[0]!.fields, ['content-type', 'text/plain', 'content-length', '5', 'set-cookie', 'a', 'set-cookie', 'b']);
      assert.equal(got.heads[0]!.keepAlive, true);
      assert.equal(got.body.toString(), 'hello');
      assert.equal(got.ended, 1);
      assert.equal(got.reader.done, true);
      assert.equal(got.reader.trailingBytes, false);
    }
  });

  it('chunked with extensions and trailers; the body is the chunks joined', () => {
    const text = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n';
    for (const splits of [[], bytewise(text)]) {
      const got = feedIn(text, splits);
      assert.equal(got.body.toString(), 'hello world');
      assert.equal(got.ended, 1);
    }
  });

  it('no body for HEAD, 204 and 304; interim 1xx answers are skipped', () => {
    assert.equal(feedIn('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', [], true).ended, 1);
    assert.equal(feedIn('HTTP/1.1 204 No Content\r\n\r\n', []).ended, 1);
    assert.equal(feedIn('HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n', []).ended, 1);
    const got = feedIn('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok', []);
    assert.deepEqual(got.heads.map((h) => h.statusCode), [201]);
    assert.equal(got.body.toString(), 'ok');
  });

  it('a body without length runs to the end of the connection, which cannot be reused', () => {
    const { r, out, sink } = reader();
    r.feed(Buffer.from('HTTP/1.1 200 OK\r\n\r\npart one, '), sink);
    r.feed(Buffer.from('part two'), sink);
    assert.equal(out.ended, 0);
    assert.equal(r.closeDelimited, true);
    r.eof(sink);
    assert.equal(out.body.toString(), 'part one, part two');
    assert.equal(out.ended, 1);
  });

  it('keep-alive: HTTP/1.0 and Connection: close are not reusable; the sandbox Keep-Alive timeout is read', () => {
    assert.equal(feedIn('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n', []).heads[0]!.keepAlive, false);
    assert.equal(feedIn('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n', []).heads[0]!.keepAlive, true);
    assert.equal(feedIn('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n', []).heads[0]!.keepAlive, false);
    assert.equal(feedIn('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n', []).heads[0]!.keepAliveTimeoutMs, 5_000);
    // Transfer-Encoding beside Content-Length: the length is ignored and the connection dropped after.
    const both = feedIn('HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n', []);
    assert.equal(both.body.toString(), 'ok');
    assert.equal(both.heads[0]!.keepAlive, false);
    assert.deepEqual(both.heads[0]!.fields, ['transfer-encoding', 'chunked'], 'the ignored length is not relayed');
  });

  it('bytes after the response mark the connection as not reusable', () => {
    const got = feedIn('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA', []);
    assert.equal(got.body.toString(), 'ok');
    assert.equal(got.reader.trailingBytes, true);
  });

  it('a connection that ends mid-response is an error', () => {
    const { r, sink } = reader();
    r.feed(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'), sink);
    assert.throws(() => r.eof(sink), SandboxProtocolError);
  });

  it('refuses what a hostile sandbox could confuse the proxy with', () => {
    const bad = [
      'HTTP/2 200 OK\r\n\r\n',
      'HTTP/1.1 20 OK\r\n\r\n',
      'HTTP/1.1 200OK\r\n\r\n',
      'HTTP/1.1 600 Weird\r\n\r\n',
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
      'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
      'HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n',
      'HTTP/1.1 200 OK\r\nX: a\u0000b\r\nContent-Length: 0\r\n\r\n',
      'HTTP/1.1 200 OK\r\n folded\r\nContent-Length: 0\r\n\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n',
    ];
    for (const text of bad) assert.throws(() => feedIn(text, []), SandboxProtocolError, JSON.stringify(text));
    assert.throws(() => feedIn(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(responseHeadBytesMax)}\r\n\r\n`, []), SandboxProtocolError);
    assert.throws(() => feedIn(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(responseHeadBytesMax + 10)}`, [100, 100]), SandboxProtocolError);
  });

  it('property: any body, any framing, any split reads back the same body, once; also read through one reused buffer', () => {
    const framing = fc.constantFrom('length', 'chunked', 'eof');
    fc.assert(fc.property(fc.uint8Array({ maxLength: 3_000 }), framing, fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 40 }), fc.array(fc.integer({ min: 1, max: 500 }), { maxLength: 10 }), fc.boolean(), (body, how, splits, chunkSizes, reused) => {
      const b = Buffer.from(body);
      let wire: Buffer;
      if (how === 'length') {
        wire = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${b.length}\r\n\r\n`), b]);
      } else if (how === 'chunked') {
        const parts: Buffer[] = [Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')];
        let at = 0;
        let i = 0;
        while (at < b.length) {
          const n = Math.min(chunkSizes[i++ % Math.max(1, chunkSizes.length)] ?? 100, b.length - at);
          parts.push(Buffer.from(`${n.toString(16)}\r\n`), b.subarray(at, at + n), Buffer.from('\r\n'));
          at += n;
        }
        parts.push(Buffer.from('0\r\n\r\n'));
        wire = Buffer.concat(parts);
      } else {
        wire = Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), b]);
      }
      const { r, out, sink } = reader();
      // Reused: every read lands in one buffer (as the lean upstream's sockets read), scribbled
      // over after each read; the reader must have copied whatever it still needs.
      const scratch = Buffer.alloc(wire.length);
      const read = (bytes: Buffer): void => {
        if (!reused) {
          r.feed(bytes, sink);
          return;
        }
        bytes.copy(scratch);
        r.feed(scratch.subarray(0, bytes.length), sink);
        r.detachInput();
        scratch.fill(0x5a);
      };
      let at = 0;
      for (const n of splits) {
        read(wire.subarray(at, at + n));
        at += n;
        if (at >= wire.length) break;
      }
      if (at < wire.length) read(wire.subarray(at));
      if (how === 'eof') r.eof(sink);
      assert.equal(out.heads.length, 1);
      assert.ok(out.body.equals(b));
      assert.equal(out.ended, 1);
      assert.equal(r.trailingBytes, false);
    }), { numRuns: 300 });
  });

  it('property: the scanned head agrees with the rules as regular expressions, for any head', () => {
    // Pieces a hostile sandbox could send: tokens, separators, whitespace JS trims, controls, Latin-1.
    const piece = fc.constantFrom('a', 'Z', 'x-Y', ':', ' ', '\t', '\r', '\n', '\v', '\f', '\u0000', '\u007f', '\u00a0', '\u00e9', '(', '/', '1', 'close', 'keep-alive', 'timeout=7', ',', ';');
    const text = fc.array(piece, { maxLength: 12 }).map((p) => p.join(''));
    const name = fc.oneof({ arbitrary: fc.constantFrom('Content-Length', 'content-length', 'Transfer-Encoding', 'Connection', 'Keep-Alive', 'X-A', 'set-cookie', 'Zeta', 'ETag'), weight: 4 }, { arbitrary: text, weight: 1 });
    const value = fc.oneof(fc.constantFrom('0', '5', '12', 'chunked', 'gzip, chunked', 'close', 'keep-alive', 'timeout=3'), text);
    // Mostly well-formed lines and status lines, so that many heads get through whole.
    const line = fc.oneof({ arbitrary: fc.tuple(name, fc.constantFrom(':', ': ', ' :', ':\t'), value).map(([n, sep, v]) => n + sep + v), weight: 6 }, { arbitrary: text, weight: 1 });
    const status = fc.oneof(
      { arbitrary: fc.constantFrom('HTTP/1.1 200 OK', 'HTTP/1.0 204', 'HTTP/1.1 304 Not Modified', 'HTTP/1.1 103 Early', 'HTTP/1.0 500'), weight: 8 },
      { arbitrary: fc.constantFrom('HTTP/1.1 999 X', 'HTTP/1.2 200 OK', 'HTTP/1.1 200 O\rK', 'HTTP/1.1 101 Up'), weight: 1 },
      { arbitrary: text, weight: 1 },
    );
    fc.assert(fc.property(status, fc.array(line, { maxLength: 6 }), (statusLine, lines) => {
      const head = [statusLine, ...lines].join('\r\n');
      if (`${head}\r\n\r\n`.indexOf('\r\n\r\n') !== head.length) return; // a head ends at its first empty line
      const want = oracleHead(head);
      const heads: ResponseHead[] = [];
      let error: string | null = null;
      try {
        new H1ResponseReader(true).feed(Buffer.from(`${head}\r\n\r\n`, 'latin1'), { head: (h) => heads.push(h), data: () => {}, end: () => {} });
      } catch (err) {
        assert.ok(err instanceof SandboxProtocolError, String(err));
        error = err.message;
      }
      if ('error' in want) {
        assert.equal(error, `sandbox response: ${want.error}`, JSON.stringify(head));
      } else {
        assert.equal(error, null, JSON.stringify(head));
        assert.deepEqual(heads, want.statusCode < 200 ? [] : [{ statusCode: want.statusCode, fields: want.fields, keepAlive: want.keepAlive, keepAliveTimeoutMs: want.keepAliveTimeoutMs }], JSON.stringify(head));
      }
    }), { numRuns: 3_000 });
  });
});

/** The head rules as regular expressions (the reader's first version): what the scan must agree with. */
function oracleHead(text: string): { error: string } | { statusCode: number; fields: string[]; keepAlive: boolean; keepAliveTimeoutMs: number } {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [^\r\n]*)?$/.exec(lines[0]!);
  if (m === null) return { error: 'bad status line' };
  const http10 = m[1] === '0';
  const statusCode = Number(m[2]);
  if (statusCode > 599) return { error: `status ${statusCode}` };
  const fields: string[] = [];
  let length = -1;
  let teSeen = false;
  let close = http10;
  let keepAliveTimeoutMs = 0;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return { error: 'bad header line' };
    const name = line.slice(0, colon).toLowerCase();
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) return { error: 'bad header name' };
    const value = line.slice(colon + 1).trim();
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value)) return { error: `bad character in header ${name}` };
    fields.push(name, value);
    if (name === 'content-length') {
      if (!/^\d{1,15}$/.test(value)) return { error: 'bad content-length' };
      if (length >= 0 && Number(value) !== length) return { error: 'conflicting content-length' };
      length = Number(value);
    } else if (name === 'transfer-encoding') {
      teSeen = true;
    } else if (name === 'connection') {
      const v = value.toLowerCase();
      if (v.includes('close')) close = true;
      else if (http10 && v.includes('keep-alive')) close = false;
    } else if (name === 'keep-alive') {
      const t = /(?:^|[,;\s])timeout=(\d{1,9})/i.exec(value);
      if (t !== null) keepAliveTimeoutMs = Number(t[1]) * 1000;
    }
  }
  if (statusCode === 101) return { error: '101 Switching Protocols to a request that asked for none' };
  if (teSeen && length >= 0) {
    close = true;
    for (let i = fields.length - 2; i >= 0; i -= 2) if (fields[i] === 'content-length') fields.splice(i, 2);
  }
  return { statusCode, fields, keepAlive: !close, keepAliveTimeoutMs };
}

/**
 * Goal: the lean reader never reads a request differently from Node: every head it takes, Node's
 * HTTP parser takes too, with the same method, target and headers. A lean answer puts the same
 * bytes on the wire whether it is written in one piece or in parts (head in Latin-1, body in
 * UTF-8).
 * Method: fast-check heads (valid parts, sometimes one byte made invalid) sent over one
 * keep-alive connection to a Node HTTP server on loopback that reports what it parsed; for each
 * head the lean reader takes, Node's view must match it. Answers: a LeanConnections server on
 * loopback, read as raw bytes.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { systemClock } from '../clock.js';
import { silentLogger } from '../logger.js';
import { leanMethods, parseLeanHead } from './h1-head.js';
import { LeanConnections, type LeanHost } from './lean-h1.js';

interface Parsed { method: string; url: string; headers: IncomingHttpHeaders }

describe("lean request heads against Node's parser", () => {
  const server = createServer((req, res) => {
    const seen: Parsed = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
    req.resume();
    // In a header: an answer to HEAD has no body.
    req.on('end', () => res.setHeader('x-seen', Buffer.from(JSON.stringify(seen)).toString('base64')).end());
  });
  let port = 0;
  before(() => new Promise<void>((r) => server.listen(0, '127.0.0.1', () => { port = (server.address() as AddressInfo).port; r(); })));
  after(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });

  /** Node's view of one request (null: refused), on a fresh connection each time. */
  function nodeParses(head: string, bodyLength: number): Promise<Parsed | null> {
    return new Promise((resolve) => {
      const socket: Socket = connect(port, '127.0.0.1');
      let reply = '';
      socket.on('data', (d: Buffer) => { reply += d.toString('latin1'); });
      socket.on('error', () => {});
      socket.on('close', () => {
        const seen = /\r\nx-seen: ([^\r]*)\r\n/i.exec(reply)?.[1];
        if (!reply.startsWith('HTTP/1.1 200') || seen === undefined) return resolve(null);
        resolve(JSON.parse(Buffer.from(seen, 'base64').toString()) as Parsed);
      });
      socket.end(Buffer.concat([Buffer.from(`${head}\r\nConnection: close\r\n\r\n`, 'latin1'), Buffer.alloc(bodyLength, 0x61)]));
    });
  }

  const tokenChars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  const token = fc.string({ unit: fc.constantFrom(...tokenChars), minLength: 1, maxLength: 10 });
  const visible = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 16 });
  const value = fc.tuple(visible, fc.constantFrom('', ' ', '\t', ' x '), visible).map(([a, m, b]) => `${a}${m}${b}`);
  const reserved = ['host', 'content-length', 'transfer-encoding', 'expect', 'upgrade', 'connection', 'http2-settings'];
  const head = fc.record({
    method: fc.constantFrom(...leanMethods),
    target: visible.map((t) => `/${t}`),
    host: visible.filter((h) => h.length > 0),
    headers: fc.uniqueArray(fc.tuple(token, value), { maxLength: 8, selector: ([n]) => n.toLowerCase() })
      .map((hs) => hs.filter(([n]) => !reserved.includes(n.toLowerCase()))),
    length: fc.option(fc.integer({ min: 0, max: 64 }), { nil: undefined }),
    mutate: fc.option(fc.tuple(fc.nat(), fc.constantFrom('\u0000', '\u0001', '\u007f', ' ', ':', '\u00e9')), { nil: undefined }),
  }).map((r) => {
    const lines = [`${r.method} ${r.target} HTTP/1.1`, `Host: ${r.host}`, ...r.headers.map(([n, v]) => `${n}: ${v}`)];
    if (r.length !== undefined) lines.push(`Content-Length: ${r.length}`);
    let text = lines.join('\r\n');
    if (r.mutate) {
      const i = r.mutate[0] % text.length;
      text = text.slice(0, i) + r.mutate[1] + text.slice(i + 1);
    }
    return text;
  });

  it('property: what the lean reader takes, Node reads the same way', async () => {
    let compared = 0;
    await fc.assert(fc.asyncProperty(head, async (text) => {
      const v = parseLeanHead(text, { bodyBytesMax: 65_536 });
      if (v.kind !== 'lean') return;
      const seen = await nodeParses(text, v.head.contentLength);
      assert.ok(seen !== null, `Node refused a head the lean reader took: ${JSON.stringify(text)}`);
      compared += 1;
      assert.equal(seen.method, v.head.method);
      assert.equal(seen.url, v.head.target);
      const nodeHeaders = { ...seen.headers };
      delete nodeHeaders.connection; // added by this test
      assert.deepEqual(Object.entries(nodeHeaders).sort(), Object.entries(v.head.headers).sort());
    }), { numRuns: 800 });
    // About 30 % of the generated heads are lean (240 of 800 on average, 13 s.d.); the bound
    // only guards against a generator that stopped producing them.
    assert.ok(compared > 150, `only ${compared} heads compared`);
  });
});

describe('lean answers on the wire', () => {
  const body = '{"word":"naïve ✓"}';
  // x-way picks how the answer is written: whole (end with the body), parts (write, then end), or
  // a Latin-1 header value (which keeps head and body in separate writes).
  const host: LeanHost = {
    name: 'test',
    guard: (_kind, _event, fn) => fn(),
    accepts: () => true,
    serve: (req, res) => {
      const way = req.headers['x-way'];
      if (way === 'chunked') {
        // No length: the body goes chunked, and end() with it sends the last chunk too.
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(Buffer.from(body));
        return;
      }
      if (way === 'flat') {
        // As the DP relays a sandbox's head: a flat list of names and values, repeats kept.
        res.setHeader('content-type', 'text/plain');
        res.setHeader('x-extra', '1');
        res.writeHead(200, ['Content-Type', 'application/json', 'content-length', String(Buffer.byteLength(body)), 'set-cookie', 'a=1', 'set-cookie', 'b=2']);
        res.end(body);
        return;
      }
      const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
      if (way === 'latin1') headers['x-name'] = 'café';
      res.writeHead(200, headers);
      if (way === 'parts') {
        res.write(body);
        res.end();
      } else if (way === 'buffer') {
        // As the DP relays a sandbox's answer: the head, the body as bytes, then end().
        res.write(Buffer.from(body));
        res.end();
      } else res.end(body);
    },
    handOff: (socket) => socket.destroy(),
  };
  const lean = new LeanConnections(host, { bodyBytesMax: 1_024 }, { headersTimeoutMs: 5_000, requestTimeoutMs: 5_000, keepAliveTimeoutMs: 5_000 }, systemClock, silentLogger, 1_000);
  /** Writes handed to the kernel per connection (each `_write` or `_writev` is one syscall). */
  let socketWrites = 0;
  const server = createNetServer((socket) => {
    socket.on('error', () => socket.destroy());
    const counted = socket as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
    const write = counted._write.bind(socket);
    const writev = counted._writev.bind(socket);
    counted._write = (...a) => { socketWrites += 1; write(...a); };
    counted._writev = (...a) => { socketWrites += 1; writev(...a); };
    lean.accept(socket, null);
  });
  let port = 0;
  before(() => new Promise<void>((r) => server.listen(0, '127.0.0.1', () => { port = (server.address() as AddressInfo).port; r(); })));
  after(() => {
    lean.close();
    return new Promise<void>((r) => server.close(() => r()));
  });

  /** Two requests on one keep-alive connection; the raw bytes of both answers. */
  function exchange(way: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      const got: Buffer[] = [];
      const request = `GET / HTTP/1.1\r\nHost: t\r\nx-way: ${way}\r\n\r\n`;
      socket.on('data', (d: Buffer) => {
        got.push(d);
        const text = Buffer.concat(got);
        if (text.indexOf(Buffer.from(body)) !== text.lastIndexOf(Buffer.from(body))) socket.end();
      });
      socket.on('error', reject);
      // Bounded: an answer that never comes fails the test instead of hanging it.
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`${way}: no two answers within 5 s, got ${JSON.stringify(Buffer.concat(got).toString('latin1'))}`));
      }, 5_000);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(Buffer.concat(got));
      });
      socket.write(request + request);
    });
  }

  const withoutDates = (b: Buffer): string => b.toString('latin1').replace(/date: [^\r]*\r\n/g, '');

  it('writes the same bytes in one piece as in parts: head in Latin-1, body in UTF-8, twice on one connection', async () => {
    const whole = await exchange('whole');
    const parts = await exchange('parts');
    assert.equal(withoutDates(whole), withoutDates(parts));
    const bodyBytes = Buffer.from(body, 'utf8');
    assert.equal(whole.indexOf(bodyBytes) > 0 && whole.lastIndexOf(bodyBytes) > whole.indexOf(bodyBytes), true, 'both UTF-8 bodies');
    assert.match(whole.toString('latin1'), /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(whole.toString('latin1'), new RegExp(`content-length: ${bodyBytes.length}\r\n`));
  });

  it('writes an answer given in parts, as text or as bytes, in one socket write, and end() adds none', async () => {
    const whole = await exchange('whole');
    for (const way of ['parts', 'buffer']) {
      socketWrites = 0;
      const bytes = await exchange(way);
      assert.equal(withoutDates(bytes), withoutDates(whole), way);
      // Two answers on the connection (the second proves the first one finished).
      assert.equal(socketWrites, 2, `${way}: one write per answer`);
    }
    socketWrites = 0;
    const chunked = (await exchange('chunked')).toString('latin1');
    assert.equal(chunked.split('transfer-encoding: chunked\r\n').length, 3, chunked);
    assert.equal(chunked.split(`${Buffer.byteLength(body).toString(16)}\r\n`).length, 3, chunked);
    assert.ok(chunked.endsWith('\r\n0\r\n\r\n'), chunked);
    assert.equal(socketWrites, 2, 'chunked: head, body and last chunk in one write per answer');
  });

  it('keeps a Latin-1 header value one byte per character next to a UTF-8 body', async () => {
    const bytes = await exchange('latin1');
    assert.ok(bytes.includes(Buffer.from('x-name: caf\u00e9\r\n', 'latin1')), 'é as the byte 0xe9');
    assert.ok(bytes.includes(Buffer.from(body, 'utf8')), 'the body in UTF-8');
  });

  it('takes the head as a flat list of names and values: repeats kept, a name given there replaces its setHeader value', async () => {
    const bytes = await exchange('flat');
    const text = bytes.toString('latin1');
    const first = text.slice(0, text.indexOf('\r\n\r\n'));
    assert.equal(first.split('\r\n').filter((l) => /^content-type:/i.test(l)).join('|'), 'Content-Type: application/json', first);
    assert.match(first, /\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n/);
    assert.match(first, /\r\nx-extra: 1\r\n/);
    assert.match(first, /\r\nconnection: keep-alive\r\n/);
    const bodyBytes = Buffer.from(body, 'utf8');
    assert.ok(bytes.indexOf(bodyBytes) > 0 && bytes.lastIndexOf(bodyBytes) > bytes.indexOf(bodyBytes), 'both answers whole');
  });
});

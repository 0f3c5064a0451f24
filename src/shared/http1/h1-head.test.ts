/**
 * Goal: the lean request-head reader takes the plain requests of the hot path and sends every
 * request whose framing or form it does not fully understand to Node's server (never guessing).
 * Method: examples per rule, and a property over generated heads (fast-check): a head built from
 * valid parts reads back exactly; any head with one part made invalid is never lean. The shell
 * test (shell/lean-h1.test.ts) checks the accepted heads against Node's own parser.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { leanHeaderLinesMax, leanMethods, parseLeanHead, type HeadVerdict } from './h1-head.js';

const limits = { bodyBytesMax: 65_536 };

function lean(text: string): ReturnType<typeof parseLeanHead> & { kind: 'lean' } {
  const v = parseLeanHead(text, limits);
  assert.equal(v.kind, 'lean', `expected lean, got ${JSON.stringify(v)}`);
  return v as HeadVerdict & { kind: 'lean' };
}

function toNode(text: string, why?: string): void {
  const v = parseLeanHead(text, limits);
  assert.equal(v.kind, 'node', `expected node, got ${JSON.stringify(v)}`);
  if (why !== undefined) assert.equal((v as { why: string }).why, why);
}

describe('lean request head', () => {
  it('reads a GET: method, target, lower-case headers, trimmed values, keep-alive', () => {
    const v = lean('GET /function/f/x?y=1 HTTP/1.1\r\nHost: f\r\nX-Trace:  a b \t\r\nAccept: */*');
    assert.equal(v.head.method, 'GET');
    assert.equal(v.head.target, '/function/f/x?y=1');
    assert.deepEqual({ ...v.head.headers }, { host: 'f', 'x-trace': 'a b', accept: '*/*' });
    assert.equal(v.head.contentLength, 0);
    assert.equal(v.head.keepAlive, true);
  });

  it('reads a POST with a Content-Length body and Connection: close', () => {
    const v = lean('POST / HTTP/1.1\r\nHost: f\r\nContent-Length: 12\r\nConnection: Keep-Alive, Close');
    assert.equal(v.head.contentLength, 12);
    assert.equal(v.head.keepAlive, false);
  });

  it('Connection: the close and upgrade tokens in any case and order, with spaces; other tokens change nothing', () => {
    const keepAlive = (value: string): boolean => lean(`GET / HTTP/1.1\r\nHost: f\r\nConnection: ${value}`).head.keepAlive;
    assert.equal(keepAlive('keep-alive'), true);
    assert.equal(keepAlive('Keep-Alive'), true);
    assert.equal(keepAlive('closed, x-close, close-ish'), true);
    assert.equal(keepAlive(''), true);
    assert.equal(keepAlive('x , \tCLOSE\t'), false);
    assert.equal(keepAlive(',close,'), false);
    toNode('GET / HTTP/1.1\r\nHost: f\r\nConnection: close ,  UpGrade', 'connection: upgrade');
    assert.equal(keepAlive('upgraded, upgrades'), true);
  });

  it('a common name is read the same in any case, and a name that starts like one is its own', () => {
    const v = lean('GET / HTTP/1.1\r\nHOST: f\r\nContent-Type: a\r\nuser-agent: b\r\nhosts: c\r\naccept-encodings: d\r\nAccept: e');
    assert.deepEqual({ ...v.head.headers }, { host: 'f', 'content-type': 'a', 'user-agent': 'b', hosts: 'c', 'accept-encodings': 'd', accept: 'e' });
    toNode('GET / HTTP/1.1\r\nhost: f\r\nHost: g', 'repeated header');
  });

  it('a header named like an Object.prototype member is a plain header', () => {
    const v = lean('GET / HTTP/1.1\r\nHost: f\r\nConstructor: x\r\ntoString: y');
    assert.equal(v.head.headers.constructor, 'x');
    assert.equal(v.head.headers.tostring, 'y');
  });

  it('a __proto__ header goes to Node, which drops it (read as lean it would reach the sandbox)', () => {
    // Found by the property test against Node's parser: Node's headers object is a plain one,
    // so assigning `__proto__` sets no header.
    toNode('GET / HTTP/1.1\r\nHost: f\r\n__proto__: y', '__proto__');
    toNode('GET / HTTP/1.1\r\nHost: f\r\n__PROTO__: y', '__proto__');
  });

  it('leaves to Node what it does not fully understand', () => {
    toNode('GET / HTTP/1.0\r\nHost: f', 'version');
    toNode('get / HTTP/1.1\r\nHost: f', 'method');
    toNode('CONNECT f:443 HTTP/1.1\r\nHost: f', 'method');
    toNode('GET http://f/ HTTP/1.1\r\nHost: f', 'target');
    toNode('GET / HTTP/1.1', 'host');
    toNode('GET / HTTP/1.1\r\nHost: f\r\nTransfer-Encoding: chunked', 'transfer-encoding');
    toNode('POST / HTTP/1.1\r\nHost: f\r\nExpect: 100-continue\r\nContent-Length: 5', 'expect');
    toNode('GET / HTTP/1.1\r\nHost: f\r\nUpgrade: websocket\r\nConnection: Upgrade', 'upgrade');
    toNode('GET / HTTP/1.1\r\nHost: f\r\nConnection: upgrade', 'connection: upgrade');
    toNode('POST / HTTP/1.1\r\nHost: f\r\nContent-Length: 65537', 'body size');
    toNode('POST / HTTP/1.1\r\nHost: f\r\nContent-Length: +5', 'content-length');
    toNode('POST / HTTP/1.1\r\nHost: f\r\nContent-Length: 5\r\nContent-Length: 5', 'repeated header');
    toNode('GET / HTTP/1.1\r\nHost: f\r\nHost: g', 'repeated header');
    toNode('GET / HTTP/1.1\r\nHost: f\r\n folded', 'header name');
    toNode('GET / HTTP/1.1\r\nHost : f', 'header name');
    toNode('GET / HTTP/1.1\r\nHost: f\r\nX: a\u0001b', 'header value');
    toNode('GET / HTTP/1.1\r\nHost: f\r\nX: caf\u00e9', 'header value');
    toNode('GET /a b HTTP/1.1\r\nHost: f', 'version');
    toNode('GET /\u00e9 HTTP/1.1\r\nHost: f', 'target');
    const many = Array.from({ length: leanHeaderLinesMax }, (_, i) => `X-${i}: v`).join('\r\n');
    toNode(`GET / HTTP/1.1\r\nHost: f\r\n${many}`, 'header count');
  });

  const tokenChars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  const token = fc.string({ unit: fc.constantFrom(...tokenChars), minLength: 1, maxLength: 12 });
  const visible = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 20 });
  const value = fc.tuple(visible, fc.string({ unit: fc.constantFrom(' ', '\t', 'a', 'Z', '=', '"'), maxLength: 4 }), visible)
    .map(([a, mid, b]) => `${a}${mid}${b}`.trim());
  const headerList = fc.uniqueArray(fc.tuple(token, value), { maxLength: 12, selector: ([n]) => n.toLowerCase() })
    .map((hs) => hs.filter(([n]) => !['host', 'content-length', 'transfer-encoding', 'expect', 'upgrade', 'connection', 'http2-settings', '__proto__'].includes(n.toLowerCase())));
  const request = fc.record({
    method: fc.constantFrom(...leanMethods),
    target: visible.map((t) => `/${t}`),
    host: visible.filter((h) => h.length > 0),
    headers: headerList,
    length: fc.option(fc.integer({ min: 0, max: limits.bodyBytesMax }), { nil: undefined }),
  });

  function render(r: { method: string; target: string; host: string; headers: [string, string][]; length: number | undefined }): string {
    const lines = [`${r.method} ${r.target} HTTP/1.1`, `Host: ${r.host}`, ...r.headers.map(([n, v]) => `${n}: ${v}`)];
    if (r.length !== undefined) lines.push(`Content-Length: ${r.length}`);
    return lines.join('\r\n');
  }

  it('property: a head of valid parts reads back exactly', () => {
    fc.assert(fc.property(request, (r) => {
      const v = parseLeanHead(render(r), limits);
      assert.equal(v.kind, 'lean');
      if (v.kind !== 'lean') return;
      assert.equal(v.head.method, r.method);
      assert.equal(v.head.target, r.target);
      assert.equal(v.head.contentLength, r.length ?? 0);
      const expected: [string, string][] = [['host', r.host], ...r.headers.map(([n, val]): [string, string] => [n.toLowerCase(), val])];
      if (r.length !== undefined) expected.push(['content-length', String(r.length)]);
      // Integer-like names enumerate first in any object: compare as sorted pairs.
      assert.deepEqual(Object.entries(v.head.headers).sort(), expected.sort());
    }), { numRuns: 500 });
  });

  it('property: one byte made a control character or a CR/LF split is never read as lean with that byte in it', () => {
    fc.assert(fc.property(request, fc.nat(), fc.constantFrom('\u0000', '\u0001', '\u007f', '\r', '\n', '\u00ff'), (r, at, bad) => {
      const text = render(r);
      const i = at % text.length;
      const mutated = text.slice(0, i) + bad + text.slice(i + 1);
      const v = parseLeanHead(mutated, limits);
      if (v.kind === 'lean') {
        // Only a replaced CR or LF of a line break can still be lean; no value or target may carry it.
        const fields = [v.head.method, v.head.target, ...Object.entries(v.head.headers).flat()];
        for (const f of fields) {
          const bad = [...f].find((ch) => { const c = ch.charCodeAt(0); return (c < 0x20 && c !== 0x09) || c >= 0x7f; });
          assert.equal(bad, undefined, `lean field ${JSON.stringify(f)} of ${JSON.stringify(mutated)}`);
        }
      }
    }), { numRuns: 1_000 });
  });
});

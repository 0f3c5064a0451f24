/**
 * @module shared/http1/h1-head
 * The lean invocation path's HTTP/1.1 request-head reader (issue 12, part 2). It accepts a strict
 * subset of HTTP/1.1: what a FaaS client sends on the hot path (a method of `leanMethods`, an
 * origin-form target, `HTTP/1.1`, single-valued headers of token names and visible-ASCII values,
 * a Host, no body or a Content-Length body small enough to buffer). Anything else gets
 * `{ kind: 'node' }` and the connection goes to Node's HTTP server, which either serves it
 * (chunked bodies, Expect: 100-continue, upgrades, HTTP/1.0, duplicate headers) or refuses it with
 * the answer it always gave. So the lean reader never decides a request is malformed, and it
 * never reads a request differently from Node: what it accepts, Node accepts with the same
 * method, target and headers (a property test pins this against Node's parser).
 *
 * Request smuggling needs two readers that disagree about where a body ends; the lean reader
 * only accepts requests whose framing is a single decimal Content-Length, or none.
 *
 * Pure: it reads the head's text (latin1, without the final CRLF CRLF).
 */

import { lowerHeaderName } from './header-name.js';

/** Methods the lean path serves; others (CONNECT, TRACE, extension methods) go to Node. */
export const leanMethods: ReadonlySet<string> = new Set(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS']);

/** More header lines than this and the request goes to Node (which keeps its own limits). */
export const leanHeaderLinesMax = 64;

/**
 * Headers whose presence means framing or semantics the lean path leaves to Node. `__proto__`:
 * Node's headers object is a plain one, so Node drops that header; read as lean it would go on.
 */
const nodeOnlyHeaders: ReadonlySet<string> = new Set(['transfer-encoding', 'expect', 'upgrade', 'http2-settings', '__proto__']);

export interface LeanHead {
  method: string;
  /** The request target as sent (origin form: starts with '/'). */
  target: string;
  /** Lower-case names; each appears once. */
  headers: Record<string, string>;
  /** Body bytes that follow the head (0: none). */
  contentLength: number;
  /** False when the client sent `Connection: close`. */
  keepAlive: boolean;
}

export type HeadVerdict = { kind: 'lean'; head: LeanHead } | { kind: 'node'; why: string };

export interface LeanLimits {
  /** A Content-Length above this goes to Node (which streams it under the proxy's own limit). */
  bodyBytesMax: number;
}

const connectionClose = 1;
const connectionUpgrade = 2;

/** The `close` and `upgrade` tokens of a Connection value (any case, comma-separated, spaces around). */
function connectionTokens(value: string): number {
  if (value === 'keep-alive') return 0;
  const v = value.toLowerCase();
  let found = 0;
  for (let from = 0; from <= v.length; ) {
    let to = v.indexOf(',', from);
    if (to < 0) to = v.length;
    let a = from;
    let b = to;
    while (a < b && isSpace(v.charCodeAt(a))) a++;
    while (b > a && isSpace(v.charCodeAt(b - 1))) b--;
    if (b - a === 5 && v.startsWith('close', a)) found |= connectionClose;
    else if (b - a === 7 && v.startsWith('upgrade', a)) found |= connectionUpgrade;
    from = to + 1;
  }
  return found;
}

/** Visible ASCII only (0x21-0x7e): no spaces, controls or bytes past ASCII. */
function isVisible(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/** A header value after trimming: visible ASCII, spaces and tabs, nothing else. */
function isFieldValue(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c > 0x7e) return false;
  }
  return true;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

const decimal = /^\d{1,15}$/;

function node(why: string): HeadVerdict {
  return { kind: 'node', why };
}

/** Reads a request head (latin1 text up to, not including, the blank line). */
export function parseLeanHead(text: string, limits: LeanLimits): HeadVerdict {
  let lineEnd = text.indexOf('\r\n');
  if (lineEnd < 0) lineEnd = text.length;
  // Request line: METHOD SP target SP HTTP/1.1
  const sp1 = text.indexOf(' ');
  if (sp1 <= 0 || sp1 > lineEnd) return node('request line');
  const method = text.slice(0, sp1);
  if (!leanMethods.has(method)) return node('method');
  const sp2 = text.indexOf(' ', sp1 + 1);
  if (sp2 < 0 || sp2 > lineEnd) return node('request line');
  if (text.charCodeAt(sp1 + 1) !== 0x2f /* '/' */ || !isVisible(text, sp1 + 1, sp2)) return node('target');
  if (lineEnd - sp2 - 1 !== 8 || !text.startsWith('HTTP/1.1', sp2 + 1)) return node('version');
  const target = text.slice(sp1 + 1, sp2);

  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  let contentLength = 0;
  let keepAlive = true;
  let lines = 0;
  let at = lineEnd + 2;
  while (at < text.length) {
    if (++lines > leanHeaderLinesMax) return node('header count');
    let end = text.indexOf('\r\n', at);
    if (end < 0) end = text.length;
    const colon = text.indexOf(':', at);
    const name = colon < 0 || colon > end ? null : lowerHeaderName(text, at, colon);
    if (name === null) return node('header name');
    let v0 = colon + 1;
    let v1 = end;
    while (v0 < v1 && isSpace(text.charCodeAt(v0))) v0++;
    while (v1 > v0 && isSpace(text.charCodeAt(v1 - 1))) v1--;
    if (!isFieldValue(text, v0, v1)) return node('header value');
    if (name in headers) return node('repeated header');
    if (nodeOnlyHeaders.has(name)) return node(name);
    const value = text.slice(v0, v1);
    if (name === 'content-length') {
      if (!decimal.test(value)) return node('content-length');
      contentLength = Number(value);
      if (contentLength > limits.bodyBytesMax) return node('body size');
    } else if (name === 'connection') {
      const tokens = connectionTokens(value);
      if ((tokens & connectionUpgrade) !== 0) return node('connection: upgrade');
      if ((tokens & connectionClose) !== 0) keepAlive = false;
    }
    headers[name] = value;
    at = end + 2;
  }
  if (headers.host === undefined || headers.host === '') return node('host');
  // A null-prototype object: a header named like an Object.prototype member stays a plain entry.
  return { kind: 'lean', head: { method, target, headers, contentLength, keepAlive } };
}

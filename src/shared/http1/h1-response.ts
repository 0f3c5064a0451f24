/**
 * @module shared/http1/h1-response
 * Reads one HTTP/1.1 response, incrementally: from a sandbox for the DP's lean upstream client
 * (data-plane/shell/lean-upstream), and from the DP for the load generator's lean sender
 * (loadgen/shell/lean-sender). A sandbox runs a stranger's code, so everything it sends is checked:
 * a status line of HTTP/1.x and three digits, header names that are tokens, values without
 * control characters, one Content-Length (or repeats of the same one), chunk sizes in hex of a
 * bounded length, and bounded head, chunk-size and trailer sizes. Anything else is a
 * `SandboxProtocolError` (the proxy answers 502 and drops the connection).
 *
 * Framing (RFC 9112 §6.3): no body for HEAD, 1xx, 204 and 304; chunked when Transfer-Encoding
 * ends in chunked; Content-Length; otherwise the body runs to the end of the connection. 1xx
 * answers other than 101 are skipped (the proxy sent no Expect, but a sandbox may send 103).
 */
import { ByteAccumulator } from './byte-accumulator.js';
import { lowerHeaderName } from './header-name.js';

/** A head longer than this (as Node's `maxHeaderSize`) is refused. */
export const responseHeadBytesMax = 16_384;
/** A chunk-size line (with extensions) or the trailer section longer than this is refused. */
const chunkLineBytesMax = 4_096;
const trailerBytesMax = 16_384;

export class SandboxProtocolError extends Error {
  readonly code = 'DIRIGENT_SANDBOX_PROTOCOL';
}

export interface ResponseHead {
  statusCode: number;
  /**
   * The header fields in order, flat: a lower-case name, then its value, then the next name.
   * A repeated name appears once per line. (A flat list, not an object: no dictionary of names
   * is built per head, and the proxy relays the list as it is.)
   */
  fields: string[];
  /** The connection may carry another request after this response. */
  keepAlive: boolean;
  /** The sandbox's `Keep-Alive: timeout=<s>`, in ms (0: none given). */
  keepAliveTimeoutMs: number;
}

export interface ResponseSink {
  head(h: ResponseHead): void;
  /** `chunk` is valid only during the call (it may be a view of a reused read buffer). */
  data(chunk: Buffer): void;
  end(): void;
}

type State = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' | 'eof' | 'done';

const crlf2 = Buffer.from('\r\n\r\n');
const crlf = Buffer.from('\r\n');
// eslint-disable-next-line no-control-regex
const badValueChar = /[\x00-\x08\x0a-\x1f\x7f]/;
const decimal = /^\d{1,15}$/;
const hex = /^[0-9a-fA-F]{1,15}$/;
const keepAliveTimeout = /(?:^|[,;\s])timeout=(\d{1,9})/i;

/** Latin-1 characters String.prototype.trim removes from a header value's ends. */
function trimmedByJs(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 160;
}

/** A control character other than HTAB, or DEL: not allowed in a header value. */
function badValueCode(c: number): boolean {
  return c < 32 ? c !== 9 : c === 127;
}

/** `HTTP/1.[01] [1-9]dd` then nothing or a space and a reason without CR or LF: the code, else -1. */
function statusCodeOf(text: string, end: number): number {
  if (end < 12 || !text.startsWith('HTTP/1.', 0)) return -1;
  const minor = text.charCodeAt(7);
  if ((minor !== 48 && minor !== 49) || text.charCodeAt(8) !== 32) return -1;
  const d0 = text.charCodeAt(9) - 48;
  const d1 = text.charCodeAt(10) - 48;
  const d2 = text.charCodeAt(11) - 48;
  if (d0 < 1 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return -1;
  if (end > 12) {
    if (text.charCodeAt(12) !== 32) return -1;
    for (let i = 13; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c === 13 || c === 10) return -1;
    }
  }
  return d0 * 100 + d1 * 10 + d2;
}

function fail(message: string): never {
  throw new SandboxProtocolError(`sandbox response: ${message}`);
}

export class H1ResponseReader {
  private state: State = 'head';
  /** Bytes of an unfinished head, chunk-size line or trailer section. */
  private readonly head = new ByteAccumulator(crlf2.length);
  private readonly lines = new ByteAccumulator(crlf.length);
  /** Body bytes left of the Content-Length or of the current chunk. */
  private left = 0;
  /** Bytes arrived after the response ended: the connection cannot be reused. */
  trailingBytes = false;

  constructor(private readonly isHeadRequest: boolean) {}

  get done(): boolean {
    return this.state === 'done';
  }

  /** Whether the body runs to the end of the connection (it cannot be reused then). */
  get closeDelimited(): boolean {
    return this.state === 'eof';
  }

  /** Reads bytes as they arrive; calls the sink; throws SandboxProtocolError. */
  feed(chunk: Buffer, sink: ResponseSink): void {
    let buf = chunk;
    while (buf.length > 0) {
      switch (this.state) {
        case 'head': {
          const all = this.head.append(buf);
          const end = all.indexOf(crlf2, this.head.scanFrom);
          if (end < 0) {
            if (all.length > responseHeadBytesMax) fail(`head longer than ${responseHeadBytesMax} bytes`);
            this.head.searchedTo(all.length);
            return;
          }
          if (end > responseHeadBytesMax) fail(`head longer than ${responseHeadBytesMax} bytes`);
          this.head.clear();
          buf = all.subarray(end + 4);
          this.onHead(all.toString('latin1', 0, end), sink);
          break;
        }
        case 'length': {
          if (buf.length <= this.left) {
            this.left -= buf.length;
            sink.data(buf);
            if (this.left === 0) this.finish(sink);
            return;
          }
          sink.data(buf.subarray(0, this.left));
          buf = buf.subarray(this.left);
          this.left = 0;
          this.finish(sink);
          break;
        }
        case 'chunk-size':
        case 'chunk-crlf':
        case 'trailers': {
          const rest = this.line(buf, sink);
          if (rest === null) return;
          buf = rest;
          break;
        }
        case 'chunk-data': {
          if (buf.length <= this.left) {
            this.left -= buf.length;
            sink.data(buf);
            if (this.left === 0) this.state = 'chunk-crlf';
            return;
          }
          sink.data(buf.subarray(0, this.left));
          buf = buf.subarray(this.left);
          this.left = 0;
          this.state = 'chunk-crlf';
          break;
        }
        case 'eof':
          sink.data(buf);
          return;
        case 'done':
          this.trailingBytes = true;
          return;
      }
    }
  }

  /**
   * The bytes fed last will be overwritten (the upstream reads into one reused buffer): what the
   * reader holds of an unfinished head or line is copied. Body bytes are not held here: the sink
   * gets them during `feed` and keeps copies if it keeps them.
   */
  detachInput(): void {
    this.head.detach();
    this.lines.detach();
  }

  /** The connection ended: completes a body that runs to it; anything else was cut short. */
  eof(sink: ResponseSink): void {
    if (this.state === 'eof') {
      this.state = 'done';
      sink.end();
      return;
    }
    if (this.state !== 'done') fail('connection closed before the response was complete');
  }

  private onHead(text: string, sink: ResponseSink): void {
    // A scan by character codes: no split into lines, no regular expression per line (reading
    // and relaying a head took 3.7 us per answer that way, 2.7 us this way; see BENCHMARKS).
    const first = text.indexOf('\r\n');
    const statusEnd = first < 0 ? text.length : first;
    const statusCode = statusCodeOf(text, statusEnd);
    if (statusCode < 0) fail('bad status line');
    if (statusCode > 599) fail(`status ${statusCode}`);
    const http10 = text.charCodeAt(7) === 48; // HTTP/1.0
    const fields: string[] = [];
    let length = -1;
    let chunked = false;
    let teSeen = false;
    let close = http10;
    let keepAliveTimeoutMs = 0;
    let lineEnd = statusEnd;
    while (lineEnd < text.length) {
      const pos = lineEnd + 2;
      const next = text.indexOf('\r\n', pos);
      lineEnd = next < 0 ? text.length : next;
      const colon = text.indexOf(':', pos);
      if (colon <= pos || colon >= lineEnd) fail('bad header line');
      const name = lowerHeaderName(text, pos, colon);
      if (name === null) fail('bad header name');
      let from = colon + 1;
      let to = lineEnd;
      while (from < to && trimmedByJs(text.charCodeAt(from))) from++;
      while (to > from && trimmedByJs(text.charCodeAt(to - 1))) to--;
      for (let i = from; i < to; i++) {
        if (badValueCode(text.charCodeAt(i))) fail(`bad character in header ${name}`);
      }
      const value = text.slice(from, to);
      fields.push(name, value);
      if (name === 'content-length') {
        if (!decimal.test(value)) fail('bad content-length');
        const n = Number(value);
        if (length >= 0 && n !== length) fail('conflicting content-length');
        length = n;
      } else if (name === 'transfer-encoding') {
        teSeen = true;
        const codings = value.toLowerCase().split(',');
        chunked = codings[codings.length - 1]!.trim() === 'chunked';
      } else if (name === 'connection') {
        const v = value.toLowerCase();
        if (v.includes('close')) close = true;
        else if (http10 && v.includes('keep-alive')) close = false;
      } else if (name === 'keep-alive') {
        const t = keepAliveTimeout.exec(value);
        if (t !== null) keepAliveTimeoutMs = Number(t[1]) * 1000;
      }
    }
    if (statusCode < 200) {
      if (statusCode === 101) fail('101 Switching Protocols to a request that asked for none');
      return; // an interim answer: the real head follows
    }
    // Transfer-Encoding beside Content-Length (RFC 9112 §6.3): the length is ignored and not
    // relayed (the client would wait for bytes that never come), and the connection is not reused.
    if (teSeen && length >= 0) {
      close = true;
      for (let i = fields.length - 2; i >= 0; i -= 2) if (fields[i] === 'content-length') fields.splice(i, 2);
    }
    sink.head({ statusCode, fields, keepAlive: !close, keepAliveTimeoutMs });
    if (this.isHeadRequest || statusCode === 204 || statusCode === 304) {
      this.finish(sink);
    } else if (teSeen) {
      if (chunked) this.state = 'chunk-size';
      else this.state = 'eof';
    } else if (length >= 0) {
      this.left = length;
      if (length === 0) this.finish(sink);
      else this.state = 'length';
    } else {
      this.state = 'eof';
    }
  }

  /** A CRLF-ended line of the chunked framing; null when it has not all arrived. */
  private line(buf: Buffer, sink: ResponseSink): Buffer | null {
    const all = this.lines.append(buf);
    const end = all.indexOf(crlf, this.lines.scanFrom);
    const limit = this.state === 'trailers' ? trailerBytesMax : chunkLineBytesMax;
    if (end < 0) {
      if (all.length > limit) fail('chunk framing line too long');
      this.lines.searchedTo(all.length);
      return null;
    }
    if (end > limit) fail('chunk framing line too long');
    this.lines.clear();
    const text = all.toString('latin1', 0, end);
    const rest = all.subarray(end + 2);
    if (this.state === 'chunk-crlf') {
      if (end !== 0) fail('chunk not followed by CRLF');
      this.state = 'chunk-size';
    } else if (this.state === 'chunk-size') {
      const semi = text.indexOf(';');
      const size = (semi < 0 ? text : text.slice(0, semi)).trim();
      if (!hex.test(size)) fail('bad chunk size');
      this.left = parseInt(size, 16);
      this.state = this.left === 0 ? 'trailers' : 'chunk-data';
    } else if (end === 0) {
      this.finish(sink); // the empty line after the (ignored) trailer fields
    } else if (badValueChar.test(text)) {
      fail('bad trailer line');
    }
    return rest;
  }

  private finish(sink: ResponseSink): void {
    this.state = 'done';
    sink.end();
  }
}

/**
 * @module data-plane/shell/h1-response
 * Reads one HTTP/1.1 response from a sandbox, incrementally, for the lean upstream client
 * (shell/lean-upstream). The sandbox runs a stranger's code, so everything it sends is checked:
 * a status line of HTTP/1.x and three digits, header names that are tokens, values without
 * control characters, one Content-Length (or repeats of the same one), chunk sizes in hex of a
 * bounded length, and bounded head, chunk-size and trailer sizes. Anything else is a
 * `SandboxProtocolError` (the proxy answers 502 and drops the connection).
 *
 * Framing (RFC 9112 §6.3): no body for HEAD, 1xx, 204 and 304; chunked when Transfer-Encoding
 * ends in chunked; Content-Length; otherwise the body runs to the end of the connection. 1xx
 * answers other than 101 are skipped (the proxy sent no Expect, but a sandbox may send 103).
 */
import { ByteAccumulator } from '../../shared/http1/byte-accumulator.js';

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
  /** Lower-case names; repeated headers as arrays, in order. */
  headers: Record<string, string | string[]>;
  /** The connection may carry another request after this response. */
  keepAlive: boolean;
  /** The sandbox's `Keep-Alive: timeout=<s>`, in ms (0: none given). */
  keepAliveTimeoutMs: number;
}

export interface ResponseSink {
  head(h: ResponseHead): void;
  data(chunk: Buffer): void;
  end(): void;
}

type State = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' | 'eof' | 'done';

const crlf2 = Buffer.from('\r\n\r\n');
const crlf = Buffer.from('\r\n');
const tchar = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// eslint-disable-next-line no-control-regex
const badValueChar = /[\x00-\x08\x0a-\x1f\x7f]/;
const statusLine = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [^\r\n]*)?$/;
const decimal = /^\d{1,15}$/;
const hex = /^[0-9a-fA-F]{1,15}$/;
const keepAliveTimeout = /(?:^|[,;\s])timeout=(\d{1,9})/i;

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
    const lines = text.split('\r\n');
    const m = statusLine.exec(lines[0]!);
    if (m === null) fail('bad status line');
    const http10 = m[1] === '0';
    const statusCode = Number(m[2]);
    if (statusCode > 599) fail(`status ${statusCode}`);
    const headers: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
    let length = -1;
    let chunked = false;
    let teSeen = false;
    let close = http10;
    let keepAliveTimeoutMs = 0;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon <= 0) fail('bad header line');
      const name = line.slice(0, colon).toLowerCase();
      if (!tchar.test(name)) fail('bad header name');
      const value = line.slice(colon + 1).trim();
      if (badValueChar.test(value)) fail(`bad character in header ${name}`);
      const prior = headers[name];
      if (prior === undefined) headers[name] = value;
      else if (typeof prior === 'string') headers[name] = [prior, value];
      else prior.push(value);
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
      delete headers['content-length'];
    }
    sink.head({ statusCode, headers, keepAlive: !close, keepAliveTimeoutMs });
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

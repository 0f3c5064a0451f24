/**
 * @module shared/grpc-link/frames
 * gRPC's message framing and call status, without I/O: the 5-byte prefix of every message
 * (a compressed flag and a 32-bit big-endian length), a deframer that cuts a byte stream into
 * message bodies, and the status a call ends with (grpc-status and grpc-message in the
 * trailers, or the HTTP status when the server never got to gRPC).
 */

/** The prefix of every message: one flag byte, then the body's length (uint32, big-endian). */
export const grpcPrefixBytes = 5;

/** The status codes this link names (the full list is in gRPC's doc/statuscodes.md). */
export const grpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** The highest status code gRPC defines (UNAUTHENTICATED). */
const grpcStatusCodeMax = 16;

const statusNames: readonly string[] = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE',
  'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
];

export function statusName(code: number): string {
  return statusNames[code] ?? `STATUS_${code}`;
}

/** How a call ended. */
export interface CallStatus {
  code: number;
  details: string;
}

/** Headers or trailers as node:http2 hands them over. */
export type HeaderBag = Record<string, string | string[] | number | undefined>;

function single(v: string | string[] | number | undefined): string | undefined {
  if (Array.isArray(v)) return v[0];
  return v === undefined ? undefined : String(v);
}

/** gRPC's mapping of an HTTP status to a call status, for an answer that carries no grpc-status. */
export function statusOfHttp(httpStatus: number): CallStatus {
  const details = `HTTP status ${httpStatus} without a grpc-status`;
  switch (httpStatus) {
    case 400: return { code: grpcStatus.INTERNAL, details };
    case 401: return { code: grpcStatus.UNAUTHENTICATED, details };
    case 403: return { code: grpcStatus.PERMISSION_DENIED, details };
    case 404: return { code: grpcStatus.UNIMPLEMENTED, details };
    case 429: case 502: case 503: case 504: return { code: grpcStatus.UNAVAILABLE, details };
    default: return { code: grpcStatus.UNKNOWN, details };
  }
}

/**
 * The status in a call's trailers (or in the headers of a trailers-only answer). A missing or
 * malformed grpc-status is UNKNOWN; grpc-message is percent-encoded on the wire.
 */
export function statusOfTrailers(trailers: HeaderBag, httpStatus: number): CallStatus {
  const raw = single(trailers['grpc-status']);
  if (raw === undefined) return httpStatus === 200 ? { code: grpcStatus.UNKNOWN, details: 'the call ended without a grpc-status' } : statusOfHttp(httpStatus);
  const code = /^\d{1,2}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(code >= 0 && code <= grpcStatusCodeMax)) return { code: grpcStatus.UNKNOWN, details: `malformed grpc-status ${JSON.stringify(raw.slice(0, 16))}` };
  const message = single(trailers['grpc-message']) ?? '';
  return { code, details: percentDecoded(message) };
}

function percentDecoded(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s; // not valid percent-encoding: the raw text says more than nothing
  }
}

/**
 * grpc-message as the wire carries it: bytes outside printable ASCII, and '%' itself, as %XX of
 * their UTF-8 (PROTOCOL-HTTP2.md). Printable text, the usual case, goes as it is.
 */
export function percentEncoded(details: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(details)) return details;
  let out = '';
  for (const byte of Buffer.from(details, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The trailers (or the headers of a trailers-only answer) that end a call with `status`. */
export function statusTrailers(status: CallStatus): Record<string, string> {
  const out: Record<string, string> = { 'grpc-status': String(status.code) };
  if (status.details !== '') out['grpc-message'] = percentEncoded(status.details);
  return out;
}

/** HTTP/2 error codes with a status of their own (RFC 9113 section 7). */
const h2RefusedStream = 0x7;
const h2Cancel = 0x8;
const h2EnhanceYourCalm = 0xb;
const h2InadequateSecurity = 0xc;

/** gRPC's mapping of a RST_STREAM from the server, on a call that got no status (PROTOCOL-HTTP2.md). */
export function statusOfReset(h2Code: number): CallStatus {
  const details = `the server reset the stream (HTTP/2 error code ${h2Code})`;
  switch (h2Code) {
    case h2RefusedStream: return { code: grpcStatus.UNAVAILABLE, details };
    case h2Cancel: return { code: grpcStatus.CANCELLED, details };
    case h2EnhanceYourCalm: return { code: grpcStatus.RESOURCE_EXHAUSTED, details };
    case h2InadequateSecurity: return { code: grpcStatus.PERMISSION_DENIED, details };
    default: return { code: grpcStatus.INTERNAL, details };
  }
}

/** Why a byte stream is not a sequence of gRPC messages this link accepts. */
export interface DeframeFault {
  code: number;
  details: string;
}

/**
 * Cuts the bytes of one direction of a call into message bodies. A body that arrives in one chunk
 * is handed out as a view of it, without a copy; a body split over chunks is joined once, when
 * its last byte has come. Compressed messages are refused (this link never offers an encoding).
 */
export class MessageDeframer {
  private chunks: Buffer[] = [];
  private queuedBytes = 0;
  /** Bytes the next step needs: a prefix, or a prefix and its body. */
  private neededBytes = grpcPrefixBytes;
  private fault: DeframeFault | null = null;

  constructor(private readonly messageBytesMax: number) {}

  /** Takes a chunk; hands each complete body to `out`, in order. A fault stops the deframer. */
  push(chunk: Buffer, out: (body: Buffer) => void): DeframeFault | null {
    if (this.fault) return this.fault;
    this.chunks.push(chunk);
    this.queuedBytes += chunk.length;
    if (this.queuedBytes < this.neededBytes) return null;
    const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.queuedBytes);
    this.chunks = [];
    this.queuedBytes = 0;
    let at = 0;
    for (;;) {
      const left = buf.length - at;
      if (left < grpcPrefixBytes) {
        this.neededBytes = grpcPrefixBytes;
        break;
      }
      const flag = buf[at]!;
      if (flag !== 0) return this.stop({ code: grpcStatus.INTERNAL, details: `a compressed message (flag ${flag}) on a link that offers no compression` });
      const bodyBytes = buf.readUInt32BE(at + 1);
      if (bodyBytes > this.messageBytesMax) {
        return this.stop({ code: grpcStatus.RESOURCE_EXHAUSTED, details: `a message of ${bodyBytes} bytes, above the limit of ${this.messageBytesMax}` });
      }
      if (left < grpcPrefixBytes + bodyBytes) {
        this.neededBytes = grpcPrefixBytes + bodyBytes;
        break;
      }
      out(buf.subarray(at + grpcPrefixBytes, at + grpcPrefixBytes + bodyBytes));
      at += grpcPrefixBytes + bodyBytes;
    }
    if (at < buf.length) {
      this.chunks.push(buf.subarray(at));
      this.queuedBytes = buf.length - at;
    }
    return null;
  }

  /** Bytes received that do not yet make a whole message (a call that ends with some is cut short). */
  get pendingBytes(): number {
    return this.queuedBytes;
  }

  private stop(fault: DeframeFault): DeframeFault {
    this.fault = fault;
    this.chunks = [];
    this.queuedBytes = 0;
    return fault;
  }
}

/** Writes the prefix into the first 5 bytes of `frame`, whose remaining bytes are the body. */
export function writePrefix(frame: Buffer): Buffer {
  frame[0] = 0;
  frame.writeUInt32BE(frame.length - grpcPrefixBytes, 1);
  return frame;
}

/** A body with its prefix, in a new buffer (the link's encoders write the prefix in place instead). */
export function framed(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(grpcPrefixBytes + body.length);
  out.set(body, grpcPrefixBytes);
  return writePrefix(out);
}

/**
 * @module control-plane/shell/http-util
 * Small helpers for the JSON management API: bounded body reading and error answers in the one
 * shape every client sees, `{"error":{"code","message","field"}}`.
 */
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { ErrorCode, type ApiErrorBody } from '../../api/types.js';
import { LeanRequest } from '../../shared/http1/lean-h1.js';

/** A request as the routes see it: Node's (streamed body) or one the lean path read whole. */
export type ApiRequest = IncomingMessage | LeanRequest;

/** What the routes write an answer through: Node's ServerResponse or the lean path's. */
export interface ApiResponse {
  readonly headersSent: boolean;
  setHeader(name: string, value: string | number | readonly string[]): unknown;
  writeHead(statusCode: number, headers?: OutgoingHttpHeaders): unknown;
  end(chunk?: string | Buffer): unknown;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export interface BodyLimits {
  /** Largest body read. */
  bodyBytesMax: number;
  /**
   * Past bodyBytesMax the rest is read and dropped up to this many bytes, so the client has
   * sent everything and reads our 413 instead of a connection reset; beyond it we close.
   */
  bodyDiscardBytesMax: number;
}

function bodyTooLarge(bodyBytesMax: number, declared: number): HttpError {
  return new HttpError(413, ErrorCode.bodyTooLarge, `body exceeds ${bodyBytesMax} bytes${declared > 0 ? ` (declared ${declared})` : ''}`, 'body');
}

/** The body as text; a body past the limit is drained (bounded) and answered with 413. */
export function readBody(req: ApiRequest, limits: BodyLimits): Promise<string> {
  if (req instanceof LeanRequest) {
    // Read whole already (the lean path takes only bodies far under the limit; checked anyway).
    const size = req.body?.length ?? 0;
    if (size > limits.bodyBytesMax) return Promise.reject(bodyTooLarge(limits.bodyBytesMax, size));
    return Promise.resolve(req.body === null ? '' : req.body.toString('utf8'));
  }
  return new Promise((resolve, reject) => {
    const { bodyBytesMax, bodyDiscardBytesMax } = limits;
    const declared = Number(req.headers['content-length'] ?? 0);
    const tooLarge = (): HttpError => bodyTooLarge(bodyBytesMax, declared);
    if (declared > bodyBytesMax + bodyDiscardBytesMax) {
      reject(tooLarge()); // not worth draining: answer now, the connection closes after it
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= bodyBytesMax) chunks.push(chunk);
      else if (size > bodyBytesMax + bodyDiscardBytesMax) {
        req.pause();
        reject(tooLarge());
      }
    });
    req.on('end', () => (size > bodyBytesMax ? reject(tooLarge()) : resolve(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

/** The media type of a request (lower case, without parameters), '' when absent. */
function mediaType(req: ApiRequest): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

/** JSON routes read only JSON: a text/plain body is a client mistake, not JSON. */
export function requireJson(req: ApiRequest): void {
  const type = mediaType(req);
  if (type === 'application/json') return;
  throw new HttpError(415, ErrorCode.unsupportedMediaType,
    `content-type must be application/json, got ${type === '' ? 'none' : JSON.stringify(type)}`, 'content-type');
}

export function parseJson(text: string, nestingDepthMax: number): unknown {
  if (text.trim() === '') throw new HttpError(400, ErrorCode.invalidJson, 'request body is empty; expected JSON', 'body');
  // Checked before parsing: every later walk of the value (validation, error messages) recurses.
  if (jsonNestingExceeds(text, nestingDepthMax)) {
    throw new HttpError(400, ErrorCode.invalidJson, `body nests deeper than ${nestingDepthMax} levels`, 'body');
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, ErrorCode.invalidJson, `body is not valid JSON: ${(e as Error).message}`, 'body');
  }
}

/** True when arrays/objects in `text` nest deeper than `depthMax` (brackets in strings skipped). */
function jsonNestingExceeds(text: string, depthMax: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > depthMax) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** A request target's path (percent-encoding kept: segments are decoded one by one) and query. */
export interface RequestTarget {
  path: string;
  query: URLSearchParams;
}

/** Path characters an http URL keeps as they are: no '%', '\\', '?', '#', space or controls. */
const plainPath = /^\/(?!\/)[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/;
/** A '.' or '..' segment, which URL parsing resolves. */
const dotSegment = /\/\.\.?(?:\/|$)/;
/**
 * Visible ASCII but '#', not starting with '?' (URLSearchParams drops one leading '?'): a query
 * whose parameters URL parsing gives the same (it percent-encodes what it changes).
 */
const plainQuery = /^(?!\?)[!-"$-~]*$/;

/**
 * The path and query of a request target, as `new URL(target, base)` gives them. A plain
 * target (the API's own paths) is split directly: `new URL` was 1.5 % of the CP's busy time in a
 * registration burst. Anything else takes the URL parser; one it refuses is the client's 400.
 */
export function parseTarget(target: string): RequestTarget {
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const search = q < 0 ? '' : target.slice(q + 1);
  if (plainPath.test(path) && !dotSegment.test(path) && plainQuery.test(search)) return { path, query: new URLSearchParams(search) };
  let url: URL;
  try {
    url = new URL(target, 'http://api');
  } catch {
    throw new HttpError(400, 'invalid_path', `request target ${JSON.stringify(target.slice(0, 200))} is not a valid URL path`, 'path');
  }
  return { path: url.pathname, query: url.searchParams };
}

/** Decodes one percent-encoded path segment; a malformed one is the client's 400. */
export function decodePathSegment(segment: string, path: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, ErrorCode.invalidPath, `path ${JSON.stringify(path)} is not valid percent-encoding`, 'path');
  }
}

export function sendJson(res: ApiResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendError(res: ApiResponse, status: number, code: string, message: string, field?: string): void {
  const body: ApiErrorBody = { error: { code, message, ...(field ? { field } : {}) } };
  sendJson(res, status, body);
}

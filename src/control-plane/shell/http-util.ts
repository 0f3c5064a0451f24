/**
 * @module control-plane/shell/http-util
 * Small helpers for the JSON management API: bounded body reading and error answers in the one
 * shape every client sees, `{"error":{"code","message","field"}}`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiErrorBody, ErrorCode } from '../../api/types.js';

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

export function readBody(req: IncomingMessage, bytesMax: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > bytesMax) {
      reject(new HttpError(413, 'body_too_large', `body of ${declared} bytes exceeds ${bytesMax}`));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > bytesMax) {
        reject(new HttpError(413, 'body_too_large', `body exceeds ${bytesMax} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function parseJson(text: string): unknown {
  if (text.trim() === '') throw new HttpError(400, 'invalid_json', 'request body is empty; expected JSON', 'body');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, 'invalid_json', `body is not valid JSON: ${(e as Error).message}`, 'body');
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendError(res: ServerResponse, status: number, code: string, message: string, field?: string): void {
  const body: ApiErrorBody = { error: { code, message, ...(field ? { field } : {}) } };
  sendJson(res, status, body);
}

/**
 * @module shared/http-client-error
 * The answer of the management API and of the data plane's invocation port to a request Node's
 * HTTP parser refuses before any route runs (a malformed request line or header, a header block
 * past the limit, a request that took too long to arrive). Node's default is a bare status line
 * with no body; both promise a JSON error body on every answer, so we write one, then close (the
 * parser's state is lost).
 */
import type { Socket } from 'node:net';
import { ErrorCode } from '../api/types.js';

interface Answer { status: number; reason: string; code: ErrorCode }

const badRequest: Answer = { status: 400, reason: 'Bad Request', code: ErrorCode.badRequest };
/** Node's parser error codes that have a more precise answer than 400. */
const answerByCode: Record<string, Answer> = {
  HPE_HEADER_OVERFLOW: { status: 431, reason: 'Request Header Fields Too Large', code: ErrorCode.headersTooLarge },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, reason: 'Request Timeout', code: ErrorCode.requestTimeout },
};

export function answerClientError(err: Error & { code?: string }, socket: Socket): void {
  // A reset connection, or one whose answer has begun, cannot take another answer.
  const answering = (socket as Socket & { _httpMessage?: unknown })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || answering) {
    socket.destroy();
    return;
  }
  const a = answerByCode[err.code ?? ''] ?? badRequest;
  const body = JSON.stringify({ error: { code: a.code, message: `the request could not be parsed as HTTP/1.1 (${err.code ?? 'unknown error'})` } });
  socket.end(`HTTP/1.1 ${a.status} ${a.reason}\r\ncontent-type: application/json\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

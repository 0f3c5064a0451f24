/**
 * @module fuzz/send
 * Sends one generated input to the cluster and reports what came back. Every send is bounded in
 * time; an error our own HTTP client raises before anything reaches the wire (an invalid header
 * it refuses to write) is reported as `refused`, not as a cluster failure.
 */
import { connect } from 'node:net';
import { request } from 'undici';
import { bodyText, rawBytesMax, type HttpInput, type RawInput } from './inputs.js';
import type { Reply } from './checks.js';

/** Longest wait for one HTTP answer (an invocation may wait for a cold start). */
export const sendTimeoutMs = 10_000;
/** Longest life of one raw connection, writes and read together. */
export const rawConnectionMs = 3_000;
/** How long an answer is awaited after the last write (a kept-alive connection never closes). */
export const rawAnswerWaitMs = 300;

export type SendResult =
  | { kind: 'reply'; reply: Reply }
  | { kind: 'refused'; error: string }
  | { kind: 'transport'; error: string };

/** undici's errors for input it will not put on the wire. */
// (ERR_ASSERTION: undici asserts on some Host values, e.g. an unclosed '[', before sending.)
const clientSideCodes = new Set(['ERR_ASSERTION', 'UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_CHAR', 'ERR_INVALID_HTTP_TOKEN']);

export async function sendHttp(base: string, input: HttpInput): Promise<SendResult> {
  try {
    const r = await request(`${base}${input.path}`, {
      method: input.method as 'GET',
      headers: input.headers,
      body: bodyText(input.body),
      headersTimeout: sendTimeoutMs,
      bodyTimeout: sendTimeoutMs,
      signal: AbortSignal.timeout(sendTimeoutMs),
    });
    const text = await r.body.text();
    const ct = r.headers['content-type'];
    return { kind: 'reply', reply: { status: r.statusCode, contentType: Array.isArray(ct) ? ct.join(',') : (ct ?? ''), text } };
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    if (clientSideCodes.has(code) || e instanceof TypeError) return { kind: 'refused', error: `${code} ${String(e)}` };
    return { kind: 'transport', error: `${code} ${String(e)}` };
  }
}

/** Writes the chunks with gaps, reads what comes back (capped), always closes within the bound. */
export function sendRaw(port: number, input: RawInput): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    let answer = '';
    let finished = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (how: string): void => {
      if (finished) return;
      finished = true;
      for (const t of timers) clearTimeout(t);
      sock.destroy();
      resolve(`${how}; answer ${JSON.stringify(answer.slice(0, 120))}`);
    };
    timers.push(setTimeout(() => finish('timed out'), rawConnectionMs));
    sock.on('data', (d: Buffer) => {
      if (answer.length < rawBytesMax) answer += d.toString('latin1');
    });
    sock.on('error', (e) => finish(`error ${String(e)}`));
    sock.on('close', () => finish('closed by peer'));
    sock.on('connect', () => {
      input.chunks.forEach((c, i) => {
        timers.push(setTimeout(() => {
          if (finished) return;
          sock.write(Buffer.from(c, 'latin1'));
          if (i < input.chunks.length - 1) return;
          if (input.endAfterWrite) sock.end();
          timers.push(setTimeout(() => finish('answered or silent'), rawAnswerWaitMs));
        }, i * input.gapMs));
      });
    });
  });
}

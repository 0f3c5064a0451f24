/**
 * Goal: a request the HTTP parser itself refuses (a lowercase method, a bad header, a header
 * block past the limit) still gets a management-API answer: 4xx with a JSON error body, then the
 * connection closes. Found by the live fuzzer (Node's default answer is a bare 400 with no body).
 * Method: a real server on a free loopback port, raw bytes over a socket.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../shared/logger.js';
import { startApiServer, type ApiBackend, type ApiServer } from './api-server.js';
import { memoryTenancy } from './api-testkit.js';

const backend = {} as ApiBackend; // never reached: the parser refuses before routing

/** Writes `bytes`, returns everything the server sends until it closes (bounded by the test timeout). */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    let got = '';
    sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
    sock.on('close', () => resolve(got));
    sock.on('error', reject);
    sock.write(bytes);
  });
}

function parse(answer: string): { status: number; contentType: string; body: unknown } {
  const [head, body] = [answer.slice(0, answer.indexOf('\r\n\r\n')), answer.slice(answer.indexOf('\r\n\r\n') + 4)];
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  const contentType = /^content-type: (.*)$/im.exec(head)?.[1] ?? '';
  return { status, contentType, body: JSON.parse(body) };
}

describe('api server: requests the HTTP parser refuses', { timeout: 10_000 }, () => {
  let server: ApiServer;
  let port = 0;
  before(async () => {
    server = await startApiServer({ host: '127.0.0.1', port: 0, bodyBytesMax: 4096, backend, tenancy: memoryTenancy(), log: silentLogger });
    port = server.port;
  });
  after(() => server.close());

  for (const [what, bytes, status] of [
    ['a lowercase method', 'post /v1/functions HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['a header without a colon', 'GET /health HTTP/1.1\r\nNoColon\r\n\r\n', 400],
    ['two content lengths', 'POST /v1/functions HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello', 400],
    ['a header block past the limit', `GET /health HTTP/1.1\r\nX: ${'v'.repeat(40_000)}\r\n\r\n`, 431],
  ] as const) {
    it(`${what}: ${status} with a JSON error body`, async () => {
      const r = parse(await raw(port, bytes));
      assert.equal(r.status, status);
      assert.match(r.contentType, /^application\/json/);
      assert.equal(typeof (r.body as { error: { code: string } }).error.code, 'string');
    });
  }
});

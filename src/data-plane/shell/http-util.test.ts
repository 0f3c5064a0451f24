/**
 * The head of the DP's request to a sandbox on the lean path: the client's headers pass but the
 * hop-by-hop ones, the Host becomes the sandbox's address with the client's in x-forwarded-host,
 * the sandbox header is the DP's own (last), and the bearer token goes only when asked. Method:
 * the exact head for two samples.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { upstreamRequestHead } from './http-util.js';

test("a request's head for a sandbox: forwarded headers, the DP's own last, the token stripped when asked", () => {
  const req = {
    method: 'POST',
    headers: {
      host: 'fn.example', 'content-length': '3', connection: 'keep-alive', 'x-dirigent-sandbox': 'forged',
      authorization: 'Bearer t', 'x-many': ['a', 'b'], 'x-forwarded-host': 'forged',
    },
  };
  const head = upstreamRequestHead(req, '/p?q=1', '127.0.0.1:9000', 'sb-1', true);
  assert.equal(head,
    'POST /p?q=1 HTTP/1.1\r\nhost: 127.0.0.1:9000\r\ncontent-length: 3\r\nx-many: a\r\nx-many: b\r\n' +
    'x-forwarded-host: fn.example\r\nx-dirigent-sandbox: sb-1\r\n\r\n');
  const kept = upstreamRequestHead({ headers: { host: 'h', authorization: 'Bearer t' } }, '/', 'a:1', 'sb-2', false);
  assert.equal(kept, 'GET / HTTP/1.1\r\nhost: a:1\r\nauthorization: Bearer t\r\nx-forwarded-host: h\r\nx-dirigent-sandbox: sb-2\r\n\r\n');
});

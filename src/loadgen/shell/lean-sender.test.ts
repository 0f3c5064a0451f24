/**
 * Goal: the load generator's lean client gives `bench cold` and `bench warm` what undici's pool
 * gave them: the answer's status, the Dirigent headers and (for a non-2xx) its body, kept-alive
 * connections up to a bound with the rest waiting in order, and each failure as a transport code
 * (refused, reset, timeout, closed), never a hang or a thrown error.
 * Method: a node:http server on 127.0.0.1 that counts connections and answers as each test
 * needs; requests sent through `send` (the benches' entry) and through the pool directly.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import test from 'node:test';
import { Header } from '../../api/types.js';
import type { Outcome } from '../core/recorder.js';
import { createBodilessSenderPool, send, type SenderPool } from './http-sender.js';
import { LeanSenderPool, leanRequestHead, type LeanHandler } from './lean-sender.js';

interface TestServer {
  url: string;
  /** Connections accepted so far, and open now. */
  accepted: () => number;
  open: () => number;
  close: () => Promise<void>;
}

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer(handler);
  server.on('connection', (s: Socket) => {
    accepted += 1;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    accepted: () => accepted,
    open: () => sockets.size,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Outcomes copied out of `send`'s handler (it is valid only during the call). */
interface Seen { tag: number; status: number; error: string; coldStart: number; queueMs: number; body: string; written: boolean }

function sendAll(pool: SenderPool, hosts: string[], captureBody = false): Promise<Seen[]> {
  return new Promise((resolve) => {
    const seen: Seen[] = [];
    const sink = {
      onOutcome: (o: Outcome) => {
        seen.push({ tag: o.tag, status: o.status, error: o.error, coldStart: o.coldStart, queueMs: o.queueMs,
          body: o.bodyText(), written: !Number.isNaN(o.writtenMs) });
        if (seen.length === hosts.length) resolve(seen);
      },
    };
    hosts.forEach((host, i) => send(pool, { path: '/', method: 'GET', headers: ['host', host] }, i, performance.now(), sink, captureBody));
  });
}

test('answers: status, the Dirigent headers, a non-2xx body, and kept-alive connections', { timeout: 10_000 }, async () => {
  const server = await serve((req, res) => {
    if (req.headers.host === 'missing') {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'not_found', message: 'no function missing' } }));
      return;
    }
    res.writeHead(200, { [Header.coldStart]: 'true', [Header.queueMs]: '41.5' });
    // Chunked, in two writes: the body reaches the client in more than one read.
    res.write('hello ');
    setImmediate(() => res.end('world'));
  });
  const pool = createBodilessSenderPool({ origin: server.url, connections: 2, timeoutMs: 5_000 });
  assert.ok(pool instanceof LeanSenderPool, 'plain HTTP takes the lean client');
  try {
    const first = await sendAll(pool, ['fn-a'], true);
    assert.deepEqual(first, [{ tag: 0, status: 200, error: '', coldStart: 1, queueMs: 41.5, body: 'hello world', written: true }]);
    // Six in a row, two at a time: the two connections serve them all.
    const many = await sendAll(pool, ['a', 'b', 'c', 'd', 'e', 'missing']);
    assert.equal(many.length, 6);
    assert.deepEqual(many.filter((s) => s.status === 200).map((s) => s.body), ['', '', '', '', ''], 'a 2xx body is not kept unless asked');
    const missing = many.find((s) => s.tag === 5)!;
    assert.equal(missing.status, 404);
    assert.match(missing.body, /no function missing/, 'a non-2xx body is kept: its message says why');
    assert.ok(server.accepted() <= 2, `at most 2 connections, got ${server.accepted()}`);
  } finally {
    await pool.close();
    await server.close();
  }
});

test('more requests than connections wait, and go out in the order they were sent', { timeout: 10_000 }, async () => {
  const order: string[] = [];
  const server = await serve((req, res) => {
    order.push(String(req.headers.host));
    setTimeout(() => res.end('ok'), 5);
  });
  const pool = createBodilessSenderPool({ origin: server.url, connections: 1, timeoutMs: 5_000 });
  try {
    const hosts = ['h0', 'h1', 'h2', 'h3', 'h4'];
    const seen = await sendAll(pool, hosts);
    assert.deepEqual(seen.map((s) => s.tag), [0, 1, 2, 3, 4]);
    assert.deepEqual(order, hosts);
    assert.equal(server.accepted(), 1);
  } finally {
    await pool.close();
    await server.close();
  }
});

test('an answer that says Connection: close: its connection is not reused', { timeout: 10_000 }, async () => {
  const server = await serve((req, res) => {
    res.setHeader('connection', 'close');
    res.end('bye');
  });
  const pool = createBodilessSenderPool({ origin: server.url, connections: 4, timeoutMs: 5_000 });
  try {
    for (let i = 0; i < 3; i++) assert.equal((await sendAll(pool, ['x']))[0]!.status, 200);
    assert.equal(server.accepted(), 3);
  } finally {
    await pool.close();
    await server.close();
  }
});

test('failures are transport codes: refused, reset mid-answer, timed out, sender closed', { timeout: 10_000 }, async () => {
  // Refused: nothing listens on the port of a server just closed.
  const gone = await serve((_req, res) => res.end());
  const goneUrl = gone.url;
  await gone.close();
  const refusedPool = createBodilessSenderPool({ origin: goneUrl, connections: 2, timeoutMs: 5_000 });
  const [refused] = await sendAll(refusedPool, ['x']);
  assert.equal(refused!.status, 0);
  assert.equal(refused!.error, 'ECONNREFUSED');
  await refusedPool.close();

  const server = await serve((req, res) => {
    if (req.headers.host === 'cut') {
      res.writeHead(200, { 'content-length': '100' });
      res.write('only part of it');
      setImmediate(() => res.socket?.destroy());
    }
    // 'slow' is never answered.
  });
  const pool = createBodilessSenderPool({ origin: server.url, connections: 4, timeoutMs: 100 });
  try {
    const [cut] = await sendAll(pool, ['cut']);
    assert.deepEqual([cut!.status, cut!.error], [0, 'ECONNRESET'], 'a body cut short is a reset, not a success');
    const [slow] = await sendAll(pool, ['slow']);
    assert.deepEqual([slow!.status, slow!.error], [0, 'ETIMEDOUT']);
  } finally {
    await pool.close();
    await server.close();
  }
});

test('close() fails the requests in flight and those waiting, once each', { timeout: 10_000 }, async () => {
  const server = await serve(() => { /* never answers */ });
  const pool = new LeanSenderPool(server.url, { connectionsMax: 1, connectTimeoutMs: 5_000, requestTimeoutMs: 60_000 });
  const errors: string[] = [];
  const handler = (): LeanHandler => ({
    onConnect: () => {},
    onHead: () => assert.fail('no answer was sent'),
    onBodyChunk: () => assert.fail('no answer was sent'),
    onComplete: () => assert.fail('no answer was sent'),
    onError: (err) => errors.push((err as { code?: string }).code ?? ''),
  });
  try {
    pool.dispatch({ path: '/', method: 'GET', headers: ['host', 'a'] }, handler());
    pool.dispatch({ path: '/', method: 'GET', headers: ['host', 'b'] }, handler());
    while (server.accepted() === 0) await new Promise((r) => setTimeout(r, 5));
    await pool.close();
    assert.deepEqual(errors.sort(), ['ECONNABORTED', 'ECONNABORTED']);
    pool.dispatch({ path: '/', method: 'GET', headers: ['host', 'c'] }, handler());
    assert.equal(errors.length, 2, 'a request after close fails, but not from inside the call');
    await new Promise((r) => process.nextTick(r));
    assert.equal(errors.length, 3, 'a request after close fails at once');
  } finally {
    await server.close();
  }
});

test('an answer to HEAD has no body, whatever its Content-Length says', { timeout: 10_000 }, async () => {
  const server = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': '1000' });
    res.end();
  });
  const pool = new LeanSenderPool(server.url, { connectionsMax: 1, connectTimeoutMs: 5_000, requestTimeoutMs: 5_000 });
  try {
    for (let i = 0; i < 2; i++) {
      const status = await new Promise<number>((resolve, reject) => {
        let code = 0;
        pool.dispatch({ path: '/', method: 'HEAD', headers: [] }, {
          onConnect: () => {},
          onHead: (s) => (code = s),
          onBodyChunk: () => reject(new Error('a body for HEAD')),
          onComplete: () => resolve(code),
          onError: reject,
        });
      });
      assert.equal(status, 200);
    }
    assert.equal(server.accepted(), 1, 'the connection is reused after a HEAD answer');
  } finally {
    await pool.close();
    await server.close();
  }
});

test('the request head: one line per header, Host added only when not given', () => {
  assert.equal(leanRequestHead({ path: '/p?q=1', method: 'GET', headers: ['host', 'fn', 'x-a', '1'] }, '127.0.0.1:80'),
    'GET /p?q=1 HTTP/1.1\r\nhost: fn\r\nx-a: 1\r\n\r\n');
  assert.equal(leanRequestHead({ path: '/', method: 'HEAD', headers: [] }, '127.0.0.1:8080'),
    'HEAD / HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n\r\n');
});

test('HTTPS origins stay on undici', () => {
  const pool = createBodilessSenderPool({ origin: 'https://127.0.0.1:1', connections: 1, timeoutMs: 1_000 });
  assert.ok(!(pool instanceof LeanSenderPool));
  void pool.close();
});

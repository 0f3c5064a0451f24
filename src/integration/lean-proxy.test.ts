/**
 * Goal: the lean HTTP/1.1 path of the invocation port (shared/http1/lean-h1, lean-upstream) keeps what
 * a client and a sandbox see the same as Node's path: keep-alive and pipelined requests, the
 * hand-over of a connection to Node's server mid-way (with the bytes already read), HEAD,
 * Connection: close, the forwarded headers, sandbox responses of every framing, the request and
 * keep-alive timeouts, the upstream connection limit; and that a hostile sandbox's malformed
 * answer is a 502 whose connection is never reused.
 * Method: the real proxy and core in-process (proxy-rig), raw clients (node:net) and, for hostile
 * answers, a raw TCP sandbox. Waits poll with generous bounds; nothing asserts a duration.
 */
import assert from 'node:assert/strict';
import { createServer as createNetServer, connect, type Server as NetServer, type Socket } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { waitFor } from './harness.js';
import { call, listen, ProxyRig } from './proxy-rig.js';

/** Writes raw bytes on one connection and collects what comes back until `done` says so. */
class RawClient {
  readonly socket: Socket;
  text = '';
  closed = false;

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (d: Buffer) => { this.text += d.toString('latin1'); });
    this.socket.on('error', () => {});
    this.socket.on('close', () => { this.closed = true; });
  }

  send(bytes: string): void {
    this.socket.write(bytes, 'latin1');
  }

  /** Waits until `n` complete responses (heads with Content-Length or chunked bodies) arrived. */
  async responses(n: number): Promise<{ status: number; head: string; body: string }[]> {
    let out: { status: number; head: string; body: string }[] = [];
    await waitFor(() => {
      out = parseResponses(this.text);
      return out.length >= n;
    }, 5_000, `${n} responses, got ${JSON.stringify(this.text)}`);
    return out;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Runs `body` with a raw client on `port`, closed afterwards (also when the body throws). */
async function withClient(port: number, body: (c: RawClient) => Promise<void>): Promise<void> {
  const c = new RawClient(port);
  try {
    await body(c);
  } finally {
    c.close();
  }
}

/** Splits a byte stream of HTTP/1.1 responses (Content-Length, chunked, or no body for HEAD). */
function parseResponses(text: string, headOnly = false): { status: number; head: string; body: string }[] {
  const out: { status: number; head: string; body: string }[] = [];
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const head = text.slice(at, end);
    const status = Number(head.slice(9, 12));
    let p = end + 4;
    const length = /\r\ncontent-length: (\d+)/i.exec(head);
    let body = '';
    if (headOnly) {
      // no body
    } else if (/\r\ntransfer-encoding: chunked/i.test(head)) {
      for (;;) {
        const lineEnd = text.indexOf('\r\n', p);
        if (lineEnd < 0) return out;
        const size = parseInt(text.slice(p, lineEnd), 16);
        if (text.length < lineEnd + 2 + size + 2) return out;
        body += text.slice(lineEnd + 2, lineEnd + 2 + size);
        p = lineEnd + 2 + size + 2;
        if (size === 0) break;
      }
    } else if (length) {
      const n = Number(length[1]);
      if (text.length < p + n) return out;
      body = text.slice(p, p + n);
      p += n;
    }
    out.push({ status, head, body });
    at = p;
  }
  return out;
}

describe('lean HTTP/1.1 path: clients', () => {
  const rig = new ProxyRig('lean', { invocationRequestTimeoutMs: 400, invocationKeepAliveTimeoutMs: 400 });
  before(() => rig.start());
  after(() => rig.stop());
  beforeEach(() => {
    rig.handler = (req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => { body += d.toString(); });
      req.on('end', () => res.end(`${req.method} ${req.url} ${body}`));
    };
    rig.upstreamSeen.length = 0;
    rig.route(10_000, 4);
  });

  it('keep-alive: a lean request, a chunked one (Node takes the connection over), then another, each answered', async () => {
    await withClient(rig.proxyPort, async (c) => {
      c.send('GET /function/f/one HTTP/1.1\r\nHost: x\r\n\r\n');
      await c.responses(1);
      c.send('POST /function/f/two HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
      await c.responses(2);
      c.send('POST /function/f/three HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi');
      const rs = await c.responses(3);
      assert.deepEqual(rs.map((r) => [r.status, r.body]), [[200, 'GET /one '], [200, 'POST /two abc'], [200, 'POST /three hi']]);
      // The first answer came from the lean path, the others from Node's server.
      assert.match(rs[0]!.head, /\r\nconnection: keep-alive\r\n/);
      assert.match(rs[1]!.head, /\r\nConnection: keep-alive\r\n/);
      const stats = rig.proxy.leanStats()!;
      assert.ok(stats.requests >= 1);
      assert.ok((stats.handOffs.get('transfer-encoding') ?? 0) >= 1, JSON.stringify([...stats.handOffs]));
    });
  });

  it('bodies around the one-write limit arrive whole both ways (copied behind the head up to 16 KiB, written beside it above)', async () => {
    await withClient(rig.proxyPort, async (c) => {
      const sizes = [1, 16_383, 16_384, 16_385, 70_000];
      const bodies = sizes.map((n, i) => Array.from({ length: n }, (_, j) => String.fromCharCode(97 + ((i + j) % 26))).join(''));
      for (const body of bodies) c.send(`POST /function/f/x HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      const rs = await c.responses(bodies.length);
      assert.deepEqual(rs.map((r) => r.status), sizes.map(() => 200));
      rs.forEach((r, i) => assert.ok(r.body === `POST /x ${bodies[i]!}`, `body of ${sizes[i]!} bytes came back whole`));
    });
    assert.deepEqual(rig.upstreamSeen.map((u) => u.bytes), [1, 16_383, 16_384, 16_385, 70_000]);
  });

  it('pipelined requests in one write, and a lean request followed in the same write by one Node must read', async () => {
    await withClient(rig.proxyPort, async (c) => {
      c.send('GET /function/f/a HTTP/1.1\r\nHost: x\r\n\r\nPOST /function/f/b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz' +
        'POST /function/f/c HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok');
      const rs = (await c.responses(3)).filter((r) => r.status !== 100);
      assert.deepEqual(rs.map((r) => r.body), ['GET /a ', 'POST /b xyz', 'POST /c ok']);
    });
  });

  it('a request trickled a byte per write (head and body) is read whole and served', async () => {
    await withClient(rig.proxyPort, async (c) => {
      c.socket.setNoDelay(true);
      const bytes = 'POST /function/f/trickle HTTP/1.1\r\nHost: x\r\nX-Pad: ' + 'p'.repeat(100) + '\r\nContent-Length: 5\r\n\r\nhello';
      for (const ch of bytes) {
        c.send(ch);
        await new Promise((r) => setImmediate(r));
      }
      const rs = await c.responses(1);
      assert.deepEqual(rs.map((r) => [r.status, r.body]), [[200, 'POST /trickle hello']]);
    });
  });

  it('HEAD gets a head only; Connection: close gets its answer and the connection closes', async () => {
    await withClient(rig.proxyPort, async (c) => {
      c.send('HEAD /function/f/h HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitFor(() => c.text.includes('\r\n\r\n'), 5_000, 'HEAD answer');
      c.send('GET /function/f/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      await waitFor(() => c.closed, 5_000, 'closed after Connection: close');
      const heads = c.text.split('\r\n\r\n');
      assert.match(heads[0]!, /^HTTP\/1\.1 200 /);
      assert.match(heads[1]!, /^HTTP\/1\.1 200 [^]*connection: close/);
      assert.equal(parseResponses(c.text.slice(c.text.indexOf('\r\n\r\n') + 4))[0]!.body, 'GET /last ');
    });
  });

  it('forwards the headers Node\'s path forwards: hop-by-hop dropped, Host as x-forwarded-host, the sandbox id set by the proxy', async () => {
    await withClient(rig.proxyPort, async (c) => {
      c.send('GET /function/f/h HTTP/1.1\r\nHost: f.example\r\nX-Forwarded-Host: evil\r\nX-Dirigent-Sandbox: fake\r\n' +
        'Keep-Alive: timeout=9\r\nConnection: keep-alive\r\nTE: trailers\r\nX-Dirigent-Attempt: 7\r\nX-Custom: one\r\n\r\n');
      await c.responses(1);
      const seen = rig.upstreamSeen[0]!.headers;
      assert.equal(seen['x-forwarded-host'], 'f.example');
      assert.equal(seen['x-dirigent-sandbox'], 's1');
      assert.equal(seen['x-custom'], 'one');
      assert.equal(seen['keep-alive'], undefined);
      assert.equal(seen.te, undefined);
      assert.equal(seen['x-dirigent-attempt'], undefined);
      assert.equal(seen.host, `127.0.0.1:${rig.upstreamPort}`);
    });
  });

  it('a body that does not arrive within the request timeout gets 408 and the connection closes; the sandbox sees nothing', async () => {
    await withClient(rig.proxyPort, async (c) => {
      c.send('POST /function/f/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabcd');
      await waitFor(() => c.closed, 5_000, 'closed after the request timeout');
      assert.match(c.text, /^HTTP\/1\.1 408 /);
      assert.match(c.text, /"code":"request_timeout"/);
      assert.equal(rig.upstreamSeen.length, 0);
    });
  });

  it('an idle keep-alive connection is closed after the keep-alive timeout', async () => {
    await withClient(rig.proxyPort, async (c) => {
      c.send('GET /function/f/idle HTTP/1.1\r\nHost: x\r\n\r\n');
      await c.responses(1);
      await waitFor(() => c.closed, 5_000, 'idle connection closed');
    });
  });
});

describe('lean HTTP/1.1 path: sandboxes', () => {
  const rig = new ProxyRig('lean', { upstreamConnectionsMax: 1 });
  /** A raw sandbox: answers each request head with what `answer` returns, after `delayMs`. */
  let raw: NetServer;
  let rawPort = 0;
  let answer: () => string = () => okAnswer;
  const okAnswer = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
  const sockets: Socket[] = [];
  /** The connection (index into `sockets`) of each request, in order. */
  const requests: number[] = [];
  let concurrent = 0;
  let concurrentMax = 0;
  let delayMs = 0;
  before(async () => {
    await rig.start();
    raw = createNetServer((s) => {
      const id = sockets.push(s) - 1;
      let buf = '';
      s.on('error', () => {});
      s.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        let end: number;
        while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
          buf = buf.slice(end + 4);
          requests.push(id);
          const text = answer();
          concurrent += 1;
          concurrentMax = Math.max(concurrentMax, concurrent);
          setTimeout(() => {
            concurrent -= 1;
            if (!s.destroyed) s.write(text, 'latin1');
          }, delayMs);
        }
      });
    });
    rawPort = await listen(raw);
  });
  after(async () => {
    await rig.stop();
    for (const s of sockets) s.destroy();
    await new Promise((r) => raw.close(r));
  });
  beforeEach(() => {
    concurrentMax = 0;
    delayMs = 0;
    answer = () => okAnswer;
    rig.routeTo([['s1', `127.0.0.1:${rawPort}`], ['s2', `127.0.0.1:${rawPort}`], ['s3', `127.0.0.1:${rawPort}`]]);
  });

  it('relays a chunked body whole, and a body that runs to the end of the connection', async () => {
    answer = () => 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n';
    assert.deepEqual(await call(rig.proxyPort), { status: 200, body: 'abcdef' });
    answer = () => 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end';
    const seen = requests.length;
    const pending = call(rig.proxyPort);
    await waitFor(() => requests.length > seen, 5_000, 'request at the sandbox');
    // The sandbox ends the connection after its body: that is where the body ends.
    const s = sockets[requests[requests.length - 1]!]!;
    await waitFor(() => s.writableLength === 0 && concurrent === 0, 5_000, 'answer written');
    s.end();
    assert.deepEqual(await pending, { status: 200, body: 'until the end' });
  });

  it('a malformed answer is a 502 naming the sandbox failure; that connection is never used again', async () => {
    const bad = ['HTTP/1.1 2OO OK\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokGARBAGE'];
    for (const text of bad) {
      answer = () => text;
      const r = await call(rig.proxyPort);
      const badConn = requests[requests.length - 1]!;
      if (text.endsWith('GARBAGE')) {
        assert.deepEqual(r, { status: 200, body: 'ok' }); // the answer was whole; the extra bytes spoil the connection only
      } else {
        assert.equal(r.status, 502, text);
        assert.match(r.body, /sandbox_failure/);
      }
      answer = () => okAnswer;
      assert.deepEqual(await call(rig.proxyPort), { status: 200, body: 'ok' });
      assert.notEqual(requests[requests.length - 1], badConn, `connection reused after ${JSON.stringify(text)}`);
      await waitFor(() => sockets[badConn]!.destroyed || sockets[badConn]!.readableEnded, 5_000, 'spoiled connection closed');
    }
    await waitFor(() => rig.inflight() === 0, 5_000, 'slots back');
  });

  it('relays the sandbox\'s headers in order, repeats kept, without hop-by-hop ones; the DP\'s own headers cannot be spoofed', async () => {
    answer = () => 'HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Dirigent-Cold-Start: spoofed\r\nKeep-Alive: timeout=9\r\n' +
      'x-dirigent-queue-ms: 999\r\nSet-Cookie: b=2\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\nok';
    await withClient(rig.proxyPort, async (c) => {
      c.send('GET /function/f/h HTTP/1.1\r\nHost: x\r\n\r\n');
      const [r] = await c.responses(1);
      assert.equal(r!.body, 'ok');
      const lines = r!.head.split('\r\n').slice(1).map((l) => l.toLowerCase());
      assert.deepEqual(lines.filter((l) => l.startsWith('set-cookie:')), ['set-cookie: a=1', 'set-cookie: b=2']);
      assert.deepEqual(lines.filter((l) => l.startsWith('x-dirigent-cold-start:')), ['x-dirigent-cold-start: false']);
      const queue = lines.filter((l) => l.startsWith('x-dirigent-queue-ms:'));
      assert.equal(queue.length, 1, r!.head);
      assert.notEqual(queue[0], 'x-dirigent-queue-ms: 999');
      assert.ok(!lines.some((l) => l.startsWith('upgrade:') || l === 'keep-alive: timeout=9'), r!.head);
    });
  });

  it('upstreamConnectionsMax bounds the connections to one address; requests beyond it wait their turn', async () => {
    delayMs = 30;
    const rs = await Promise.all([call(rig.proxyPort), call(rig.proxyPort), call(rig.proxyPort)]);
    assert.deepEqual(rs.map((r) => r.status), [200, 200, 200]);
    assert.equal(concurrentMax, 1);
  });
});

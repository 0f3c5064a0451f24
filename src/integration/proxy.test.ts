/**
 * Goal: the invocation proxy frees a sandbox slot whenever an exchange ends (client abort,
 * deadline, body errors on either side, half-closed client), drains before acknowledging,
 * supports `Expect: 100-continue`, closes slowloris connections, and ends the connection of an
 * h2c client that floods it with pings.
 * Method: the real proxy and core in-process, routing applied directly to the core, a real
 * upstream HTTP server on loopback whose handlers the test controls, and raw clients
 * (node:http, node:net). Waits poll state with generous bounds; nothing asserts a duration.
 */
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { connect as connectH2, constants as h2constants, type ClientHttp2Session } from 'node:http2';
import { once } from 'node:events';
import { floodFreshConnection, pingUntilRefused } from '../shared/ping-flood.testkit.js';
import { after, before, beforeEach, describe, it } from 'node:test';
import { sleep, waitFor } from './harness.js';
import { bodyBytesMax, call, headersTimeoutMs, listen, ProxyRig } from './proxy-rig.js';
/** Every suite runs on both HTTP/1.1 paths: the lean one (the default) and Node's server. */
const httpParsers = ['lean', 'node'] as const;

const settle = (what: string, pred: () => boolean): Promise<void> => waitFor(pred, 5_000, what);

for (const httpParser of httpParsers) {
  describe(`invocation proxy (${httpParser} HTTP/1.1 path)`, () => {
    const rig = new ProxyRig(httpParser);
    before(() => rig.start());
    after(() => rig.stop());
    beforeEach(() => {
      rig.handler = (_req, res) => res.end('ok');
      rig.upstreamSeen.length = 0;
      rig.drained.length = 0;
      rig.route();
    });

    it('a client that goes away after dispatch aborts the upstream call and frees the slot at once', async () => {
      rig.handler = () => {}; // never answers
      const req = httpRequest({ host: '127.0.0.1', port: rig.proxyPort, path: '/function/f/hang', agent: false });
      req.on('error', () => {});
      req.end();
      await settle('upstream got the request', () => rig.upstreamSeen.length === 1);
      assert.equal(rig.inflight(), 1);
      req.destroy();
      await settle('slot freed', () => rig.inflight() === 0);
      await settle('upstream request aborted', () => rig.upstreamSeen[0]!.closedEarly);
      rig.handler = (_req, res) => res.end('next');
      const next = await call(rig.proxyPort);
      assert.deepEqual([next.status, next.body], [200, 'next']);
    });

    it('a client that half-closes after its request does not leak the slot', async () => {
      rig.handler = () => {};
      const sock = connect(rig.proxyPort, '127.0.0.1');
      sock.on('error', () => {});
      sock.write('GET /function/f/ HTTP/1.1\r\nHost: x\r\n\r\n');
      await settle('upstream got the request', () => rig.upstreamSeen.length === 1);
      sock.end();
      await settle('slot freed', () => rig.inflight() === 0);
      sock.destroy();
    });

    it('a client that stops reading holds the sandbox back (backpressure), and then gets every byte', async () => {
      const chunk = Buffer.alloc(65_536, 7);
      const totalBytes = 64 * 1_048_576;
      let written = 0;
      rig.handler = (_req, res) => {
        const pump = (): void => {
          while (written < totalBytes) {
            written += chunk.length;
            if (!res.write(chunk)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
      };
      const req = httpRequest({ host: '127.0.0.1', port: rig.proxyPort, path: '/function/f/big', agent: false });
      const res = await new Promise<IncomingMessage>((resolve) => req.on('response', resolve).end());
      res.pause();
      // Stalled: the sandbox's writes stop while far from done (only socket buffers hold data).
      let last = -1;
      await waitFor(async () => {
        await sleep(250);
        const stalled = written === last;
        last = written;
        return stalled;
      }, 10_000, 'upstream writes stall');
      assert.ok(written < totalBytes / 2, `${written} of ${totalBytes} bytes written while the client read nothing`);
      let received = 0;
      res.on('data', (b: Buffer) => { received += b.length; });
      res.resume();
      await new Promise((resolve) => res.on('end', resolve));
      assert.equal(received, totalBytes);
      assert.equal(res.statusCode, 200);
      await settle('slot freed', () => rig.inflight() === 0);
    });

    it("the function's timeoutMs is a total deadline: 504, upstream aborted, slot freed", async () => {
      rig.route(200);
      rig.handler = (_req, res) => { res.writeHead(200); res.write('partial'); }; // headers, then silence
      const first = await call(rig.proxyPort, { path: '/slow-body' });
      assert.ok(first.error !== undefined || first.status === 504, JSON.stringify(first));
      assert.equal(rig.inflight(), 0);
      rig.handler = () => {};
      const second = await call(rig.proxyPort);
      assert.equal(second.status, 504, second.body);
      assert.match(second.body, /function_timeout/);
      assert.equal(rig.inflight(), 0);
      await settle('upstream aborted', () => rig.upstreamSeen.every((s) => s.closedEarly));
    });

    it('a client that stalls mid-body is bounded by the deadline: 504, slot freed', async () => {
      rig.route(200);
      rig.handler = (req, res) => { req.on('end', () => res.end('all')); };
      const req = httpRequest({ host: '127.0.0.1', port: rig.proxyPort, path: '/function/f/slow-upload', method: 'POST', headers: { 'transfer-encoding': 'chunked' }, agent: false });
      const answer = new Promise<number>((resolve) => {
        req.on('response', (res) => { res.resume(); resolve(res.statusCode ?? 0); });
        req.on('error', () => resolve(0));
      });
      req.write(Buffer.alloc(10, 1)); // and never more
      assert.equal(await answer, 504);
      assert.equal(rig.inflight(), 0);
      req.destroy();
    });

    it('a delete while a request runs lets it finish with 200; drained is acknowledged only after', async () => {
      let finish: (() => void) | null = null;
      rig.handler = (_req, res) => { finish = () => res.end('done'); };
      const running = call(rig.proxyPort);
      await settle('upstream got the request', () => finish !== null);
      rig.deleteF();
      assert.deepEqual(rig.drained, []);
      const late = await call(rig.proxyPort);
      assert.equal(late.status, 404);
      finish!();
      const r = await running;
      assert.deepEqual([r.status, r.body], [200, 'done']);
      await settle('drained acknowledged', () => rig.drained.length === 1);
      assert.deepEqual(rig.drained, ['s1']);
    });

    it('a request body that breaks mid-way ends the upstream request and frees the slot', async () => {
      rig.handler = (req, res) => { req.on('end', () => res.end('got all')); };
      const req = httpRequest({ host: '127.0.0.1', port: rig.proxyPort, path: '/function/f/upload', method: 'POST', headers: { 'transfer-encoding': 'chunked' }, agent: false });
      req.on('error', () => {});
      req.write(Buffer.alloc(1024, 1));
      await settle('upstream got bytes', () => (rig.upstreamSeen[0]?.bytes ?? 0) > 0);
      req.destroy();
      await settle('slot freed', () => rig.inflight() === 0);
      await settle('upstream request ended', () => rig.upstreamSeen[0]!.closedEarly);
    });

    it('an upstream body that breaks mid-way ends the client response and frees the slot', async () => {
      rig.handler = (_req, res) => {
        res.writeHead(200, { 'content-length': '100000' });
        res.write(Buffer.alloc(1000, 1), () => res.destroy());
      };
      const r = await call(rig.proxyPort);
      assert.ok(r.error !== undefined || r.status === 0, `client must see the break: ${JSON.stringify({ ...r, body: r.body.length })}`);
      await settle('slot freed', () => rig.inflight() === 0);
    });

    it('Expect: 100-continue: a 5 MB body is continued and proxied, the header is not forwarded', async () => {
      rig.handler = (req, res) => { let n = 0; req.on('data', (b: Buffer) => { n += b.length; }); req.on('end', () => res.end(String(n))); };
      const body = Buffer.alloc(5 * 1_048_576, 7);
      const r = await call(rig.proxyPort, { body, headers: { expect: '100-continue', 'content-length': body.length }, expectContinue: true });
      assert.deepEqual([r.status, r.body], [200, String(body.length)]);
      assert.equal(rig.upstreamSeen[0]!.headers.expect, undefined);
    });

    it('Expect: 100-continue past the body limit gets 413 at once, without the body', async () => {
      const r = await call(rig.proxyPort, { headers: { expect: '100-continue', 'content-length': bodyBytesMax + 1 }, expectContinue: true, body: Buffer.alloc(1) });
      assert.equal(r.status, 413);
      assert.equal(rig.upstreamSeen.length, 0);
    });

    it('a chunked body past the limit gets 413 and frees the slot', async () => {
      rig.handler = (req, res) => { req.resume(); req.on('end', () => res.end('all')); };
      const r = await call(rig.proxyPort, { body: Buffer.alloc(bodyBytesMax + 1024, 1), headers: { 'transfer-encoding': 'chunked' } });
      assert.equal(r.status, 413, JSON.stringify(r));
      await settle('slot freed', () => rig.inflight() === 0);
    });

    it('survives a client that resets its connection before sending anything', async () => {
      for (let i = 0; i < 5; i++) {
        const sock = connect(rig.proxyPort, '127.0.0.1');
        sock.on('error', () => {});
        await new Promise((r) => sock.once('connect', r));
        sock.resetAndDestroy();
      }
      await new Promise((r) => setTimeout(r, 100));
      const r = await call(rig.proxyPort);
      assert.deepEqual([r.status, r.body], [200, 'ok']);
    });

    it('answers a request the HTTP parser refuses with a JSON 400, then closes', async () => {
      const sock = connect(rig.proxyPort, '127.0.0.1');
      sock.on('error', () => {});
      let reply = '';
      sock.on('data', (d) => { reply += d.toString(); });
      const closed = new Promise((r) => sock.on('close', r));
      sock.write('get /function/f/ HTTP/1.1\r\nHost: f\r\n\r\n'); // a lowercase method
      await closed;
      assert.match(reply, /^HTTP\/1\.1 400 /);
      assert.match(reply, /content-type: application\/json/i);
      const body = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as { error: { code: string } };
      assert.equal(body.error.code, 'bad_request');
      assert.equal(rig.upstreamSeen.length, 0);
    });

    it('closes a slowloris connection after the header timeout', async () => {
      const sock = connect(rig.proxyPort, '127.0.0.1');
      sock.on('error', () => {});
      let reply = '';
      sock.on('data', (d) => { reply += d.toString(); });
      const closed = new Promise((r) => sock.on('close', r));
      sock.write('GET /function/f/ HTTP/1.1\r\nHost: x\r\n'); // never finishes the head
      const bound = new Promise((r) => setTimeout(() => r('still open'), headersTimeoutMs * 20));
      assert.notEqual(await Promise.race([closed, bound]), 'still open');
      assert.ok(reply === '' || reply.startsWith('HTTP/1.1 408'), reply);
      assert.equal(rig.upstreamSeen.length, 0);
    });
  });
}

/** A loopback address nothing listens on (bound, then closed): connections to it are refused. */
async function deadAddress(): Promise<string> {
  const s = createServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return `127.0.0.1:${port}`;
}

/** `n` distinct addresses nothing listens on (all bound at once, then closed). */
async function deadAddresses(n: number): Promise<string[]> {
  const servers = Array.from({ length: n }, () => createServer());
  const ports = await Promise.all(servers.map((s) => listen(s)));
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports.map((port) => `127.0.0.1:${port}`);
}

for (const httpParser of httpParsers) {
  describe(`a sandbox that died (its port refuses connections) before the CP said so (${httpParser})`, () => {
    const rig = new ProxyRig(httpParser);
    before(() => rig.start());
    after(() => rig.stop());
    beforeEach(() => {
      rig.handler = (req, res) => req.pipe(res);
    });

    it('its request, body and all, is served by another sandbox; the dead one leaves the rotation', async () => {
      const dead = await deadAddress();
      // Dead sandboxes first and most: whichever the balancer picks first, a refusal is met.
      rig.routeTo([['d1', dead], ['d2', dead], ['live', `127.0.0.1:${rig.upstreamPort}`]], 10_000, 0);
      const body = Buffer.alloc(200_000, 'x');
      for (let i = 0; i < 4; i += 1) {
        const r = await call(rig.proxyPort, { body });
        assert.deepEqual([r.status, r.body.length], [200, body.length], r.body.slice(0, 200));
      }
      assert.deepEqual([...rig.core.endpoints.keys()], ['live']);
      assert.equal(rig.inflight(), 0);
    });

    it('with no other sandbox the request waits for the next one instead of failing', async () => {
      rig.routeTo([['d1', await deadAddress()]]);
      const pending = call(rig.proxyPort, { body: Buffer.from('hello') });
      await settle('the refused request is queued again', () => rig.core.functions.get('f')?.queued === 1);
      assert.equal(rig.core.endpoints.size, 0);
      rig.addSandbox('live', `127.0.0.1:${rig.upstreamPort}`);
      const r = await pending;
      assert.deepEqual([r.status, r.body], [200, 'hello']);
    });

    it('a connection closed before any answer: a GET is tried again, a POST with a body is not (the sandbox may have run it)', async () => {
      rig.route();
      let resets = 0;
      rig.handler = (req, res) => {
        if (resets < 1) {
          resets += 1;
          req.socket.destroy();
          return;
        }
        res.end(`served ${req.method}`);
      };
      const get = await call(rig.proxyPort, {});
      assert.deepEqual([get.status, get.body, resets], [200, 'served GET', 1]);
      resets = 0;
      const post = await call(rig.proxyPort, { body: Buffer.from('once') });
      assert.equal(post.status, 502, post.body);
      assert.equal(rig.upstreamSeen.filter((u) => u.headers['content-length'] === '4').length, 1, 'the POST reached the sandbox once');
      assert.deepEqual([...rig.core.endpoints.keys()], ['s1'], 'a reset does not take the sandbox out of rotation');
      assert.equal(rig.inflight(), 0);
    });

    it('when every try is refused the client gets 502 naming the refusal, and no slot leaks', async () => {
      // Each at its own dead address: a refusal takes out every sandbox of the function at its
      // address, so sandboxes sharing one would all go at the first try.
      const many: [string, string][] = (await deadAddresses(6)).map((address, i) => [`d${i + 1}`, address]);
      rig.routeTo(many);
      const r = await call(rig.proxyPort, {});
      assert.equal(r.status, 502, r.body);
      assert.match(r.body, /sandbox_failure/);
      assert.match(r.body, /refused the connection \(4 tries\)/);
      assert.equal(rig.core.endpoints.size, 2);
      assert.deepEqual([rig.inflight(), rig.core.functions.get('f')?.queued], [0, 0]);
    });
  });
}

for (const httpParser of httpParsers) {
  describe(`invocation port without a routing snapshot past invocationSyncHoldMsMax (${httpParser})`, () => {
    const rig = new ProxyRig(httpParser, { invocationSyncHoldMsMax: 150 });
    before(() => rig.start());
    after(() => rig.stop());

    it('answers 503 not_ready (not 404: the function may well exist), to the check too, once it stops waiting', async () => {
      const invoked = await call(rig.proxyPort, {});
      assert.equal(invoked.status, 503, invoked.body);
      assert.match(invoked.body, /not_ready/);
      const check = await call(rig.proxyPort, { headers: { 'x-dirigent-ready-check': '1' } });
      assert.equal(check.status, 503, check.body);
      assert.equal(rig.proxy.heldConnections, 0);
      rig.route();
      assert.equal((await call(rig.proxyPort, {})).status, 200);
    });
  });

  describe(`readiness check of the invocation port (${httpParser})`, () => {
    const rig = new ProxyRig(httpParser);
    before(() => rig.start());
    after(() => rig.stop());

    it('holds connections that arrive before the first routing snapshot and serves them when it comes; the check is never proxied', async () => {
      // A restarted DP that a front end still sends to (its health check has not yet marked it
      // down): the requests wait for the table instead of failing with 503.
      const headers = { 'x-dirigent-ready-check': '1' };
      const check = call(rig.proxyPort, { headers });
      const invoked = call(rig.proxyPort, {});
      await settle('both connections held', () => rig.proxy.heldConnections === 2);
      rig.route();
      const [c, i] = await Promise.all([check, invoked]);
      assert.equal(c.status, 200, c.body);
      assert.equal(i.status, 200, i.body);
      assert.equal(i.body, 'ok');
      assert.equal(rig.upstreamSeen.length, 1, 'the invocation reached the sandbox, the check did not');
      assert.equal(rig.proxy.heldConnections, 0);
      const after = await call(rig.proxyPort, { headers });
      assert.equal(after.status, 200, after.body);
    });

    it('while the async side is still starting, an async request is answered 503; a sync one is served', async () => {
      rig.route();
      rig.upstreamSeen.length = 0;
      rig.proxy.starting = true;
      const asyncCall = await call(rig.proxyPort, { headers: { prefer: 'respond-async' } });
      assert.equal(asyncCall.status, 503, asyncCall.body);
      assert.equal(rig.upstreamSeen.length, 0, 'an async request is not served synchronously');
      assert.equal((await call(rig.proxyPort, {})).status, 200);
      rig.proxy.starting = false;
    });
  });
}

describe('h2c clients of the invocation port and their pings', () => {
  const rig = new ProxyRig('lean');
  before(async () => {
    await rig.start();
    rig.route();
  });
  after(() => rig.stop());

  const h2Get = (session: ClientHttp2Session): Promise<{ status: number; body: string }> => new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'GET', ':path': '/function/f/x' });
    let body = '';
    let status = 0;
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (b: Buffer) => (body += b.toString()));
    req.on('end', () => resolve({ status, body }));
    req.on('error', reject);
  });

  it("a client that pings on each DATA frame it reads (gRPC's BDP estimate) keeps its connection through a long streamed answer", async () => {
    const chunks = 40;
    rig.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      let sent = 0;
      const next = (): void => {
        if (sent === chunks) return void res.end();
        sent += 1;
        res.write(Buffer.alloc(1_024, 97));
        setTimeout(next, 2);
      };
      next();
    };
    const client = connectH2(`http://127.0.0.1:${rig.proxyPort}`);
    client.on('error', () => {});
    let goaway = false;
    client.on('goaway', () => (goaway = true));
    try {
      const { bytes, pings } = await new Promise<{ bytes: number; pings: number }>((resolve, reject) => {
        const req = client.request({ ':method': 'GET', ':path': '/function/f/stream' });
        let bytes = 0;
        let pings = 0;
        let outstanding = false;
        req.on('data', (b: Buffer) => {
          bytes += b.length;
          if (outstanding) return;
          // As grpc-go's BDP estimator: one ping at a time, sent when data arrives.
          outstanding = client.ping(() => (outstanding = false));
          if (outstanding) pings += 1;
        });
        req.on('end', () => resolve({ bytes, pings }));
        req.on('error', reject);
      });
      assert.equal(bytes, chunks * 1_024);
      assert.ok(pings > 15, `${pings} pings sent: more than a fresh connection's burst`);
      assert.equal(goaway, false, 'no GOAWAY');
      assert.equal(client.destroyed, false);
    } finally {
      client.destroy();
      rig.handler = (_req, res) => res.end('ok');
    }
  });

  it('a client that floods the port with pings loses its connection (GOAWAY too_many_pings); a new one is served', async () => {
    const flooder = connectH2(`http://127.0.0.1:${rig.proxyPort}`);
    flooder.on('error', () => {});
    const goaway = once(flooder, 'goaway') as Promise<[number, number, Buffer | undefined]>;
    try {
      assert.deepEqual(await h2Get(flooder), { status: 200, body: 'ok' });
      const answered = await pingUntilRefused(flooder);
      const [code, , data] = await goaway;
      assert.equal(code, h2constants.NGHTTP2_ENHANCE_YOUR_CALM);
      assert.equal(String(data), 'too_many_pings');
      assert.ok(answered >= 10 && answered <= 12, `${answered} pings answered`);
    } finally {
      flooder.destroy();
    }
    const fresh = connectH2(`http://127.0.0.1:${rig.proxyPort}`);
    try {
      assert.deepEqual(await h2Get(fresh), { status: 200, body: 'ok' });
    } finally {
      fresh.destroy();
    }
  });
});

describe('a configured ping budget on the invocation port', () => {
  const rig = new ProxyRig('lean', { invocationPingBurstMax: 3, invocationPingRefillMs: 60_000 });
  before(async () => {
    await rig.start();
    rig.route();
  });
  after(() => rig.stop());

  it('ends a connection past --invocation-ping-burst-max pings, not past the default 10', async () => {
    const flood = await floodFreshConnection(`http://127.0.0.1:${rig.proxyPort}`);
    assert.equal(flood.goawayData, 'too_many_pings');
    assert.ok(flood.answered >= 3 && flood.answered <= 4, `${flood.answered} pings answered`);
  });
});

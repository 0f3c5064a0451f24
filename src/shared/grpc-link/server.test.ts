/**
 * Goal: the lean gRPC server speaks gRPC as other implementations expect, and every call on it
 * ends once: grpc-js's client and our channel both carry messages in order over many streams and
 * read the status we end with (in trailers, or alone in the headers before any message); a method
 * we do not serve is UNIMPLEMENTED, a request that is not gRPC gets HTTP 415; a message above the
 * limit, a compressed one and one that fails to decode end the call with the status gRPC names;
 * a paused call reads nothing until resumed;
 * a client's cancel, the server's close and an unanswered keepalive ping close the call on the
 * server; a peer flooding it with pings loses its connection (GOAWAY too_many_pings) while
 * others are served; TLS works with our certificates.
 * Both servers: GrpcServer, and ThreadGrpcServer with its connections on a worker thread.
 * Method: each server on 127.0.0.1 with a test service whose messages are raw bytes; grpc-js's
 * generic client, our GrpcChannel, a plain node:http2 client for what a client should never send,
 * and a TCP relay that stops forwarding for the keepalive case.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createCerts } from '../../cli/certs.js';
import { GrpcChannel, type StreamMethod } from './channel.js';
import { framed, grpcStatus } from './frames.js';
import { ending, failure, partitionRelay } from './calls.testkit.js';
import { pingUntilRefused } from '../ping-flood.testkit.js';
import { GrpcServer, defaultServerLimits, type GrpcServing, type ServerCall, type ServerLimits } from './server.js';
import { ThreadGrpcServer } from './thread-server.js';

const method = (path: string): StreamMethod<Buffer, Buffer> => ({ path, encodeFramed: framed, decode: (b) => Buffer.from(b) });
const echoPath = '/t.T/Echo';

/** What the server saw of its calls. */
interface Seen {
  closes: number;
  opened: ServerCall<Buffer>[];
  authorization: string[];
}

type Kind = 'GrpcServer' | 'ThreadGrpcServer';

function newServer(kind: Kind, seen: Seen, limits: ServerLimits = defaultServerLimits, refused: string[] = []): GrpcServing {
  const onPeerRefused = (peer: string, reason: string): void => { refused.push(`${peer} ${reason}`); };
  const server = kind === 'GrpcServer'
    ? new GrpcServer(limits, () => undefined, onPeerRefused)
    : new ThreadGrpcServer({ limits, onPeerRefused });
  const add = (path: string, handler: (call: ServerCall<Buffer>) => void): void =>
    server.addMethod<Buffer, Buffer>({ path, decode: (b) => Buffer.from(b), encodeFramed: framed, handler: (call) => {
      seen.opened.push(call);
      seen.authorization.push(String(call.metadata['authorization'] ?? '(none)'));
      call.on('close', () => { seen.closes += 1; });
      handler(call);
    } });
  add(echoPath, (call) => {
    call.sendHeaders();
    call.on('data', (b: Buffer) => {
      if (b.toString() === 'fail') call.end({ code: grpcStatus.UNAVAILABLE, details: 'asked to fail: 100% on purpose' });
      else call.write(b);
    });
    call.on('end', () => call.end());
  });
  add('/t.T/Refuse', (call) => call.end({ code: grpcStatus.UNAUTHENTICATED, details: 'refused: no token; see --cluster-token-file' }));
  server.addMethod<Buffer, Buffer>({ path: '/t.T/Strict', decode: () => { throw new Error('not a message of this method'); }, encodeFramed: framed, handler: (call) => {
    call.on('close', () => { seen.closes += 1; });
  } });
  return server;
}

const newSeen = (): Seen => ({ closes: 0, opened: [], authorization: [] });

async function until(what: string, ok: () => boolean, waitMs = 5_000): Promise<void> {
  const deadline = Date.now() + waitMs;
  while (!ok()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A raw HTTP/2 request: the status, the headers and trailers, and the body. */
async function rawCall(port: number, headers: http2.OutgoingHttpHeaders, body: Buffer): Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: Buffer }> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    const req = session.request({ ':method': 'POST', ...headers });
    const chunks: Buffer[] = [];
    let trailers: http2.IncomingHttpHeaders = {};
    req.on('trailers', (t) => { trailers = t; });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.end(body);
    const [h] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
    await new Promise<void>((resolve) => { req.on('close', resolve); });
    return { headers: h, trailers, body: Buffer.concat(chunks) };
  } finally {
    session.destroy();
  }
}

for (const kind of ['GrpcServer', 'ThreadGrpcServer'] as const) {
  describe(kind, { timeout: 30_000 }, () => {
    const seen = newSeen();
    let server: GrpcServing;
    let port = 0;
    let ch: GrpcChannel;
    before(async () => {
      server = newServer(kind, seen, { ...defaultServerLimits, messageBytesMax: 100 });
      port = await server.listen('127.0.0.1', 0);
      ch = new GrpcChannel(`127.0.0.1:${port}`, null);
    });
    after(async () => {
      ch.close();
      await server.close();
    });

    it('carries each stream’s messages in order over many streams of our channel, and ends OK on half-close', async () => {
      const streams = Array.from({ length: 50 }, (_, i) => {
        const s = ch.openStream(method(echoPath), i % 2 === 0 ? `token-${i}` : null);
        const got: string[] = [];
        s.on('data', (b: Buffer) => got.push(b.toString()));
        return { s, got, end: ending(s) };
      });
      for (let m = 0; m < 20; m += 1) streams.forEach(({ s }, i) => s.write(Buffer.from(`${i}:${m}`)));
      for (const { s } of streams) s.end();
      for (const [i, { got, end }] of streams.entries()) {
        assert.deepEqual(await end, { ok: true });
        assert.deepEqual(got, Array.from({ length: 20 }, (_, m) => `${i}:${m}`));
      }
      assert.ok(seen.authorization.includes('Bearer token-0'), 'the bearer token reaches the handler');
    });

    it('ends a call with the status it is given, details intact, after messages', async () => {
      const s = ch.openStream(method(echoPath), null);
      const got: string[] = [];
      s.on('data', (b: Buffer) => got.push(b.toString()));
      const end = ending(s);
      s.write(Buffer.from('first'));
      s.write(Buffer.from('fail'));
      const err = await failure(end);
      assert.deepEqual(got, ['first']);
      assert.equal(err.code, grpcStatus.UNAVAILABLE);
      assert.equal(err.details, 'asked to fail: 100% on purpose');
    });

    it('answers a refusal before any message in the headers alone', async () => {
      const s = ch.openStream(method('/t.T/Refuse'), null);
      const err = await failure(ending(s));
      assert.equal(err.code, grpcStatus.UNAUTHENTICATED);
      assert.match(err.details, /cluster-token-file/);
      const raw = await rawCall(port, { ':path': '/t.T/Refuse', 'content-type': 'application/grpc' }, Buffer.alloc(0));
      assert.equal(raw.headers['grpc-status'], String(grpcStatus.UNAUTHENTICATED), 'trailers-only: the status is in the headers');
    });

    it('ends a method it does not serve UNIMPLEMENTED, and answers a request that is not gRPC with 415', async () => {
      const err = await failure(ending(ch.openStream(method('/t.T/Nothing'), null)));
      assert.equal(err.code, grpcStatus.UNIMPLEMENTED);
      assert.match(err.details, /\/t\.T\/Nothing/);
      const raw = await rawCall(port, { ':path': echoPath, 'content-type': 'application/json' }, Buffer.from('{}'));
      assert.equal(raw.headers[':status'], 415);
    });

    it('ends a call whose message is above the limit RESOURCE_EXHAUSTED, a compressed one INTERNAL, one that fails to decode INTERNAL', async () => {
      const big = ch.openStream(method(echoPath), null);
      const bigEnd = ending(big);
      big.write(Buffer.alloc(101, 7));
      const bigErr = await failure(bigEnd);
      assert.equal(bigErr.code, grpcStatus.RESOURCE_EXHAUSTED);
      assert.match(bigErr.details, /101 bytes/);

      const compressed = framed(Buffer.from('zz'));
      compressed[0] = 1;
      const raw = await rawCall(port, { ':path': echoPath, 'content-type': 'application/grpc' }, compressed);
      // In the trailers, or in the headers alone when the call ended before its handler's
      // headers went out (on the thread the framing fault can overtake them): both are gRPC.
      const status = raw.trailers['grpc-status'] === undefined ? raw.headers : raw.trailers;
      assert.equal(status['grpc-status'], String(grpcStatus.INTERNAL));
      assert.match(String(status['grpc-message']), /compress/);

      const strict = ch.openStream(method('/t.T/Strict'), null);
      const strictEnd = ending(strict);
      strict.write(Buffer.from('anything'));
      const strictErr = await failure(strictEnd);
      assert.equal(strictErr.code, grpcStatus.INTERNAL);
      assert.match(strictErr.details, /failed to decode/);
    });

    it('closes the call on the server when the client cancels it', async () => {
      const s = ch.openStream(method(echoPath), null);
      const first = once(s, 'data');
      s.write(Buffer.from('one'));
      await first;
      const call = seen.opened[seen.opened.length - 1]!;
      const closed = once(call, 'close');
      s.on('error', () => undefined);
      s.cancel();
      await closed;
      assert.equal(call.writable, false);
      assert.equal(call.write(Buffer.from('late')), false, 'a closed call takes no more messages');
    });

    it('a paused call reads nothing until it is resumed, then everything in order', async () => {
      const s = ch.openStream(method(echoPath), null);
      const got: string[] = [];
      s.on('data', (b: Buffer) => got.push(b.toString()));
      s.write(Buffer.from('one'));
      await until('the first echo', () => got.length === 1);
      const call = seen.opened[seen.opened.length - 1]!;
      call.pause();
      await new Promise((r) => setTimeout(r, 50)); // the pause reaches the thread, where there is one
      s.write(Buffer.from('two'));
      s.write(Buffer.from('three'));
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(got, ['one'], 'nothing was read while paused');
      call.resume();
      await until('the held echoes', () => got.length === 3);
      assert.deepEqual(got, ['one', 'two', 'three']);
      s.end();
      assert.deepEqual(await ending(s), { ok: true });
    });

    it('interoperates with grpc-js’s client: messages both ways, OK, a refusal, an unknown method', async () => {
      const raw = (b: Buffer): Buffer => b;
      const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      try {
        const call = client.makeBidiStreamRequest(echoPath, raw, raw);
        const got: string[] = [];
        call.on('data', (b: Buffer) => got.push(b.toString()));
        const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
        call.on('error', () => undefined);
        for (const m of ['a', 'b', 'c']) call.write(Buffer.from(m));
        call.end();
        assert.equal((await status).code, grpc.status.OK);
        assert.deepEqual(got, ['a', 'b', 'c']);

        const refusal = (path: string): Promise<grpc.ServiceError> => new Promise((resolve) => {
          const c = client.makeBidiStreamRequest(path, raw, raw);
          c.on('error', resolve);
          c.end();
        });
        const refused = await refusal('/t.T/Refuse');
        assert.equal(refused.code, grpc.status.UNAUTHENTICATED);
        assert.match(refused.details, /cluster-token-file/);
        assert.equal((await refusal('/t.T/Nothing')).code, grpc.status.UNIMPLEMENTED);
      } finally {
        client.close();
      }
    });
  });

  describe(`${kind} connections`, { timeout: 30_000 }, () => {
    it('closing the server ends its calls: UNAVAILABLE on the client, close on the server', async () => {
      const seen = newSeen();
      const server = newServer(kind, seen);
      const port = await server.listen('127.0.0.1', 0);
      const ch = new GrpcChannel(`127.0.0.1:${port}`, null);
      try {
        const s = ch.openStream(method(echoPath), null);
        const first = once(s, 'data');
        s.write(Buffer.from('one'));
        await first;
        const end = ending(s);
        void server.close();
        const err = await failure(end);
        assert.equal(err.code, grpcStatus.UNAVAILABLE);
        await until('the call closed on the server', () => seen.closes === 1);
      } finally {
        ch.close();
        await server.close();
      }
    });

    it('a client that stops answering pings loses its connection, and its calls close on the server', async () => {
      const seen = newSeen();
      const server = newServer(kind, seen, { ...defaultServerLimits, keepaliveMs: 50, keepaliveTimeoutMs: 100 });
      const port = await server.listen('127.0.0.1', 0);
      const relay = await partitionRelay(port);
      // The client's own keepalive is slower than the test, so only the server's ping decides.
      const ch = new GrpcChannel(`127.0.0.1:${relay.port}`, null, { keepaliveMs: 60_000, keepaliveTimeoutMs: 60_000, messageBytesMax: 1024, sessionMemoryMiBMax: 16, streamWindowBytes: 65_535, connectionWindowBytes: 65_535 });
      try {
        const s = ch.openStream(method(echoPath), null);
        s.on('error', () => undefined);
        const first = once(s, 'data');
        s.write(Buffer.from('one'));
        await first;
        relay.partition();
        await until('the call closed on the server', () => seen.closes === 1);
      } finally {
        ch.close();
        relay.close();
        await server.close();
      }
    });
  });

  describe(`${kind} and pings`, { timeout: 30_000 }, () => {
    it('ends the connection of a peer that floods it with pings (GOAWAY ENHANCE_YOUR_CALM too_many_pings) and keeps serving the others', async () => {
      const seen = newSeen();
      const refused: string[] = [];
      const server = newServer(kind, seen, defaultServerLimits, refused);
      const port = await server.listen('127.0.0.1', 0);
      const ch = new GrpcChannel(`127.0.0.1:${port}`, null);
      const flooder = http2.connect(`http://127.0.0.1:${port}`);
      flooder.on('error', () => undefined);
      const connected = once(flooder, 'connect');
      try {
        const s = ch.openStream(method(echoPath), null);
        const got: string[] = [];
        s.on('data', (b: Buffer) => got.push(b.toString()));
        const end = ending(s);
        s.write(Buffer.from('one'));
        await until('the first echo', () => got.length === 1);
        const goaway = once(flooder, 'goaway') as Promise<[number, number, Buffer | undefined]>;
        await connected;
        const answered = await pingUntilRefused(flooder);
        const [code, , data] = await goaway;
        assert.equal(code, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
        assert.equal(String(data), 'too_many_pings');
        // The burst (10), maybe one refilled ping, maybe the ack of the refused one.
        assert.ok(answered >= defaultServerLimits.pingBurstMax && answered <= defaultServerLimits.pingBurstMax + 2, `${answered} pings answered`);
        await until('the flooder disconnected', () => flooder.destroyed || flooder.closed);
        assert.equal(refused.length, 1);
        assert.match(refused[0]!, /^127\.0\.0\.1:\d+ too_many_pings$/);
        s.write(Buffer.from('two'));
        await until('the well-behaved client still served', () => got.length === 2);
        assert.deepEqual(got, ['one', 'two']);
        s.end();
        assert.deepEqual(await end, { ok: true });
      } finally {
        flooder.destroy();
        ch.close();
        await server.close();
      }
    });
    it('forgives a ping after each message it sent, as a gRPC client estimating bandwidth sends them, and still refuses a flood on the same connection', async () => {
      // grpc-go's and netty's clients ping as data arrives (BDP estimation): many pings a second
      // through a busy stream. The server answered the first 10 and then ended the connection.
      const refused: string[] = [];
      const server = newServer(kind, newSeen(), defaultServerLimits, refused);
      const port = await server.listen('127.0.0.1', 0);
      const client = http2.connect(`http://127.0.0.1:${port}`);
      client.on('error', () => undefined);
      const messages = defaultServerLimits.pingBurstMax * 4;
      try {
        const req = client.request({ ':method': 'POST', ':path': echoPath, 'content-type': 'application/grpc', te: 'trailers' });
        req.on('error', () => undefined);
        const ping = (): Promise<boolean> => new Promise((resolve) => {
          if (!client.ping((err) => resolve(!err))) resolve(false);
        });
        let echoed = 0;
        let pending = Buffer.alloc(0);
        const echo = (): Promise<void> => new Promise((resolve, reject) => {
          const onData = (chunk: Buffer): void => {
            pending = Buffer.concat([pending, chunk]);
            if (pending.length < 5 || pending.length < 5 + pending.readUInt32BE(1)) return;
            pending = pending.subarray(5 + pending.readUInt32BE(1));
            req.off('data', onData);
            req.off('close', onClose);
            resolve();
          };
          const onClose = (): void => reject(new Error(`the call closed after ${echoed} echoes`));
          req.on('data', onData);
          req.on('close', onClose);
        });
        for (let i = 0; i < messages; i += 1) {
          const got = echo();
          req.write(framed(Buffer.from(`m${i}`)));
          await got;
          echoed += 1;
          assert.ok(await ping(), `the ping after echo ${i} was answered`);
        }
        assert.equal(echoed, messages);
        assert.deepEqual(refused, []);
        // Pings with nothing sent in between are still bounded on this connection.
        const goaway = once(client, 'goaway') as Promise<[number, number, Buffer | undefined]>;
        const answered = await pingUntilRefused(client);
        assert.equal(String((await goaway)[2]), 'too_many_pings');
        assert.ok(answered <= defaultServerLimits.pingBurstMax + 2, `${answered} pings answered`);
        assert.equal(refused.length, 1);
      } finally {
        client.destroy();
        await server.close();
      }
    });
  });

  describe(`${kind} over TLS`, { timeout: 30_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'dirigent-grpc-server-'));
    let server: GrpcServing;
    let port = 0;
    let ca: Buffer;
    before(async () => {
      const p = createCerts({ dir, hosts: [], days: 1, force: false, nowMs: Date.now() });
      ca = readFileSync(p.ca);
      server = newServer(kind, newSeen());
      port = await server.listen('127.0.0.1', 0, { certPem: readFileSync(p.cert), keyPem: readFileSync(p.key) });
    });
    after(async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('serves our channel and grpc-js’s client when they trust the CA', async () => {
      const ch = new GrpcChannel(`127.0.0.1:${port}`, ca);
      try {
        const s = ch.openStream(method(echoPath), null);
        const got = once(s, 'data');
        s.write(Buffer.from('tls'));
        assert.equal(String((await got)[0]), 'tls');
        s.end();
        assert.deepEqual(await ending(s), { ok: true });
      } finally {
        ch.close();
      }
      const raw = (b: Buffer): Buffer => b;
      const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createSsl(ca));
      try {
        const call = client.makeBidiStreamRequest(echoPath, raw, raw);
        const got = once(call, 'data');
        call.on('error', () => undefined);
        call.write(Buffer.from('tls too'));
        assert.equal(String((await got)[0]), 'tls too');
        call.cancel();
      } finally {
        client.close();
      }
    });
  });
}

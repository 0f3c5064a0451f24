/**
 * Goal: the lean client channel behaves as the links need against a real grpc-js server: many
 * streams on one connection, each with its own messages in order; the bearer token reaches the
 * server; every call ends exactly once, with the server's status (OK as 'end', anything else as a
 * CallError naming the code), CANCELLED when we cancel, UNAVAILABLE when the connection goes; the
 * channel dials again after a loss; TLS checks the CA; an unanswered ping ends the connection.
 * Method: grpc-js servers (and one plain node:http2 server that stops reading) on 127.0.0.1, with
 * a test service whose messages are raw bytes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createCerts } from '../../cli/certs.js';
import { bindServer } from '../grpc.js';
import { GrpcChannel, defaultChannelLimits, type BidiStream, type StreamMethod } from './channel.js';
import { framed, grpcStatus } from './frames.js';
import { ending, failure, partitionRelay } from './calls.testkit.js';

const raw = (b: Buffer): Buffer => b;
const unary = { requestStream: true, responseStream: true, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw };
const serviceDef = {
  echo: { path: '/t.T/Echo', ...unary },
  refuse: { path: '/t.T/Refuse', ...unary },
  whoami: { path: '/t.T/Whoami', ...unary },
  big: { path: '/t.T/Big', ...unary },
} as grpc.ServiceDefinition;
type Call = grpc.ServerDuplexStream<Buffer, Buffer>;

const method = (path: string): StreamMethod<Buffer, Buffer> => ({ path, encodeFramed: framed, decode: (b) => Buffer.from(b) });
const echo = method('/t.T/Echo');

let serverCancels = 0;
function newServer(): grpc.Server {
  const server = new grpc.Server();
  server.addService(serviceDef, {
    echo: (call: Call) => {
      call.on('data', (b: Buffer) => call.write(b));
      call.on('end', () => call.end());
      call.on('cancelled', () => { serverCancels += 1; });
      call.on('error', () => undefined);
    },
    refuse: (call: Call) => {
      call.on('error', () => undefined);
      call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: 'refused: no token; see --cluster-token-file' });
    },
    whoami: (call: Call) => {
      const v = call.metadata.get('authorization');
      call.write(Buffer.from(v.length === 0 ? '(none)' : String(v[0])));
      call.end();
    },
    big: (call: Call) => {
      call.on('error', () => undefined);
      call.write(Buffer.alloc(200, 1));
      call.end();
    },
  });
  return server;
}

/** Opens an echo stream, checks that one message comes back, and cancels it. */
async function echoesOnce(ch: GrpcChannel, text: string): Promise<void> {
  const s = ch.openStream(echo, null);
  const got = once(s, 'data');
  s.write(Buffer.from(text));
  assert.equal(String((await got)[0]), text);
  s.on('error', () => undefined);
  s.cancel();
}

/** An echo stream that has carried one message both ways. */
async function openedEcho(ch: GrpcChannel): Promise<BidiStream<Buffer>> {
  const s = ch.openStream(echo, null);
  const first = once(s, 'data');
  s.write(Buffer.from('one'));
  await first;
  return s;
}

/** A new server on `port`; the channel dials it again and a stream echoes. */
async function serverBack(ch: GrpcChannel, port: number, text: string): Promise<grpc.Server> {
  const server = newServer();
  await bindServer('127.0.0.1', port, server);
  assert.equal(await ready(ch), null);
  await echoesOnce(ch, text);
  return server;
}

/** Runs `fn` on a new channel to `address`, closed afterwards whatever happens. */
async function onChannel(address: string, fn: (ch: GrpcChannel) => Promise<void>, limits = defaultChannelLimits, caPem: Buffer | null = null): Promise<void> {
  const ch = new GrpcChannel(address, caPem, limits);
  try {
    await fn(ch);
  } finally {
    ch.close();
  }
}

function ready(ch: GrpcChannel, waitMs = 5_000): Promise<Error | null> {
  return new Promise((resolve) => ch.waitForReady(Date.now() + waitMs, resolve));
}

describe('GrpcChannel against a grpc-js server', { timeout: 30_000 }, () => {
  let server: grpc.Server;
  let port = 0;
  before(async () => {
    server = newServer();
    port = await bindServer('127.0.0.1', 0, server);
  });
  after(() => server.forceShutdown());

  it('carries the messages of 40 streams on one connection, each in order, and ends them OK', async () => {
    await onChannel(`127.0.0.1:${port}`, async (ch) => {
      assert.equal(await ready(ch), null);
      const streams = Array.from({ length: 40 }, (_, i) => {
        const s = ch.openStream(echo, 'tok');
        const got: string[] = [];
        s.on('data', (b: Buffer) => got.push(b.toString()));
        const end = ending(s);
        for (let k = 0; k < 50; k += 1) s.write(Buffer.from(`${i}:${k}`));
        s.end();
        return { got, end, i };
      });
      for (const { got, end, i } of streams) {
        assert.deepEqual(await end, { ok: true });
        assert.deepEqual(got, Array.from({ length: 50 }, (_, k) => `${i}:${k}`));
      }
    });
  });

  it('sends the bearer token, and none when there is none', async () => {
    await onChannel(`127.0.0.1:${port}`, async (ch) => {
      for (const [token, want] of [['s3cret', 'Bearer s3cret'], [null, '(none)']] as const) {
        const s = ch.openStream(method('/t.T/Whoami'), token);
        const got: string[] = [];
        s.on('data', (b: Buffer) => got.push(b.toString()));
        assert.deepEqual(await ending(s), { ok: true });
        assert.deepEqual(got, [want]);
      }
    });
  });

  it("ends a refused call with the server's code and message, and no 'end'", async () => {
    await onChannel(`127.0.0.1:${port}`, async (ch) => {
      const s = ch.openStream(method('/t.T/Refuse'), null);
      s.write(Buffer.from('hello'));
      const err = await failure(ending(s));
      assert.equal(err.code, grpcStatus.UNAUTHENTICATED);
      assert.equal(err.details, 'refused: no token; see --cluster-token-file');
      assert.match(err.message, /^16 UNAUTHENTICATED: refused/);
    });
  });

  it('names an unknown method UNIMPLEMENTED', async () => {
    await onChannel(`127.0.0.1:${port}`, async (ch) => {
      const err = await failure(ending(ch.openStream(method('/t.T/Nope'), null)));
      assert.equal(err.code, grpcStatus.UNIMPLEMENTED);
    });
  });

  it('cancels: CANCELLED here, the server sees the call cancelled, writes after it are refused', async () => {
    await onChannel(`127.0.0.1:${port}`, async (ch) => {
      const s = await openedEcho(ch);
      const before = serverCancels;
      const end = ending(s);
      s.cancel();
      const err = await failure(end);
      assert.equal(err.code, grpcStatus.CANCELLED);
      assert.equal(s.write(Buffer.from('late')), false);
      for (let i = 0; i < 100 && serverCancels === before; i += 1) await new Promise((res) => setTimeout(res, 10));
      assert.equal(serverCancels, before + 1);
    });
  });

  it('refuses a message above its limit with RESOURCE_EXHAUSTED', async () => {
    await onChannel(`127.0.0.1:${port}`, async (ch) => {
      const s = ch.openStream(method('/t.T/Big'), null);
      s.on('data', () => assert.fail('the big message must not come out'));
      const err = await failure(ending(s));
      assert.equal(err.code, grpcStatus.RESOURCE_EXHAUSTED);
    }, { ...defaultChannelLimits, messageBytesMax: 100 });
  });

  it('ends the call INTERNAL when a message fails to decode', async () => {
    await onChannel(`127.0.0.1:${port}`, async (ch) => {
      const s = ch.openStream<Buffer, Buffer>({ ...echo, decode: () => { throw new Error('bad wire type 7'); } }, null);
      s.write(Buffer.from('x'));
      s.on('data', () => assert.fail('nothing decodes'));
      const err = await failure(ending(s));
      assert.equal(err.code, grpcStatus.INTERNAL);
      assert.match(err.details, /bad wire type 7/);
    });
  });
});

describe('GrpcChannel when the connection goes', { timeout: 30_000 }, () => {
  it('fails waitForReady and streams with nobody listening, then connects once a server is there', async () => {
    const probe = newServer();
    const port = await bindServer('127.0.0.1', 0, probe);
    probe.forceShutdown();
    const ch = new GrpcChannel(`127.0.0.1:${port}`, null);
    let server: grpc.Server | null = null;
    try {
      assert.ok((await ready(ch)) instanceof Error, 'nothing listens');
      assert.equal((await failure(ending(ch.openStream(echo, null)))).code, grpcStatus.UNAVAILABLE);
      server = await serverBack(ch, port, 'back');
    } finally {
      ch.close();
      server?.forceShutdown();
    }
  });

  it('ends open streams UNAVAILABLE when the server goes, and dials again for the next', async () => {
    let server = newServer();
    const port = await bindServer('127.0.0.1', 0, server);
    const ch = new GrpcChannel(`127.0.0.1:${port}`, null);
    try {
      const s = await openedEcho(ch);
      const end = ending(s);
      server.forceShutdown();
      const err = await failure(end);
      assert.equal(err.code, grpcStatus.UNAVAILABLE);
      server = await serverBack(ch, port, 'two');
    } finally {
      ch.close();
      server.forceShutdown();
    }
  });

  it('ends the connection when a ping goes unanswered (a partition)', async () => {
    const server = newServer();
    const port = await bindServer('127.0.0.1', 0, server);
    const relay = await partitionRelay(port);
    const ch = new GrpcChannel(`127.0.0.1:${relay.port}`, null, { ...defaultChannelLimits, keepaliveMs: 50, keepaliveTimeoutMs: 100 });
    try {
      const s = await openedEcho(ch);
      const end = ending(s);
      relay.partition();
      const err = await failure(end);
      assert.equal(err.code, grpcStatus.UNAVAILABLE);
      assert.match(err.details, /keepalive|connection/);
    } finally {
      ch.close();
      relay.close();
      server.forceShutdown();
    }
  });

  it('ends UNKNOWN, not OK, when a server ends the call without a grpc-status', async () => {
    const h2 = http2.createServer();
    h2.on('stream', (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.end(framed(Buffer.from('partial answer')));
    });
    h2.listen(0, '127.0.0.1');
    await once(h2, 'listening');
    const ch = new GrpcChannel(`127.0.0.1:${(h2.address() as net.AddressInfo).port}`, null);
    try {
      const s = ch.openStream(echo, null);
      const got: string[] = [];
      s.on('data', (b: Buffer) => got.push(b.toString()));
      const err = await failure(ending(s));
      assert.deepEqual(got, ['partial answer']);
      assert.equal(err.code, grpcStatus.UNKNOWN);
      assert.match(err.details, /without a grpc-status/);
    } finally {
      ch.close();
      h2.close();
    }
  });

  it('ends UNAVAILABLE, not UNKNOWN, when the server drops the connection in the middle of a call', async () => {
    const h2 = http2.createServer();
    h2.on('stream', (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.write(framed(Buffer.from('one')));
      setImmediate(() => stream.session?.destroy());
    });
    h2.listen(0, '127.0.0.1');
    await once(h2, 'listening');
    const ch = new GrpcChannel(`127.0.0.1:${(h2.address() as net.AddressInfo).port}`, null);
    try {
      const s = ch.openStream(echo, null);
      const err = await failure(ending(s));
      assert.equal(err.code, grpcStatus.UNAVAILABLE, err.message);
    } finally {
      ch.close();
      h2.close();
    }
  });

  it('answers an address it cannot dial with an error, not a throw', async () => {
    const ch = new GrpcChannel('no host:port:here', null);
    assert.ok((await ready(ch)) instanceof Error);
    const err = await failure(ending(ch.openStream(echo, null)));
    assert.equal(err.code, grpcStatus.UNAVAILABLE);
    ch.close();
  });

  it('refuses a channel closed by its owner', async () => {
    const ch = new GrpcChannel('127.0.0.1:9', null);
    ch.close();
    assert.ok((await ready(ch)) instanceof Error);
    const err = await failure(ending(ch.openStream(echo, null)));
    assert.equal(err.code, grpcStatus.UNAVAILABLE);
  });
});

describe('GrpcChannel over TLS', { timeout: 30_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dirigent-grpc-link-'));
  const other = mkdtempSync(join(tmpdir(), 'dirigent-grpc-link-other-'));
  let server: grpc.Server;
  let port = 0;
  let ca: Buffer;
  let wrongCa: Buffer;
  before(async () => {
    const p = createCerts({ dir, hosts: [], days: 1, force: false, nowMs: Date.now() });
    wrongCa = readFileSync(createCerts({ dir: other, hosts: [], days: 1, force: false, nowMs: Date.now() }).ca);
    ca = readFileSync(p.ca);
    server = newServer();
    port = await bindServer('127.0.0.1', 0, server, { certPem: readFileSync(p.cert), keyPem: readFileSync(p.key) });
  });
  after(() => {
    server.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
    rmSync(other, { recursive: true, force: true });
  });

  it('talks to a server whose certificate chains to the CA', async () => {
    await onChannel(`127.0.0.1:${port}`, async (ch) => {
      await echoesOnce(ch, 'tls');
    }, defaultChannelLimits, ca);
  });

  it('refuses a server whose certificate another CA signed', async () => {
    await onChannel(`127.0.0.1:${port}`, async (ch) => {
      const err = await ready(ch);
      assert.ok(err instanceof Error);
      assert.match(err.message, /certificate/i);
    }, defaultChannelLimits, wrongCa);
  });
});

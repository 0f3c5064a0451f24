/**
 * Goal: the lean upstream reads every sandbox connection into one reused buffer, so what it
 * hands on must not change afterwards: body bytes given to the client's response stay as they
 * were sent while later reads (of this connection or another) land in the buffer, and a head
 * split across reads is read whole.
 * Method: a raw TCP sandbox on loopback answers with a head split in two writes and a body in
 * several writes apart in time (several reads); the response stub keeps every chunk it is given
 * by reference, as a socket write that cannot finish at once does. Two calls on two connections
 * run at once. The kept chunks are compared with what was sent after both calls end.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../../shared/clock.js';
import { silentLogger } from '../../shared/logger.js';
import { LeanUpstreamCall, LeanUpstreamPool } from './lean-upstream.js';
import type { ProxyRes } from './http-util.js';

/** A body of `n` bytes that differs at every offset and between seeds. */
function bodyOf(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1_103_515_245) + 12_345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

const partBytes = 20_000;
const parts = 4;
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('lean upstream: one read buffer for all connections', () => {
  let server: Server;
  let port = 0;
  const sockets: Socket[] = [];
  let seed = 1;
  const sent: Buffer[] = [];

  before(async () => {
    server = createServer((s) => {
      sockets.push(s);
      s.setNoDelay(true);
      s.on('error', () => {});
      s.on('data', () => {
        const body = bodyOf(partBytes * parts, seed++);
        sent.push(body);
        void (async () => {
          // The head in two writes, then the body in parts: several reads on our side.
          s.write(`HTTP/1.1 200 OK\r\ncontent-type: application/octet-str`);
          await pause(20);
          s.write(`eam\r\ncontent-length: ${body.length}\r\n\r\n`);
          for (let i = 0; i < parts; i++) {
            await pause(20);
            s.write(body.subarray(i * partBytes, (i + 1) * partBytes));
          }
        })();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });

  it('body chunks handed on keep their bytes while later reads land; a split head is read whole', async () => {
    const pool = new LeanUpstreamPool('127.0.0.1', port, { connectionsMax: 2, connectTimeoutMs: 5_000, keepAliveMs: 4_000, keepAliveMsMax: 60_000 }, systemClock);
    try {
      const one = (): Promise<{ status: number; fields: string[]; kept: Buffer[] }> => new Promise((resolve, reject) => {
        const kept: Buffer[] = [];
        // Keeps each chunk by reference and says it took it: a write queued behind others does that.
        const res = { write: (chunk: Buffer) => (kept.push(chunk), true), once: () => res } as unknown as ProxyRes;
        let status = 0;
        let fields: string[] = [];
        const events = {
          head: (code: number, f: string[]) => {
            status = code;
            fields = f;
            return true;
          },
          end: () => resolve({ status, fields, kept }),
          failed: (err: Error) => reject(err),
        };
        pool.dispatch(new LeanUpstreamCall(pool, `GET / HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n\r\n`, null, false, res, events, silentLogger));
      });
      const results = await Promise.all([one(), one()]);
      assert.equal(sent.length, 2);
      for (const r of results) {
        assert.equal(r.status, 200);
        assert.deepEqual(r.fields.slice(0, 2), ['content-type', 'application/octet-stream']);
        assert.ok(r.kept.length >= 2, `the body came in ${r.kept.length} read(s)`);
      }
      // Which call got which body depends on the order the sandbox saw them: match by content.
      const got = results.map((r) => Buffer.concat(r.kept));
      const matches = got.map((g) => sent.findIndex((s) => s.equals(g)));
      assert.deepEqual([...matches].sort(), [0, 1], 'a body arrived with bytes of other reads in it');
    } finally {
      pool.destroy();
    }
  });
});

/**
 * Goal: when a sandbox's connection is lost before any answer (its worker was killed, or its
 * process restarted), the pool's idle connections to that address are suspect: the proxy tries the
 * request again at once, and an idle connection whose close it has not read yet would lose that
 * try too (a killed worker's every try failed so: 502 after 4 tries). The next call opens a new
 * connection, which a dead address refuses (the core then takes the sandbox out of rotation).
 * Method: three calls at once leave three idle connections; the sandbox then drops the next
 * request's connection without answering. The call after it must arrive on a fourth connection.
 */
describe('lean upstream: a connection lost before any answer', () => {
  let server: Server;
  let port = 0;
  const sockets: Socket[] = [];
  let dropNext = false;

  before(async () => {
    server = createServer((s) => {
      sockets.push(s);
      s.on('error', () => {});
      s.on('data', () => {
        if (dropNext) {
          dropNext = false;
          s.destroy();
          return;
        }
        // Answered a little later, so that calls made at once need connections of their own.
        setTimeout(() => s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'), 10);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });

  it('drops the idle connections to that address, so the next call connects anew', async () => {
    const pool = new LeanUpstreamPool('127.0.0.1', port, { connectionsMax: 3, connectTimeoutMs: 5_000, keepAliveMs: 4_000, keepAliveMsMax: 60_000 }, systemClock);
    const one = (): Promise<string> => new Promise((resolve) => {
      const res = { write: () => true, once: () => res } as unknown as ProxyRes;
      const events = {
        head: () => true,
        end: () => resolve('ok'),
        failed: (err: Error) => resolve((err as { code?: string }).code ?? err.message),
      };
      pool.dispatch(new LeanUpstreamCall(pool, `GET / HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n\r\n`, null, false, res, events, silentLogger));
    });
    try {
      assert.deepEqual(await Promise.all([one(), one(), one()]), ['ok', 'ok', 'ok']);
      assert.equal(sockets.length, 3);
      dropNext = true;
      assert.equal(await one(), 'ECONNRESET');
      assert.equal(await one(), 'ok');
      assert.equal(sockets.length, 4, 'the call after the lost one went on an idle connection of before');
    } finally {
      pool.destroy();
    }
  });
});

/**
 * Goal: a lean listener answers on its port, fails its start with the listen error when the
 * port is taken, and close() returns while a client holds an idle keep-alive connection.
 * Method: real listeners on loopback, a raw client socket.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { systemClock } from '../clock.js';
import { silentLogger } from '../logger.js';
import { LeanConnections, type LeanHost } from './lean-h1.js';
import { startLeanListener } from './lean-listener.js';

function parts(): { lean: LeanConnections; h1: ReturnType<typeof createServer> } {
  const h1 = createServer((_req, res) => res.end());
  const host: LeanHost = {
    name: 'test',
    guard: (_kind, _event, fn) => fn(),
    accepts: () => true,
    serve: (_req, res) => {
      res.writeHead(200, { 'content-length': 2 });
      res.end('ok');
    },
    handOff: (socket) => h1.emit('connection', socket),
  };
  const timeouts = { headersTimeoutMs: 60_000, requestTimeoutMs: 60_000, keepAliveTimeoutMs: 60_000 };
  return { lean: new LeanConnections(host, { bodyBytesMax: 1_024 }, timeouts, systemClock, silentLogger, 1_000), h1 };
}

describe('lean listener', () => {
  it('answers, then closes although a client keeps an idle keep-alive connection', async () => {
    const { lean, h1 } = parts();
    const listener = await startLeanListener(lean, h1, '127.0.0.1', 0);
    const socket = connect(listener.port, '127.0.0.1');
    socket.on('error', () => {});
    const answer = await new Promise<string>((resolve) => {
      socket.once('data', (d: Buffer) => resolve(d.toString('latin1')));
      socket.write('GET / HTTP/1.1\r\nHost: t\r\n\r\n');
    });
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nok$/);
    const closedByServer = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await listener.close();
    await closedByServer;
  });

  it('fails its start with the listen error when the port is taken', async () => {
    const first = parts();
    const taken = await startLeanListener(first.lean, first.h1, '127.0.0.1', 0);
    try {
      const second = parts();
      await assert.rejects(startLeanListener(second.lean, second.h1, '127.0.0.1', taken.port), { code: 'EADDRINUSE' });
    } finally {
      await taken.close();
    }
  });
});

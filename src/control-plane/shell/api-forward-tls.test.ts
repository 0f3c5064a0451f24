/**
 * Goal: with TLS, a standby forwards API calls to the leader over HTTPS trusting the CP CA
 * (`--tls-ca-file`), and a leader certificate it cannot verify is a 503, never a plain-HTTP
 * retry. HTTPS requests are read on the lean path; what it does not take still reaches Node's
 * server over the same TLS connection. Method: real HTTPS API servers with `certs create`
 * certificates, raw https requests and raw TLS sockets.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { connect as connectTcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectTls } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import type { FunctionSpec } from '../../api/types.js';
import { createCerts } from '../../cli/certs.js';
import { silentLogger } from '../../shared/logger.js';
import { startApiServer, type ApiBackend, type ApiServer } from './api-server.js';
import { memoryTenancy } from './api-testkit.js';

function backend(role: 'leader' | 'standby', leaderApi: () => string | null, created: string[]): ApiBackend {
  const specs = new Map<string, FunctionSpec>();
  return {
    createFunction: async (spec: FunctionSpec) => (created.push(spec.name), specs.set(spec.name, spec), 'created'),
    updateFunction: async () => false,
    deleteFunction: async () => false,
    getFunction: (name: string) => {
      const spec = specs.get(name);
      return spec ? { function: spec, status: {} } : null;
    },
    listFunctions: () => [],
    functionKeys: () => [],
    cluster: async () => ({ servedBy: role }),
    dataPlaneAddresses: () => [],
    metrics: async () => ({ contentType: 'text/plain', body: '' }),
    health: () => ({ role, term: 1, pid: 1, id: `cp-${role}` }),
    leaderApi,
  };
}

/** One CA and server certificate for every server of this file. */
const certDir = mkdtempSync(join(tmpdir(), 'dirigent-api-tls-'));
const certs = createCerts({ dir: certDir, hosts: [], days: 1, force: false, nowMs: Date.now() });
const tls = { certPem: readFileSync(certs.cert), keyPem: readFileSync(certs.key) };
const ca = readFileSync(certs.ca);
after(() => rmSync(certDir, { recursive: true, force: true }));

describe('standby forwarding over HTTPS', () => {
  const created: string[] = [];
  const servers: ApiServer[] = [];
  const port = (s: ApiServer): number => s.port;
  let leader: ApiServer;

  const post = (p: number, name: string): Promise<{ status: number; text: string }> => new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: p, method: 'POST', path: '/v1/functions', headers: { 'content-type': 'application/json' }, ca }, (res) => {
      let text = '';
      res.on('data', (b: Buffer) => (text += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ name, command: ['node', 'x.js'] }));
  });

  before(async () => {
    leader = await startApiServer({ host: '127.0.0.1', port: 0, bodyBytesMax: 4096, backend: backend('leader', () => null, created), log: silentLogger, tenancy: memoryTenancy(), tls });
    servers.push(leader);
  });
  after(async () => {
    for (const s of servers) await s.close();
  });

  it('forwards to the leader over HTTPS with the CA', async () => {
    const standby = await startApiServer({ host: '127.0.0.1', port: 0, bodyBytesMax: 4096, log: silentLogger, tenancy: memoryTenancy(), tls, leaderCaPem: ca,
      backend: backend('standby', () => `127.0.0.1:${port(leader)}`, []) });
    servers.push(standby);
    const r = await post(port(standby), 'via-standby');
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(created, ['via-standby']);
    // The standby hands its connection to Node (it streams to the leader); the leader read the
    // forwarded request on the lean path, TLS and all.
    assert.equal(standby.lean.requests, 0);
    assert.ok((standby.lean.handOffs.get('route') ?? 0) > 0);
    assert.ok(leader.lean.requests > 0);
  });

  it('answers 503 when it cannot verify the leader (no CA given: system roots)', async () => {
    const standby = await startApiServer({ host: '127.0.0.1', port: 0, bodyBytesMax: 4096, log: silentLogger, tenancy: memoryTenancy(), tls,
      backend: backend('standby', () => `127.0.0.1:${port(leader)}`, []) });
    servers.push(standby);
    const r = await post(port(standby), 'unverified');
    assert.equal(r.status, 503, r.text);
    assert.match(r.text, /leader_unavailable/);
    assert.ok(!created.includes('unverified'));
  });
});

describe('HTTPS on the lean path', () => {
  const created: string[] = [];
  let server: ApiServer;

  /** Writes `raw` on one TLS connection and reads `answers` whole responses (content-length bodies). */
  const exchange = (raw: string, answers: number): Promise<string> => new Promise((resolve, reject) => {
    const socket = connectTls({ host: '127.0.0.1', port: server.port, ca, servername: 'localhost' }, () => socket.write(raw));
    let text = '';
    const complete = (): boolean => {
      let at = 0;
      for (let k = 0; k < answers; k++) {
        const headEnd = text.indexOf('\r\n\r\n', at);
        if (headEnd < 0) return false;
        const length = Number(/content-length: (\d+)/i.exec(text.slice(at, headEnd))?.[1] ?? 0);
        at = headEnd + 4 + length;
      }
      return at <= text.length;
    };
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (complete()) socket.destroy();
    });
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
  const body = (name: string): string => JSON.stringify({ name, command: ['node', 'x.js'] });

  before(async () => {
    server = await startApiServer({ host: '127.0.0.1', port: 0, bodyBytesMax: 4096, backend: backend('leader', () => null, created), log: silentLogger, tenancy: memoryTenancy(), tls });
  });
  after(async () => {
    await server.close();
  });

  it('reads keep-alive requests on one TLS connection without Node request objects', async () => {
    const before = server.lean.requests;
    const post = (name: string): string =>
      `POST /v1/functions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body(name))}\r\n\r\n${body(name)}`;
    const text = await exchange(post('tls-a') + post('tls-b'), 2);
    assert.equal((text.match(/HTTP\/1\.1 201 /g) ?? []).length, 2, text);
    assert.equal(server.lean.requests - before, 2);
    assert.deepEqual(created.slice(-2), ['tls-a', 'tls-b']);
  });

  it('hands a chunked request to Node over the same TLS connection', async () => {
    const handedBefore = server.lean.handOffs.get('transfer-encoding') ?? 0;
    const b = body('tls-chunked');
    const raw = `POST /v1/functions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n` +
      `${Buffer.byteLength(b).toString(16)}\r\n${b}\r\n0\r\n\r\n`;
    const text = await exchange(raw, 1);
    assert.match(text, /^HTTP\/1\.1 201 /, text);
    assert.equal(server.lean.handOffs.get('transfer-encoding'), handedBefore + 1);
    assert.equal(created.at(-1), 'tls-chunked');
  });

  it('drops a client that speaks plain HTTP to the TLS port and keeps serving', async () => {
    const plain = await new Promise<string>((resolve) => {
      const socket = connectTcp({ host: '127.0.0.1', port: server.port }, () => socket.end('GET /health HTTP/1.1\r\nhost: x\r\n\r\n'));
      let text = '';
      socket.on('data', (b: Buffer) => (text += b.toString('latin1')));
      socket.on('error', () => {});
      socket.on('close', () => resolve(text));
    });
    assert.doesNotMatch(plain, /^HTTP\/1\.1 200/);
    const text = await exchange('GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n', 1);
    assert.match(text, /^HTTP\/1\.1 200 /, text);
  });
});

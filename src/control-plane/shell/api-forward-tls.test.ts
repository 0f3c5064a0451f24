/**
 * Goal: with TLS, a standby forwards API calls to the leader over HTTPS trusting the CP CA
 * (`--tls-ca-file`), and a leader certificate it cannot verify is a 503, never a plain-HTTP
 * retry. Method: two real HTTPS API servers with `certs create` certificates, raw https requests.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

describe('standby forwarding over HTTPS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dirigent-fwd-tls-'));
  const certs = createCerts({ dir, hosts: [], days: 1, force: false, nowMs: Date.now() });
  const tls = { certPem: readFileSync(certs.cert), keyPem: readFileSync(certs.key) };
  const ca = readFileSync(certs.ca);
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
    rmSync(dir, { recursive: true, force: true });
  });

  it('forwards to the leader over HTTPS with the CA', async () => {
    const standby = await startApiServer({ host: '127.0.0.1', port: 0, bodyBytesMax: 4096, log: silentLogger, tenancy: memoryTenancy(), tls, leaderCaPem: ca,
      backend: backend('standby', () => `127.0.0.1:${port(leader)}`, []) });
    servers.push(standby);
    const r = await post(port(standby), 'via-standby');
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(created, ['via-standby']);
    assert.equal(standby.lean, null, 'HTTPS is served by Node alone');
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

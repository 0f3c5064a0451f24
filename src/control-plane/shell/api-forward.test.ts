/**
 * Goal: a standby CP's API answers /health and /health/leader itself and forwards every other
 * call (method, path, body) to the leader; with no known leader it answers 503 leader_unknown.
 * Method: two real API servers on free loopback ports (a leader and a standby whose backend names
 * it), in-memory backends, raw node:http requests.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FunctionSpec } from '../../api/types.js';
import { silentLogger } from '../../shared/logger.js';
import { startApiServer, type ApiBackend, type ApiServer } from './api-server.js';
import { memoryTenancy } from './api-testkit.js';

function backend(role: 'leader' | 'standby', leaderApi: () => string | null, created: string[]): ApiBackend {
  return {
    createFunction: async (spec: FunctionSpec) => (created.push(spec.name), 'created'),
    updateFunction: async () => false,
    deleteFunction: async () => false,
    getFunction: (name) => ({ function: { name } as FunctionSpec, status: {} }),
    listFunctions: () => [],
    functionKeys: () => [],
    cluster: async () => ({ servedBy: role }),
    dataPlaneAddresses: () => [],
    metrics: async () => ({ contentType: 'text/plain', body: '' }),
    health: () => ({ role, term: role === 'leader' ? 7 : 0, pid: 1, id: `cp-${role}` }),
    leaderApi,
  };
}

function send(port: number, method: string, path: string, body?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const headers = body ? { 'content-type': 'application/json' } : {};
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => { text += c.toString(); });
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> });
        } catch {
          reject(new Error(`status ${res.statusCode}, not JSON: ${text.slice(0, 200)}`));
        }
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('API on a standby control plane', () => {
  const created: string[] = [];
  let leaderAddress: string | null = '';
  let leader: ApiServer;
  let standby: ApiServer;
  const port = (s: ApiServer): number => s.port;
  before(async () => {
    leader = await startApiServer({ host: '127.0.0.1', port: 0, bodyBytesMax: 4096, backend: backend('leader', () => null, created), tenancy: memoryTenancy(), log: silentLogger });
    standby = await startApiServer({ host: '127.0.0.1', port: 0, bodyBytesMax: 4096, backend: backend('standby', () => leaderAddress, []), tenancy: memoryTenancy(), log: silentLogger });
  });
  after(async () => {
    for (const s of [leader, standby]) await s.close();
  });

  it('reports its role on /health and 503 on /health/leader, the leader 200', async () => {
    assert.deepEqual((await send(port(standby), 'GET', '/health')).json, { status: 'ok', role: 'standby', term: 0, pid: 1, id: 'cp-standby' });
    assert.equal((await send(port(standby), 'GET', '/health/leader')).status, 503);
    assert.equal((await send(port(leader), 'GET', '/health/leader')).status, 200);
  });

  it('answers 503 leader_unknown while no leader is known', async () => {
    leaderAddress = '';
    const r = await send(port(standby), 'GET', '/v1/cluster');
    assert.equal(r.status, 503);
    assert.equal((r.json['error'] as { code: string }).code, 'leader_unknown');
  });

  it('forwards reads and writes (with their body) to the leader', async () => {
    leaderAddress = `127.0.0.1:${port(leader)}`;
    assert.deepEqual((await send(port(standby), 'GET', '/v1/cluster')).json, { servedBy: 'leader' });
    const r = await send(port(standby), 'POST', '/v1/functions', JSON.stringify({ name: 'via-standby', image: 'emulated' }));
    assert.equal(r.status, 201);
    assert.deepEqual(created, ['via-standby']);
    // A standby streams requests on: its connections go to Node's server; the leader reads lean.
    assert.equal(standby.lean!.requests, 0);
    assert.ok((standby.lean!.handOffs.get('route') ?? 0) > 0);
    assert.ok(leader.lean!.requests > 0);
  });

  it('answers 503 leader_unavailable when the leader does not answer', async () => {
    // A "leader" that drops every connection (a fixed port could belong to anything).
    const dead = createServer((socket) => socket.destroy());
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
    try {
      leaderAddress = `127.0.0.1:${(dead.address() as AddressInfo).port}`;
      const r = await send(port(standby), 'GET', '/v1/functions');
      assert.equal(r.status, 503);
      assert.equal((r.json['error'] as { code: string }).code, 'leader_unavailable');
    } finally {
      dead.close();
    }
  });
});

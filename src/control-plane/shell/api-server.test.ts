/**
 * Goal: the management API answers malformed input from a client with a 4xx in the error shape,
 * never a 500 or a connection reset. Method: a real server on a free loopback port with an
 * in-memory backend; raw node:http requests so chunked bodies and odd paths reach it unchanged.
 */
import assert from 'node:assert/strict';
import { request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FunctionSpec } from '../../api/types.js';
import { silentLogger } from '../../shared/logger.js';
import { startApiServer, type ApiBackend } from './api-server.js';
import { memoryTenancy } from './api-testkit.js';

const bodyBytesMax = 4096;

function memoryBackend(): ApiBackend {
  const functions = new Map<string, FunctionSpec>();
  return {
    createFunction: async (spec) => (functions.has(spec.name) ? 'exists' : (functions.set(spec.name, spec), 'created')),
    updateFunction: async (name, patch) => {
      const current = functions.get(name);
      if (!current) return false;
      functions.set(name, patch(current));
      return true;
    },
    deleteFunction: async (name) => functions.delete(name),
    getFunction: (name) => (functions.has(name) ? { function: functions.get(name)!, status: {} } : null),
    listFunctions: () => [...functions.values()].map((f) => ({ function: f, status: {} })),
    functionKeys: () => [...functions.keys()],
    cluster: () => ({}),
    dataPlaneAddresses: () => ['127.0.0.1:8080'],
    metrics: async () => ({ contentType: 'text/plain', body: '' }),
  };
}

interface Reply { status: number; body: string }

/** Sends `chunks` one write at a time (chunked encoding unless a content-length is given). */
function send(port: number, method: string, path: string, headers: Record<string, string>, chunks: string[]): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

const json = { 'content-type': 'application/json' };

describe('api server: malformed client input', () => {
  let server: Server;
  let port = 0;
  before(async () => {
    server = await startApiServer({ host: '127.0.0.1', port: 0, bodyBytesMax, backend: memoryBackend(), tenancy: memoryTenancy(), log: silentLogger });
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('a malformed percent-encoding in the path is a 400 naming the path', async () => {
    const r = await send(port, 'GET', '/v1/functions/%zz', {}, []);
    assert.equal(r.status, 400, r.body);
    const e = JSON.parse(r.body).error;
    assert.equal(e.code, 'invalid_path');
    assert.equal(e.field, 'path');
    assert.match(e.message, /%zz/);
  });

  it('a body of 200k nested arrays is a 400, not a stack overflow', async () => {
    const deep = '['.repeat(200_000) + ']'.repeat(200_000);
    const server2 = await startApiServer({ host: '127.0.0.1', port: 0, bodyBytesMax: 1_048_576, backend: memoryBackend(), tenancy: memoryTenancy(), log: silentLogger });
    try {
      const r = await send((server2.address() as AddressInfo).port, 'POST', '/v1/functions', json, [deep]);
      assert.equal(r.status, 400, r.body);
      assert.equal(JSON.parse(r.body).error.code, 'invalid_json');
      assert.equal(JSON.parse(r.body).error.field, 'body');
    } finally {
      await new Promise<void>((resolve) => server2.close(() => resolve()));
    }
  });

  it('brackets inside strings (escaped quotes too) do not count as nesting', async () => {
    const body = JSON.stringify({ name: 'brackets', command: ['x'], env: { A: `\\"${'['.repeat(100)}`, B: '"{{{' } });
    const r = await send(port, 'POST', '/v1/functions', json, [body]);
    assert.equal(r.status, 201, r.body);
  });

  it('a chunked body over the limit is answered 413, not reset', async () => {
    const chunk = 'x'.repeat(1024);
    const r = await send(port, 'POST', '/v1/functions', json, Array.from({ length: 16 }, () => chunk));
    assert.equal(r.status, 413, r.body);
    assert.equal(JSON.parse(r.body).error.code, 'body_too_large');
  });

  it('a text/plain body on a JSON route is a 415', async () => {
    const r = await send(port, 'POST', '/v1/functions', { 'content-type': 'text/plain' }, ['{"name":"f","command":["x"]}']);
    assert.equal(r.status, 415, r.body);
    assert.equal(JSON.parse(r.body).error.code, 'unsupported_media_type');
  });

  it('application/json with a charset is accepted; the form route keeps form encoding', async () => {
    const created = await send(port, 'POST', '/v1/functions', { 'content-type': 'application/json; charset=utf-8' }, ['{"name":"f","command":["x"]}']);
    assert.equal(created.status, 201, created.body);
    const form = await send(port, 'POST', '/registerService', { 'content-type': 'application/x-www-form-urlencoded' },
      ['name=g&image=x&port_forwarding=80&port_forwarding=tcp']);
    assert.equal(form.status, 200, form.body);
  });
});

describe('api server: a function deleted while its create or update is answered', () => {
  // The registry orders operations per name: a DELETE queued behind a PATCH (or right after a
  // create) runs before the first answer is written. Found by the live fuzzer (a 500).
  const racing = (): ApiBackend => {
    const b = memoryBackend();
    const deleteRightAfter = async <T>(name: string, op: Promise<T>): Promise<T> => {
      const r = await op;
      await b.deleteFunction(name);
      return r;
    };
    return {
      ...b,
      createFunction: (spec) => (spec.name.startsWith('gone') ? deleteRightAfter(spec.name, b.createFunction(spec)) : b.createFunction(spec)),
      updateFunction: (name, patch) => deleteRightAfter(name, b.updateFunction(name, patch)),
    };
  };
  let server: Server;
  let port = 0;
  before(async () => {
    server = await startApiServer({ host: '127.0.0.1', port: 0, bodyBytesMax, backend: racing(), tenancy: memoryTenancy(), log: silentLogger });
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('answers 404 naming the function, never a 500', async () => {
    const created = await send(port, 'POST', '/v1/functions', json, ['{"name":"gone","command":["x"]}']);
    assert.equal(created.status, 404, created.body);
    assert.equal(JSON.parse(created.body).error.field, 'name');
    assert.equal((await send(port, 'POST', '/v1/functions', json, ['{"name":"kept","command":["x"]}'])).status, 201);
    const patched = await send(port, 'PATCH', '/v1/functions/kept', json, ['{"concurrency":2}']);
    assert.equal(patched.status, 404, patched.body);
  });
});

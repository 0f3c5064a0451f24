/**
 * Goal: the management API answers malformed input from a client with a 4xx in the error shape,
 * never a 500 or a connection reset. Method: a real server on a free loopback port with an
 * in-memory backend; raw node:http requests so chunked bodies and odd paths reach it unchanged.
 */
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { FunctionSpec } from '../../api/types.js';
import { silentLogger } from '../../shared/logger.js';
import { newToken } from '../../shared/secrets.js';
import { startApiServer, type ApiBackend, type ApiServer } from './api-server.js';
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
    cluster: (view) => ({ view }),
    dataPlaneAddresses: () => ['127.0.0.1:8080'],
    metrics: async () => ({ contentType: 'text/plain', body: '' }),
  };
}

interface Reply { status: number; body: string }

/** Sends `chunks` one write at a time (chunked encoding unless a content-length is given). */
function send(port: number, method: string, path: string, headers: Record<string, string>, chunks: string[], agent?: Agent): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, ...(agent ? { agent } : {}) }, (res) => {
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
  let server: ApiServer;
  let port = 0;
  before(async () => {
    server = await startApiServer({ host: '127.0.0.1', port: 0, bodyBytesMax, backend: memoryBackend(), tenancy: memoryTenancy(), log: silentLogger });
    port = server.port;
  });
  after(() => server.close());

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
      const r = await send(server2.port, 'POST', '/v1/functions', json, [deep]);
      assert.equal(r.status, 400, r.body);
      assert.equal(JSON.parse(r.body).error.code, 'invalid_json');
      assert.equal(JSON.parse(r.body).error.field, 'body');
    } finally {
      await server2.close();
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

  it('GET /v1/cluster?sandboxIds=false asks for the view without sandbox ids; another value is a 400 naming the field', async () => {
    assert.deepEqual(JSON.parse((await send(port, 'GET', '/v1/cluster', {}, [])).body), { view: { sandboxIds: true } });
    assert.deepEqual(JSON.parse((await send(port, 'GET', '/v1/cluster?sandboxIds=false', {}, [])).body), { view: { sandboxIds: false } });
    assert.deepEqual(JSON.parse((await send(port, 'GET', '/v1/cluster?sandboxIds=true', {}, [])).body), { view: { sandboxIds: true } });
    for (const bad of ['sandboxIds=no', 'sandboxIds=', 'sandboxIds=false&sandboxIds=true']) {
      const r = await send(port, 'GET', `/v1/cluster?${bad}`, {}, []);
      assert.equal(r.status, 400, `${bad}: ${r.body}`);
      const e = JSON.parse(r.body).error;
      assert.equal(e.code, 'invalid_field');
      assert.equal(e.field, 'sandboxIds');
    }
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

describe('api server: the lean HTTP/1.1 path', () => {
  let server: ApiServer;
  let port = 0;
  // One keep-alive connection for every call of a test, as a registration client keeps it.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const admin = newToken().token;
  const auth = { authorization: `Bearer ${admin}` };
  before(async () => {
    server = await startApiServer({ host: '127.0.0.1', port: 0, bodyBytesMax, backend: memoryBackend(), tenancy: memoryTenancy('token', admin), log: silentLogger });
    port = server.port;
  });
  after(async () => {
    agent.destroy();
    await server.close();
  });
  const sized = (body: string): Record<string, string> => ({ ...json, ...auth, 'content-length': String(Buffer.byteLength(body)) });
  const handOffs = (): number => [...server.lean!.handOffs.values()].reduce((a, b) => a + b, 0);

  it('serves create, read and delete with Content-Length bodies on one connection without Node requests', async () => {
    const before = server.lean!.requests;
    const body = JSON.stringify({ name: 'lean-f', command: ['node', 'x.js'] });
    const created = await send(port, 'POST', '/v1/functions', sized(body), [body], agent);
    assert.equal(created.status, 201, created.body);
    assert.equal(JSON.parse(created.body).function.name, 'lean-f');
    const got = await send(port, 'GET', '/v1/functions/lean-f', auth, [], agent);
    assert.equal(got.status, 200, got.body);
    const again = await send(port, 'POST', '/v1/functions', sized(body), [body], agent);
    assert.equal(again.status, 409, again.body);
    const gone = await send(port, 'DELETE', '/v1/functions/lean-f', auth, [], agent);
    assert.equal(gone.status, 204, gone.body);
    assert.equal(server.lean!.requests - before, 4);
    assert.equal(handOffs(), 0);
  });

  it('errors on the lean path keep the error shape: bad JSON names the body, a missing token is 401', async () => {
    const bad = '{"name":';
    const r = await send(port, 'POST', '/v1/functions', sized(bad), [bad], agent);
    assert.equal(r.status, 400, r.body);
    assert.deepEqual([JSON.parse(r.body).error.code, JSON.parse(r.body).error.field], ['invalid_json', 'body']);
    const unauth = await send(port, 'GET', '/v1/functions', { authorization: 'Bearer nope' }, [], agent);
    assert.equal(unauth.status, 401, unauth.body);
    assert.equal(JSON.parse(unauth.body).error.code, 'unauthorized');
    assert.equal(handOffs(), 0);
  });

  it('a Content-Length body over the limit goes to Node and is answered 413; a chunked one too', async () => {
    const big = JSON.stringify({ name: 'big', command: ['x'], env: { A: 'x'.repeat(bodyBytesMax) } });
    // Each on its own connection: a connection handed to Node stays with Node.
    const r = await send(port, 'POST', '/v1/functions', sized(big), [big], new Agent({ keepAlive: false }));
    assert.equal(r.status, 413, r.body);
    assert.equal(JSON.parse(r.body).error.code, 'body_too_large');
    const chunked = await send(port, 'POST', '/v1/functions', { ...json, ...auth }, [big.slice(0, 100), big.slice(100)], new Agent({ keepAlive: false }));
    assert.equal(chunked.status, 413, chunked.body);
    assert.equal(handOffs(), 2);
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
  let server: ApiServer;
  let port = 0;
  before(async () => {
    server = await startApiServer({ host: '127.0.0.1', port: 0, bodyBytesMax, backend: racing(), tenancy: memoryTenancy(), log: silentLogger });
    port = server.port;
  });
  after(() => server.close());

  it('answers 404 naming the function, never a 500', async () => {
    const created = await send(port, 'POST', '/v1/functions', json, ['{"name":"gone","command":["x"]}']);
    assert.equal(created.status, 404, created.body);
    assert.equal(JSON.parse(created.body).error.field, 'name');
    assert.equal((await send(port, 'POST', '/v1/functions', json, ['{"name":"kept","command":["x"]}'])).status, 201);
    const patched = await send(port, 'PATCH', '/v1/functions/kept', json, ['{"concurrency":2}']);
    assert.equal(patched.status, 404, patched.body);
  });
});

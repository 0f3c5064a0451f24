/**
 * Goal: issue #10 part 1 and 4 at the management API, from outside: a real control plane (and
 * for the invocation cases a DP and an emulated worker) on free loopback ports.
 * - without a token every management route gets 401 with `WWW-Authenticate: Bearer`;
 * - a read token lists but cannot deploy (403); a deploy token of team-a creates into team-a and
 *   cannot see or touch team-b's function (404, empty list); an admin sees both;
 * - a revoked token gets 401 from the moment DELETE /v1/tokens/{id} answered; the bootstrap
 *   token cannot be revoked; tokens and quotas survive a CP restart (stored, hashed);
 * - quotas: the function past quota.functions gets 429, a function that can never fit
 *   quota.cpuMillis gets 403, each naming the quota;
 * - only an admin names host paths (workingDir, oci-archive: images): 403 for a deploy token;
 * - `--auth none` on a non-loopback host exits 2 naming auth;
 * - at the DP: an `auth: token` function needs an invoke token of its namespace (revocation at
 *   once), and a namespace at its sandbox quota gets 429 quota_exceeded for the one more
 *   invocation that would need another sandbox.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, freePort, type Resp } from './harness.js';

const json = { 'content-type': 'application/json' };
const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });
const errorOf = (r: Resp): { code: string; message: string; field?: string } => (r.json as { error: { code: string; message: string; field?: string } }).error;

async function makeToken(c: TestCluster, body: Record<string, unknown>): Promise<{ id: string; token: string }> {
  const r = await c.send('POST', `${c.api}/v1/tokens`, JSON.stringify(body), json);
  assert.equal(r.status, 201, r.text);
  return r.json as { id: string; token: string };
}

describe('management API: tokens, namespaces and quotas', { timeout: 90_000 }, () => {
  const c = new TestCluster();
  before(() => c.startControlPlaneAlone());
  after(() => c.stop());
  const as = (token: string, method: string, path: string, body?: unknown): Promise<Resp> =>
    c.send(method, `${c.api}${path}`, body === undefined ? undefined : JSON.stringify(body), { ...bearer(token), ...(body === undefined ? {} : json) });

  it('answers every management route without a token with 401 and WWW-Authenticate: Bearer', async () => {
    const routes: [string, string][] = [
      ['GET', '/v1/functions'], ['POST', '/v1/functions'], ['GET', '/v1/functions/x'], ['PATCH', '/v1/functions/x'], ['DELETE', '/v1/functions/x'],
      ['GET', '/v1/cluster'], ['GET', '/metrics'], ['GET', '/v1/tokens'], ['POST', '/v1/tokens'], ['DELETE', '/v1/tokens/0123456789ab'],
      ['GET', '/v1/namespaces'], ['GET', '/v1/namespaces/default'], ['PUT', '/v1/namespaces/default'], ['DELETE', '/v1/namespaces/default'],
      ['POST', '/registerService'], ['POST', '/'],
    ];
    for (const [method, path] of routes) {
      for (const headers of [{}, bearer('dgt_0123456789ab_' + 'A'.repeat(43)), { authorization: 'Basic eDp5' }]) {
        const r = await c.send(method, `${c.api}${path}`, method === 'GET' || method === 'DELETE' ? undefined : '{}', { ...json, ...headers }, true);
        assert.equal(r.status, 401, `${method} ${path} ${JSON.stringify(headers)}: ${r.text}`);
        assert.equal(r.headers['www-authenticate'], 'Bearer', `${method} ${path}`);
        assert.equal(errorOf(r).code, 'unauthorized');
      }
    }
    assert.equal((await c.send('GET', `${c.api}/health`, undefined, {}, true)).status, 200);
  });

  it('lets only an admin name host paths: workingDir and oci-archive: images get 403 for a deploy token', async () => {
    const { token } = await makeToken(c, { scope: 'deploy', namespace: 'team-p' });
    const dir = await as(token, 'POST', '/v1/functions', { name: 'peek', command: ['cat', 'x'], workingDir: '/root' });
    assert.equal(dir.status, 403, dir.text);
    assert.equal(errorOf(dir).field, 'workingDir');
    const archive = await as(token, 'POST', '/v1/functions', { name: 'peek', image: 'oci-archive:/etc/shadow' });
    assert.equal(archive.status, 403, archive.text);
    assert.equal(errorOf(archive).field, 'image');
    assert.equal((await as(token, 'POST', '/v1/functions', { name: 'peek', image: 'registry.example:5000/peek:1' })).status, 201);
    const patch = await as(token, 'PATCH', '/v1/functions/peek', { workingDir: '/etc' });
    assert.equal(patch.status, 403, patch.text);
    assert.equal((await c.send('POST', `${c.api}/v1/functions`, JSON.stringify({ name: 'mine', command: ['cat', 'x'], workingDir: '/srv' }), json)).status, 201);
    assert.equal((await as(token, 'DELETE', '/v1/functions/peek')).status, 204);
    assert.equal((await c.send('DELETE', `${c.api}/v1/functions/mine`)).status, 204);
  });

  it('lets a read token list but not deploy (403)', async () => {
    const { token } = await makeToken(c, { scope: 'read' });
    assert.equal((await as(token, 'GET', '/v1/functions')).status, 200);
    const r = await as(token, 'POST', '/v1/functions', { name: 'nope', image: 'emulated' });
    assert.equal(r.status, 403, r.text);
    assert.equal(errorOf(r).code, 'forbidden');
    assert.equal((await as(token, 'GET', '/v1/tokens')).status, 403);
  });

  it('keeps a deploy token of team-a inside team-a; an admin sees both namespaces', async () => {
    const a = (await makeToken(c, { scope: 'deploy', namespace: 'team-a' })).token;
    const b = (await makeToken(c, { scope: 'deploy', namespace: 'team-b' })).token;
    const made = await as(a, 'POST', '/v1/functions', { name: 'shop', image: 'emulated' });
    assert.equal(made.status, 201, made.text);
    assert.deepEqual([(made.json as { function: { name: string; namespace: string } }).function.name, (made.json as { function: { namespace: string } }).function.namespace], ['shop', 'team-a']);
    assert.equal((await as(b, 'POST', '/v1/functions', { name: 'shop', image: 'emulated' })).status, 201, 'the same name in another namespace');
    for (const path of ['/v1/functions/shop.team-a', '/v1/functions/shop?namespace=team-a']) {
      assert.equal((await as(b, 'GET', path)).status, 404, path);
      assert.equal((await as(b, 'PATCH', path, { concurrency: 2 })).status, 404, path);
      assert.equal((await as(b, 'DELETE', path)).status, 404, path);
    }
    const listB = (await as(b, 'GET', '/v1/functions?namespace=team-a')).json as { functions: unknown[] };
    assert.deepEqual(listB.functions, []);
    const own = (await as(b, 'GET', '/v1/functions')).json as { functions: { function: { name: string; namespace: string } }[] };
    assert.deepEqual(own.functions.map((f) => [f.function.name, f.function.namespace]), [['shop', 'team-b']]);
    assert.equal((await as(b, 'POST', '/v1/functions', { name: 'x', image: 'emulated', namespace: 'team-a' })).status, 403);
    const all = (await c.get(`${c.api}/v1/functions`)).json as { functions: { function: { name: string; namespace: string } }[] };
    assert.deepEqual(all.functions.map((f) => `${f.function.name}.${f.function.namespace}`).sort(), ['shop.team-a', 'shop.team-b']);
    assert.equal((await c.get(`${c.api}/v1/functions/shop.team-a`)).status, 200);
    assert.equal((await as(a, 'PATCH', '/v1/functions/shop', { concurrency: 3, namespace: 'team-a' })).status, 200);
    assert.equal((await as(a, 'PATCH', '/v1/functions/shop', { namespace: 'team-b' })).status, 400);
    assert.equal((await as(a, 'DELETE', '/v1/functions/shop')).status, 204);
    const form = await c.send('POST', `${c.api}/registerService`, 'name=formfn&image=emulated&port_forwarding=80&port_forwarding=tcp&namespace=team-f',
      { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(form.status, 200, form.text);
    assert.equal((await c.get(`${c.api}/v1/functions/formfn.team-f`)).status, 200, 'the form registration takes a namespace too');
  });

  it('refuses a revoked token from the moment DELETE answered; the bootstrap token stays', async () => {
    const { id, token } = await makeToken(c, { scope: 'deploy', namespace: 'team-c', description: 'ci' });
    assert.equal((await as(token, 'GET', '/v1/functions')).status, 200);
    const listed = (await c.get(`${c.api}/v1/tokens`)).json as { tokens: { id: string; description: string }[] };
    assert.ok(listed.tokens.some((t) => t.id === id && t.description === 'ci'));
    assert.ok(listed.tokens.some((t) => t.id === 'bootstrap'));
    assert.ok(!JSON.stringify(listed).includes(token.slice(20)), 'a list never shows a secret');
    assert.equal((await c.send('DELETE', `${c.api}/v1/tokens/${id}`)).status, 204);
    const r = await as(token, 'GET', '/v1/functions');
    assert.equal(r.status, 401);
    assert.equal((await c.send('DELETE', `${c.api}/v1/tokens/bootstrap`)).status, 409);
    assert.equal((await c.send('DELETE', `${c.api}/v1/tokens/${id}`)).status, 404);
  });

  it('refuses the function past quota.functions (429) and one that never fits quota.cpuMillis (403)', async () => {
    const put = await c.send('PUT', `${c.api}/v1/namespaces/team-q`, JSON.stringify({ quotas: { functions: 2, cpuMillis: 400 } }), json);
    assert.equal(put.status, 200, put.text);
    const create = (name: string, extra: Record<string, unknown> = {}): Promise<Resp> =>
      c.send('POST', `${c.api}/v1/functions`, JSON.stringify({ name, image: 'emulated', namespace: 'team-q', resources: { cpuMillis: 100 }, ...extra }), json);
    const first = await Promise.all([create('q1'), create('q2'), create('q3')]);
    assert.deepEqual(first.map((r) => r.status).sort(), [201, 201, 429], 'concurrent creates must not overshoot');
    const refused = first.find((r) => r.status === 429)!;
    assert.equal(errorOf(refused).code, 'quota_exceeded');
    assert.equal(errorOf(refused).field, 'quota.functions');
    assert.match(errorOf(refused).message, /namespace team-q has 2 functions, its quota \(quota\.functions\) is 2/);
    const big = await c.send('POST', `${c.api}/v1/functions`, JSON.stringify({ name: 'big', image: 'emulated', namespace: 'team-r', resources: { cpuMillis: 500 } }), json);
    assert.equal(big.status, 201, 'team-r has the default quotas');
    await c.send('PUT', `${c.api}/v1/namespaces/team-r`, JSON.stringify({ quotas: { cpuMillis: 400 } }), json);
    const tooBig = await c.send('POST', `${c.api}/v1/functions`, JSON.stringify({ name: 'bigger', image: 'emulated', namespace: 'team-r', resources: { cpuMillis: 500 } }), json);
    assert.equal(tooBig.status, 403, tooBig.text);
    assert.equal(errorOf(tooBig).field, 'quota.cpuMillis');
    assert.match(errorOf(tooBig).message, /quota\.cpuMillis\) is 400/);
    const patch = await c.send('PATCH', `${c.api}/v1/functions/big?namespace=team-r`, JSON.stringify({ concurrency: 2 }), json);
    assert.equal(patch.status, 403, 'a patch is checked against the quota too');
    const ns = (await c.get(`${c.api}/v1/namespaces/team-q`)).json as { quotas: { functions: number }; usage: { functions: number } };
    assert.deepEqual([ns.quotas.functions, ns.usage.functions], [2, 2]);
  });

  it('keeps tokens and quotas across a control-plane restart', async () => {
    const { token } = await makeToken(c, { scope: 'read', namespace: 'team-q' });
    await c.restartControlPlane();
    assert.equal((await as(token, 'GET', '/v1/functions')).status, 200);
    const ns = (await as(token, 'GET', '/v1/namespaces/team-q')).json as { quotas: { functions: number } };
    assert.equal(ns.quotas.functions, 2);
    assert.equal((await as(token, 'GET', '/v1/namespaces/team-r')).status, 403);
    const stored = readFileSync(join(c.stateDir, 'control-plane.db')).toString('latin1');
    assert.ok(!stored.includes(token), 'the store holds hashes only');
  });
});

describe('auth none', { timeout: 30_000 }, () => {
  it('refuses to listen on a non-loopback host: exit 2 naming auth', async () => {
    const c = new TestCluster();
    try {
      const p = c.spawn('control-plane', ['control-plane', '--auth', 'none', '--host', '0.0.0.0', '--state-dir', c.stateDir,
        '--api-port', String(await freePort()), '--rpc-port', String(await freePort())]);
      const code = await new Promise<number | null>((r) => p.proc.once('exit', (n) => r(n)));
      assert.equal(code, 2, p.logs.join(''));
      assert.match(p.logs.join(''), /auth none.*host is 0\.0\.0\.0/);
    } finally {
      await c.stop();
    }
  });

  it('on loopback serves every caller as admin', async () => {
    const c = new TestCluster({ cpArgs: ['--auth', 'none'] });
    try {
      await c.startControlPlaneAlone();
      const r = await c.send('POST', `${c.api}/v1/functions`, JSON.stringify({ name: 'open', image: 'emulated' }), json, true);
      assert.equal(r.status, 201, r.text);
    } finally {
      await c.stop();
    }
  });
});

describe('functions with auth: token at the data plane', { timeout: 90_000 }, () => {
  const c = new TestCluster({ runtime: 'emulated' });
  before(() => c.start());
  after(() => c.stop());

  it('refuses an invocation without a token, accepts an invoke token of its namespace, refuses it once revoked', async () => {
    const made = await c.deploy({ name: 'guarded', image: 'emulated', auth: 'token', namespace: 'team-a' });
    assert.equal(made.status, 201, made.text);
    const r0 = await c.invoke('guarded.team-a');
    assert.equal(r0.status, 401, r0.text);
    const other = await makeToken(c, { scope: 'invoke', namespace: 'team-b' });
    assert.notEqual((await c.invoke('guarded.team-a', { headers: bearer(other.token) })).status, 200);
    const { id, token } = await makeToken(c, { scope: 'invoke', namespace: 'team-a' });
    const ok = await c.invoke('guarded.team-a', { headers: bearer(token) });
    assert.equal(ok.status, 200, ok.text);
    const asAdmin = await c.invoke('guarded.team-a', { headers: bearer(c.adminToken()) });
    assert.equal(asAdmin.status, 200, `the bootstrap admin token invokes too: ${asAdmin.text}`);
    assert.equal((await c.send('DELETE', `${c.api}/v1/tokens/${id}`)).status, 204);
    assert.equal((await c.invoke('guarded.team-a', { headers: bearer(token) })).status, 401);
  });

  it('never runs more sandboxes than quota.sandboxes: the invocation that needs one more gets 429 naming it', async () => {
    const q = await c.send('PUT', `${c.api}/v1/namespaces/team-q`, JSON.stringify({ quotas: { sandboxes: 1 } }), json);
    assert.equal(q.status, 200, q.text);
    const made = await c.deploy({ name: 'busy', image: 'emulated', namespace: 'team-q', concurrency: 1, scaling: { min: 0, max: 5 } });
    assert.equal(made.status, 201, made.text);
    const slow = { headers: { 'x-emulated-duration-ms': '10000' } };
    const first = c.invoke('busy.team-q', slow);
    await new Promise((r) => setTimeout(r, 500)); // the first holds the one sandbox the quota allows
    const second = await c.invoke('busy.team-q', slow);
    assert.equal(second.status, 429, `${second.text}\n${c.dumpLogs().split('\n').filter((l) => /quota|busy|unsched|scale/.test(l)).slice(-40).join('\n')}`);
    assert.equal(errorOf(second).code, 'quota_exceeded');
    assert.match(errorOf(second).message, /sandboxes.*team-q/);
    assert.equal((await first).status, 200);
    const fn = await c.get(`${c.api}/v1/functions/busy?namespace=team-q`);
    const status = (fn.json as { status: { ready: number; creating: number } }).status;
    assert.ok(status.ready + status.creating <= 1, fn.text);
  });
});

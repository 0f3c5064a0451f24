/**
 * Goal: the tenancy state of the management API, without sockets: who a bearer header is, that
 * a revoked token is refused at once, that the bootstrap token is listed but never revocable,
 * that DPs get only tokens that may invoke, and the quota check for functions that never fit.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InvokeTokenMsg } from '../../api/cluster.js';
import { scalingDefaults } from '../../config/defaults.js';
import type { FunctionSpec } from '../../api/types.js';
import { newToken } from '../../shared/secrets.js';
import { Tenancy } from './api-auth.js';
import { checkFunctionQuota } from './api-quotas.js';
import { memoryTenancy, unboundedQuotas } from './api-testkit.js';

function spec(cpuMillis: number, min: number): FunctionSpec {
  return { name: 'f', image: 'emulated', command: [], workingDir: '', port: 8080, env: {}, egress: false, auth: 'none',
    resources: { cpuMillis, memoryMiB: 128 }, concurrency: 1, timeoutMs: 1000, scaling: { ...scalingDefaults, min } };
}

describe('Tenancy', () => {
  it('knows the bootstrap token and the tokens it made; refuses others and malformed headers', async () => {
    const admin = newToken().token;
    const t = memoryTenancy('token', admin);
    assert.deepEqual(t.authenticate(`Bearer ${admin}`), { tokenId: 'bootstrap', scope: 'admin', namespace: '' });
    const { record, token } = await t.createToken('deploy', 'team-a', '');
    assert.deepEqual(t.authenticate(`Bearer ${token}`), { tokenId: record.id, scope: 'deploy', namespace: 'team-a' });
    // Same id, other secret: refused.
    assert.equal(t.authenticate(`Bearer ${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`), null);
    for (const h of [undefined, '', 'Bearer', `Basic ${admin}`, `Bearer ${newToken().token}`, ['Bearer x', 'Bearer y']]) assert.equal(t.authenticate(h), null, String(h));
  });

  it('refuses a revoked token as soon as revokeToken resolves; the bootstrap token is not revocable', async () => {
    const t = memoryTenancy('token', newToken().token);
    const { record, token } = await t.createToken('invoke', 'default', 'x');
    assert.equal(await t.revokeToken(record.id), 'revoked');
    assert.equal(t.authenticate(`Bearer ${token}`), null);
    assert.equal(await t.revokeToken(record.id), 'not_found');
    assert.equal(await t.revokeToken('bootstrap'), 'bootstrap');
    assert.deepEqual(t.listTokens().map((r) => r.id), ['bootstrap']);
  });

  it('sends the DPs every token that may invoke (not read tokens), after each change', async () => {
    const pushed: InvokeTokenMsg[][] = [];
    const boot = newToken();
    const t = new Tenancy('token', boot.token, unboundedQuotas, {
      store: { putToken: async () => undefined, deleteToken: async () => undefined, putNamespace: async () => undefined, deleteNamespace: async () => undefined },
      setInvokeTokens: async (tokens) => void pushed.push(tokens),
      loadInvokeTokens: (tokens) => void pushed.push(tokens),
      setNamespaceQuotas: () => undefined,
      namespaceUsage: () => unboundedQuotas,
      wallMs: () => 0,
    });
    t.load([], []);
    const reader = await t.createToken('read', 'a', '');
    const invoker = await t.createToken('invoke', 'a', '');
    // The bootstrap token goes under its own id (DPs look a bearer up by the id in its text).
    assert.deepEqual(pushed.map((p) => p.map((x) => x.id)), [[boot.id], [boot.id], [boot.id, invoker.record.id]]);
    assert.ok(!pushed.at(-1)!.some((x) => x.id === reader.record.id));
  });

  it('with auth none everyone is the anonymous admin', () => {
    assert.equal(memoryTenancy('none').authenticate(undefined)?.scope, 'admin');
  });
});

describe('checkFunctionQuota', () => {
  it('refuses a function whose one sandbox or scaling.min sandboxes never fit, naming the quota', async () => {
    const t = memoryTenancy('none');
    await t.setQuotas('team-a', { functions: 0, sandboxes: 2, cpuMillis: 400, memoryMiB: 0 });
    assert.equal(checkFunctionQuota(t, spec(400, 1), 'team-a'), null);
    assert.equal(checkFunctionQuota(t, spec(500, 0), 'team-a')?.field, 'quota.cpuMillis');
    assert.equal(checkFunctionQuota(t, spec(200, 3), 'team-a')?.field, 'quota.sandboxes');
    const e = checkFunctionQuota(t, spec(300, 2), 'team-a');
    assert.equal(e?.status, 403);
    assert.match(e!.message, /scaling\.min 2 sandboxes need 600 cpuMillis, its quota \(quota\.cpuMillis\) is 400/);
    assert.equal(checkFunctionQuota(t, spec(5000, 9), 'team-b'), null, 'no bound in a namespace with the defaults');
  });
});

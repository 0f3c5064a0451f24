import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateTokenCreate, validateQuotasPut } from './tokens.js';
import { takeNamespace } from './validate.js';

const none = { functions: 0, sandboxes: 0, cpuMillis: 0, memoryMiB: 0 };

describe('validateTokenCreate', () => {
  it('defaults the namespace of scoped tokens to default and leaves admin tokens without one', () => {
    assert.deepEqual(validateTokenCreate({ scope: 'deploy' }), { ok: true, value: { scope: 'deploy', namespace: 'default', description: '' } });
    assert.deepEqual(validateTokenCreate({ scope: 'admin', description: 'ops' }), { ok: true, value: { scope: 'admin', namespace: '', description: 'ops' } });
  });
  it('refuses unknown fields, bad scopes, namespaces on admin tokens, bad namespaces and long descriptions, naming the field', () => {
    const field = (body: unknown): string | undefined => {
      const v = validateTokenCreate(body);
      return v.ok ? undefined : v.error.field;
    };
    assert.equal(field({ scope: 'read', extra: 1 }), 'extra');
    assert.equal(field({}), 'scope');
    assert.equal(field({ scope: 'root' }), 'scope');
    assert.equal(field({ scope: 'admin', namespace: 'a' }), 'namespace');
    assert.equal(field({ scope: 'read', namespace: 'A.b' }), 'namespace');
    assert.equal(field({ scope: 'read', description: 'x'.repeat(201) }), 'description');
    assert.equal(field([]), '');
  });
});

describe('validateQuotasPut', () => {
  it('merges the given quotas onto the current ones', () => {
    assert.deepEqual(validateQuotasPut({ quotas: { cpuMillis: 400 } }, { ...none, functions: 3 }), { ok: true, value: { ...none, functions: 3, cpuMillis: 400 } });
  });
  it('refuses unknown quotas and non-integers', () => {
    const r1 = validateQuotasPut({ quotas: { cpu: 1 } }, none);
    assert.equal(r1.ok ? '' : r1.error.field, 'quotas.cpu');
    const r2 = validateQuotasPut({ quotas: { sandboxes: -1 } }, none);
    assert.equal(r2.ok ? '' : r2.error.field, 'quotas.sandboxes');
    const r3 = validateQuotasPut({}, none);
    assert.equal(r3.ok ? '' : r3.error.field, 'quotas');
  });
});

describe('takeNamespace', () => {
  it('takes a valid namespace out of the body and refuses an invalid one', () => {
    assert.deepEqual(takeNamespace({ name: 'f', namespace: 'team-a' }), { ok: true, value: { rest: { name: 'f' }, namespace: 'team-a' } });
    assert.deepEqual(takeNamespace({ name: 'f' }), { ok: true, value: { rest: { name: 'f' }, namespace: undefined } });
    const bad = takeNamespace({ name: 'f', namespace: 'a.b' });
    assert.equal(bad.ok ? '' : bad.error.field, 'namespace');
  });
});

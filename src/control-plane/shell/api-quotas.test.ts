/**
 * Goal: the functions quota of a create is checked against the core's incremental count of the
 * namespace, plus the creates still in flight, never by listing every function: a registration
 * burst of N functions must not cost O(N) per registration (issue 12 part 5: 20,000
 * registrations ran at 137/s because each one scanned the whole registry).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { scalingDefaults } from '../../config/defaults.js';
import type { FunctionSpec, NamespaceQuotas } from '../../api/types.js';
import { Tenancy } from './api-auth.js';
import type { ApiBackend } from './api-context.js';
import { createWithinQuota } from './api-quotas.js';
import { HttpError } from './http-util.js';

const none: NamespaceQuotas = { functions: 0, sandboxes: 0, cpuMillis: 0, memoryMiB: 0 };

function spec(key: string): FunctionSpec {
  return { name: key, image: 'emulated', command: [], workingDir: '', port: 8080, env: {}, egress: false, auth: 'none',
    resources: { cpuMillis: 100, memoryMiB: 128 }, concurrency: 1, timeoutMs: 1000, scaling: { ...scalingDefaults } };
}

/** A registry whose creates resolve when the test says so; listing it is a test failure. */
function fakeCp(functionsMax: number) {
  const live = new Set<string>();
  const held: Array<() => void> = [];
  const tenancy = new Tenancy('none', null, { ...none, functions: functionsMax }, {
    store: { putToken: async () => undefined, deleteToken: async () => undefined, putNamespace: async () => undefined, deleteNamespace: async () => undefined },
    setInvokeTokens: async () => undefined,
    loadInvokeTokens: () => undefined,
    setNamespaceQuotas: () => undefined,
    namespaceUsage: () => ({ ...none, functions: live.size }),
    wallMs: () => 0,
  });
  const backend = {
    functionKeys: () => assert.fail('the quota check listed every function'),
    getFunction: (k: string) => (live.has(k) ? { function: spec(k), status: {} } : null),
    createFunction: (s: FunctionSpec) => new Promise<'created' | 'exists'>((resolve) => {
      if (live.has(s.name)) return resolve('exists');
      // The core applies the create (counted in usage) before the caller's await resumes.
      held.push(() => { live.add(s.name); resolve('created'); });
    }),
  } as unknown as ApiBackend;
  const release = async () => { for (const r of held.splice(0)) r(); await new Promise((r) => setImmediate(r)); };
  return { tenancy, backend, release, live };
}

function isQuota429(err: unknown): boolean {
  return err instanceof HttpError && err.status === 429 && err.field === 'quota.functions';
}

describe('createWithinQuota', () => {
  it('counts the functions of the namespace from usage plus the creates in flight, without listing the registry', async () => {
    const cp = fakeCp(3);
    const a = createWithinQuota(cp.tenancy, cp.backend, spec('a'), 'default');
    const b = createWithinQuota(cp.tenancy, cp.backend, spec('b'), 'default');
    await cp.release();
    assert.deepEqual(await Promise.all([a, b]), ['created', 'created']);
    const c = createWithinQuota(cp.tenancy, cp.backend, spec('c'), 'default');
    // Two live and one in flight: the fourth is past the quota.
    await assert.rejects(createWithinQuota(cp.tenancy, cp.backend, spec('d'), 'default'), isQuota429);
    await cp.release();
    assert.equal(await c, 'created');
    // An existing name is not refused for the quota: it is answered "exists".
    assert.equal(await createWithinQuota(cp.tenancy, cp.backend, spec('a'), 'default'), 'exists');
  });

  it('does not count a create twice once the core applied it but its caller has not resumed yet', async () => {
    const cp = fakeCp(2);
    const a = createWithinQuota(cp.tenancy, cp.backend, spec('a'), 'default');
    // Applied (usage counts it) while its create is still in flight: one function, not two.
    cp.live.add('a');
    const b = createWithinQuota(cp.tenancy, cp.backend, spec('b'), 'default');
    await cp.release();
    assert.deepEqual(await Promise.all([a, b]), ['created', 'created']);
  });
});

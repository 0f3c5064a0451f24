/**
 * Goal: function keys round-trip between (name, namespace) and the one string every component
 * uses, the explicit default namespace routes like the bare name, and each scope may do exactly
 * what DESIGN §11 says, in its own namespace only.
 * Method: properties over generated DNS labels; a table of scope x action x namespace.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  authorize, canonicalFunctionKey, defaultNamespace, functionKey, isNamespaceName, namespaceOf, splitFunctionKey,
  type Action, type Principal,
} from './tenancy.js';
import { tokenScopes, type TokenScope } from './types.js';

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?$/);

describe('function keys', () => {
  test('split(key(name, ns)) gives back name and ns; the default namespace keeps the bare name', () => {
    fc.assert(fc.property(label, label, (name, ns) => {
      const key = functionKey(name, ns);
      assert.deepEqual(splitFunctionKey(key), { name, namespace: ns });
      assert.equal(namespaceOf(key), ns);
      if (ns === defaultNamespace) assert.equal(key, name);
    }));
  });

  test('"<name>.default" routes like "<name>"; other keys are unchanged', () => {
    assert.equal(canonicalFunctionKey('hello.default'), 'hello');
    assert.equal(canonicalFunctionKey('hello'), 'hello');
    assert.equal(canonicalFunctionKey('hello.team-a'), 'hello.team-a');
    assert.equal(canonicalFunctionKey('a.b.default'), 'a.b.default');
    assert.equal(canonicalFunctionKey('.default'), '.default');
  });

  test('namespace names are DNS labels', () => {
    for (const ok of ['default', 'team-a', 'a', '0x']) assert.equal(isNamespaceName(ok), true, ok);
    for (const bad of ['', 'Team', 'a.b', '-a', 'a-', 'a_b', 'x'.repeat(64)]) assert.equal(isNamespaceName(bad), false, bad);
  });
});

describe('authorize', () => {
  const actions: Action[] = ['function.read', 'function.write', 'function.invoke', 'cluster.read', 'admin'];
  const may: Record<TokenScope, Action[]> = {
    admin: actions,
    deploy: ['function.read', 'function.write', 'function.invoke', 'cluster.read'],
    invoke: ['function.invoke'],
    read: ['function.read', 'cluster.read'],
  };
  const p = (scope: TokenScope): Principal => ({ tokenId: 't', scope, namespace: scope === 'admin' ? '' : 'team-a' });

  test('each scope may do exactly its actions in its own namespace', () => {
    for (const scope of tokenScopes) {
      for (const action of actions) {
        const d = authorize(p(scope), action, scope === 'admin' ? 'anything' : 'team-a');
        assert.deepEqual(d, may[scope].includes(action) ? { ok: true } : { ok: false, reason: 'scope' }, `${scope} ${action}`);
      }
    }
  });

  test('outside its namespace a non-admin token is refused for the namespace; admin is not', () => {
    for (const scope of ['deploy', 'invoke', 'read'] as const) {
      for (const action of may[scope]) {
        if (action === 'cluster.read') continue;
        assert.deepEqual(authorize(p(scope), action, 'team-b'), { ok: false, reason: 'namespace' }, `${scope} ${action}`);
      }
    }
    assert.deepEqual(authorize(p('admin'), 'function.write', 'team-b'), { ok: true });
  });
});

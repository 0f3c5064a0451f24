/**
 * Goal: pin who may invoke an `auth: token` function on a DP: the pure decision (unknown,
 * mismatched, scope, namespace, admin) and the token table the core keeps from snapshots and
 * deltas (a revoked token is refused as soon as the delta is applied).
 * Method: call the pure function with hand-built token tables; drive the core with routing
 * messages in virtual time.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FunctionSpecMsg, InvokeTokenMsg, RoutingUpdateMsg } from '../../api/cluster.js';
import { silentLogger } from '../../shared/logger.js';
import { seededRng } from '../../shared/rng.js';
import { DataPlaneCore } from './data-plane.js';
import { digestsEqual, invokeVerdict } from './invoke-auth.js';

const digest = (c: string) => c.repeat(64);
const tok = (id: string, scope: string, namespace: string, d = digest('a')): InvokeTokenMsg => ({ id, sha256Hex: d, scope, namespace });
const table = (...ts: InvokeTokenMsg[]) => new Map(ts.map((t) => [t.id, t]));

describe('invokeVerdict', () => {
  const tokens = table(
    tok('inv', 'invoke', 'team-a'), tok('dep', 'deploy', 'team-a'), tok('rd', 'read', 'team-a'),
    tok('adm', 'admin', '', digest('b')), tok('dflt', 'invoke', 'default', digest('c')), tok('odd', 'root', 'team-a'),
  );
  const asks = (id: string, d: string, key = 'fn.team-a') => invokeVerdict(tokens, key, { id, sha256Hex: d });

  it('refuses no token, an unknown id and a wrong digest as unauthorized', () => {
    assert.equal(invokeVerdict(tokens, 'fn.team-a', null), 'unauthorized');
    assert.equal(asks('nope', digest('a')), 'unauthorized');
    assert.equal(asks('inv', digest('f')), 'unauthorized');
  });
  it('allows invoke and deploy tokens of the namespace, and admin anywhere', () => {
    assert.equal(asks('inv', digest('a')), 'allowed');
    assert.equal(asks('dep', digest('a')), 'allowed');
    assert.equal(asks('adm', digest('b')), 'allowed');
    assert.equal(asks('adm', digest('b'), 'fn'), 'allowed');
    assert.equal(asks('dflt', digest('c'), 'fn'), 'allowed');
  });
  it('forbids another namespace, the read scope and an unknown scope', () => {
    assert.equal(asks('inv', digest('a'), 'fn.team-b'), 'forbidden');
    assert.equal(asks('inv', digest('a'), 'fn'), 'forbidden');
    assert.equal(asks('dflt', digest('c')), 'forbidden');
    assert.equal(asks('rd', digest('a')), 'forbidden');
    assert.equal(asks('odd', digest('a')), 'forbidden');
  });
  it('compares digests exactly', () => {
    assert.equal(digestsEqual('abcd', 'abcd'), true);
    assert.equal(digestsEqual('abcd', 'abce'), false);
    assert.equal(digestsEqual('abcd', 'abc'), false);
  });
});

describe('DataPlaneCore token table', () => {
  const spec: FunctionSpecMsg = {
    name: 'fn.team-a', uid: 'u1', generation: 1, image: '', command: ['x'], port: 0, env: {}, egress: false, auth: 'token', concurrency: 1, timeoutMs: 1000, workingDir: '',
  };
  const empty = { upsertFunctions: [], deleteFunctions: [], addEndpoints: [], removeEndpoints: [], drainEndpoints: [], failures: [], upsertTokens: [], revokeTokens: [] };
  const delta = (version: number, d: object): RoutingUpdateMsg => ({ case: 'delta', value: { ...empty, version, ...d } });

  it('takes the set from a snapshot, upserts and revokes from deltas, and replaces it on the next snapshot', () => {
    const c = new DataPlaneCore({ queueDepthMax: 3, queueWaitMsMax: 100, loadBalancing: 'least-loaded' }, seededRng(1), silentLogger);
    c.applyRouting({ case: 'snapshot', value: { version: 1, functions: [spec], endpoints: [], drainEndpoints: [], tokens: [tok('t1', 'invoke', 'team-a')] } }, 0);
    const fn = c.functions.get('fn.team-a')!;
    const t1 = { id: 't1', sha256Hex: digest('a') };
    const t2 = { id: 't2', sha256Hex: digest('a') };
    assert.equal(c.invokeVerdict(fn, t1), 'allowed');
    assert.equal(c.applyRouting(delta(2, { upsertTokens: [tok('t2', 'invoke', 'team-a')] }), 1).ok, true);
    assert.equal(c.invokeVerdict(fn, t2), 'allowed');
    c.applyRouting(delta(3, { revokeTokens: ['t1'] }), 2);
    assert.equal(c.invokeVerdict(fn, t1), 'unauthorized', 'refused right after the delta');
    assert.equal(c.invokeVerdict(fn, t2), 'allowed');
    c.applyRouting({ case: 'snapshot', value: { version: 4, functions: [spec], endpoints: [], drainEndpoints: [], tokens: [] } }, 3);
    assert.equal(c.invokeVerdict(c.functions.get('fn.team-a')!, t2), 'unauthorized');
  });
});

/**
 * Goal: the tenancy seams of CpRuntime reach the core: `setInvokeTokens` resolves only once
 * every connected DP acknowledged the routing version carrying the change (so a revoked token
 * is refused everywhere when the API answers), at once with no DP; `setNamespaceQuotas` and
 * `namespaceUsage` go through the core. A new leader's takeover (`Tenancy.load`) puts the stored
 * tokens into the routing table without waiting on DPs: the DPs it restored from the store are
 * not connected to it yet and cannot ack, and each gets the tokens in its snapshot on connect
 * (waiting added the 2 s ack limit to every failover).
 * Method: a real core behind the runtime, a fake RPC server recording broadcasts, a fake clock;
 * acks are fed as the RPC server would. No durations are asserted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../shared/logger.js';
import { seededRng } from '../../shared/rng.js';
import { ControlPlaneCore } from '../core/control-plane.js';
import { config } from '../core/testkit.js';
import type { Store } from '../store/store.js';
import type { CpMetrics } from './metrics.js';
import type { RpcServer } from './rpc-server.js';
import { CpRuntime } from './runtime.js';
import { Tenancy } from './api-auth.js';

function rig() {
  const core = new ControlPlaneCore(config, seededRng(3), silentLogger);
  const clock = { nowMs: () => 0, wallMs: () => 0 };
  const metrics = { onReady: () => {}, onFailure: () => {} } as unknown as CpMetrics;
  const rt = new CpRuntime(core, {} as Store, clock, metrics, silentLogger);
  let broadcasts = 0;
  rt.rpc = { sendWorker: () => {}, sendDataPlane: () => {}, broadcastDataPlanes: () => { broadcasts += 1; } } as unknown as RpcServer;
  return { core, rt, broadcasts: () => broadcasts };
}

const token = { id: 'a1b2c3d4e5f6', sha256Hex: 'ab'.repeat(32), scope: 'invoke', namespace: 'team-a' };

describe('CpRuntime tenancy seams', () => {
  it('setInvokeTokens resolves once the connected DP acked the version holding the change', async () => {
    const { core, rt, broadcasts } = rig();
    rt.handle({ kind: 'dp_connected', hello: { dataPlaneId: 'dp1', proxyAddress: 'p:1', internalAddress: 'i:1' } });
    rt.handle({ kind: 'dp_ack', dataPlaneId: 'dp1', version: core.routing.version });
    let resolved = false;
    const done = rt.setInvokeTokens([token]).then(() => { resolved = true; });
    assert.equal(broadcasts(), 1, 'the delta went out');
    await new Promise((r) => setImmediate(r));
    assert.equal(resolved, false, 'not before the ack');
    rt.handle({ kind: 'dp_ack', dataPlaneId: 'dp1', version: core.routing.version });
    await done;
    assert.equal(resolved, true);
    rt.close();
  });

  it('resolves at once without DPs; quotas and usage go through the core', async () => {
    const { rt } = rig();
    await rt.setInvokeTokens([token]);
    const none = { functions: 0, sandboxes: 0, cpuMillis: 0, memoryMiB: 0 };
    rt.setNamespaceQuotas([{ name: 'team-a', quotas: { ...none, sandboxes: 1 } }], none);
    assert.deepEqual(rt.namespaceUsage('team-a'), none);
  });

  it('a takeover loads the stored tokens without waiting on the DPs restored from the store', async () => {
    const { core, rt } = rig();
    core.loadPeers([], [{ id: 'dp1', proxyAddress: 'p:1', internalAddress: 'i:1' }], 0);
    const none = { functions: 0, sandboxes: 0, cpuMillis: 0, memoryMiB: 0 };
    const tenancy = new Tenancy('token', null, none, {
      store: {} as never,
      setInvokeTokens: (tokens) => rt.setInvokeTokens(tokens),
      loadInvokeTokens: (tokens) => rt.loadInvokeTokens(tokens),
      setNamespaceQuotas: (records, d) => rt.setNamespaceQuotas(records, d),
      namespaceUsage: (ns) => rt.namespaceUsage(ns),
      wallMs: () => 0,
    });
    const record = { id: token.id, sha256Hex: token.sha256Hex, scope: 'invoke' as const, namespace: 'team-a', description: '', createdAtMs: 0 };
    let loaded = false;
    const done = Promise.resolve(tenancy.load([record], [])).then(() => { loaded = true; });
    await new Promise((r) => setImmediate(r));
    assert.equal(loaded, true, 'loaded with dp1 not connected and no ack');
    assert.equal(core.routingAppliedEverywhere(core.routing.version), false, 'dp1 is still expected back');
    assert.deepEqual(core.routing.snapshot([]).tokens.map((t) => t.id), [token.id], 'in the snapshot dp1 gets on connect');
    await done;
    rt.close();
  });
});

/**
 * Goal: a registration is answered only when it is durable and every connected DP applied it,
 * whichever comes last; the creates of one event-loop turn are announced to the DPs in one
 * routing delta, sent before their commit ends; a commit that fails takes the announcement back
 * and rejects nothing else. A core that throws on a turn's operations rejects each of them
 * (a bug is logged, never left hanging) and the next turn works.
 * Method: a real core behind the runtime, a fake store whose writes complete when the test
 * says, a fake RPC server recording broadcasts, acks fed as the RPC server would. No durations
 * are asserted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RoutingUpdateMsg } from '../../api/cluster.js';
import type { FunctionRecord } from '../../api/types.js';
import { silentLogger } from '../../shared/logger.js';
import { seededRng } from '../../shared/rng.js';
import { ControlPlaneCore } from '../core/control-plane.js';
import { config, spec } from '../core/testkit.js';
import type { ApiResult } from '../core/types.js';
import type { Store } from '../store/store.js';
import type { CpMetrics } from './metrics.js';
import type { RpcServer } from './rpc-server.js';
import { CpRuntime } from './runtime.js';

interface Write { name: string; ok: () => void; fail: (err: Error) => void }

function rig() {
  const core = new ControlPlaneCore(config, seededRng(5), silentLogger);
  const clock = { nowMs: () => 0, wallMs: () => 0 };
  const metrics = { onReady: () => {}, onFailure: () => {} } as unknown as CpMetrics;
  const writes: Write[] = [];
  const store = {
    putFunction: (r: FunctionRecord) => new Promise<void>((ok, fail) => writes.push({ name: r.spec.name, ok, fail })),
  } as unknown as Store;
  const rt = new CpRuntime(core, store, clock, metrics, silentLogger);
  // The runtime hands the RPC server the encoded message: its `update` is the core's.
  const broadcasts: RoutingUpdateMsg[] = [];
  rt.rpc = {
    sendWorker: () => {},
    sendDataPlane: () => {},
    broadcastDataPlanes: (m: { update: RoutingUpdateMsg }) => { broadcasts.push(m.update); },
  } as unknown as RpcServer;
  rt.handle({ kind: 'dp_connected', hello: { dataPlaneId: 'dp1', proxyAddress: 'p:1', internalAddress: 'i:1' } });
  rt.handle({ kind: 'dp_ack', dataPlaneId: 'dp1', version: core.routing.version });
  broadcasts.length = 0;
  const ack = () => rt.handle({ kind: 'dp_ack', dataPlaneId: 'dp1', version: core.routing.version });
  return { core, rt, writes, broadcasts, ack };
}

const turn = () => new Promise((r) => setImmediate(r));

function track(p: Promise<ApiResult>) {
  const t = { result: null as ApiResult | null, error: null as Error | null };
  p.then((r) => { t.result = r; }, (e: Error) => { t.error = e; });
  return t;
}

describe('CpRuntime registrations', () => {
  it('the creates of one turn go out in one routing delta before their commit; each answer waits for its commit and the ack', async () => {
    const { core, rt, writes, broadcasts, ack } = rig();
    const calls = Array.from({ length: 8 }, (_, i) => track(rt.submit({ kind: 'api_create', spec: spec(`f${i}`) })));
    await turn();
    assert.equal(writes.length, 8, 'every create is being stored');
    assert.equal(broadcasts.length, 1, 'one announcement for the turn');
    const update = broadcasts[0]!;
    assert.equal(update.case, 'delta');
    assert.deepEqual(update.case === 'delta' ? update.value.upsertFunctions.map((f) => f.name) : [], calls.map((_, i) => `f${i}`));
    assert.equal(core.record('f0'), null, 'not live before its commit');

    // The DP acks before the commit ends: no answer yet.
    ack();
    await turn();
    assert.ok(calls.every((c) => c.result === null));
    for (const w of writes) w.ok();
    await turn();
    await turn();
    assert.deepEqual(calls.map((c) => c.result), Array(8).fill('created'));
    assert.equal(broadcasts.length, 1, 'the commit routes nothing more');
    rt.close();
  });

  it('a commit that ends before the ack waits for the ack', async () => {
    const { rt, writes, ack } = rig();
    const c = track(rt.submit({ kind: 'api_create', spec: spec('g') }));
    await turn();
    writes[0]!.ok();
    await turn();
    await turn();
    assert.equal(c.result, null, 'durable, but the DP has not acked');
    ack();
    await turn();
    assert.equal(c.result, 'created');
    rt.close();
  });

  it('a failed commit answers store_failed and takes the announcement back; the other creates of its turn are created', async () => {
    const { core, rt, writes, broadcasts, ack } = rig();
    const bad = track(rt.submit({ kind: 'api_create', spec: spec('bad') }));
    const good = track(rt.submit({ kind: 'api_create', spec: spec('good') }));
    await turn();
    ack();
    writes.find((w) => w.name === 'bad')!.fail(new Error('disk full'));
    writes.find((w) => w.name === 'good')!.ok();
    await turn();
    await turn();
    assert.equal(bad.result, 'store_failed');
    assert.equal(good.result, 'created');
    const last = broadcasts.at(-1)!;
    assert.deepEqual(last.case === 'delta' ? last.value.deleteFunctions.map((f) => f.name) : [], ['bad']);
    assert.equal(core.record('bad'), null);
    assert.deepEqual(core.routing.snapshot([]).functions.map((f) => f.name), ['good']);
    rt.close();
  });

  it('a core that throws on the operations of a turn rejects each of them; the next turn works', async () => {
    const { core, rt, writes, ack } = rig();
    const handleAll = core.handleAll.bind(core);
    core.handleAll = () => { throw new Error('bug'); };
    const a = track(rt.submit({ kind: 'api_create', spec: spec('a') }));
    const b = track(rt.submit({ kind: 'api_delete', name: 'b' }));
    await turn();
    await turn();
    assert.match(a.error?.message ?? '', /api_create failed/);
    assert.match(b.error?.message ?? '', /api_delete failed/);
    core.handleAll = handleAll;
    const c = track(rt.submit({ kind: 'api_create', spec: spec('c') }));
    await turn();
    ack();
    writes[0]!.ok();
    await turn();
    await turn();
    assert.equal(c.result, 'created');
    rt.close();
  });
});

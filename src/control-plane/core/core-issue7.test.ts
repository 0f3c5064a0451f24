/**
 * Goal: pin the control-plane core fixes of issue 7: demand matched by function uid, delete
 * drains (bounded by the function's timeout), the registry serializes operations per name
 * through the store, unschedulable shows in status and fails queued requests fast, gone peers
 * are forgotten, and deadlines pop in order. Method: the pure core in virtual time; the test
 * plays the store by answering `store_*` effects with `persisted`.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SandboxInfoMsg, WorkerHelloMsg } from '../../api/cluster.js';
import type { FunctionRecord, FunctionSpec } from '../../api/types.js';
import { scalingDefaults } from '../../config/defaults.js';
import { silentLogger } from '../../shared/logger.js';
import { seededRng } from '../../shared/rng.js';
import { ControlPlaneCore } from './control-plane.js';
import { DeadlineHeap } from './deadlines.js';
import type { ApiResult, CpEffect } from './types.js';

const config = {
  placement: 'kubernetes' as const, heartbeatTimeoutMs: 60_000, creationTimeoutMs: 5000, drainTimeoutMs: 30_000,
  creatingPerFunctionMax: 100, retryBackoffMs: 100, failFastAfter: 2, peerForgetAfterMs: 60_000, unschedulableFailAfterMs: 2000,
};

function spec(name: string, over: Partial<FunctionSpec> = {}): FunctionSpec {
  return {
    name, image: '', command: ['node', 's.js'], workingDir: '', port: 8080, env: {},
    resources: { cpuMillis: 500, memoryMiB: 256 }, concurrency: 1, timeoutMs: 1000,
    scaling: { ...scalingDefaults, stableWindowS: 6, panicWindowS: 2, tickS: 1 }, ...over,
  };
}

function record(name: string, uid: string, over: Partial<FunctionSpec> = {}): FunctionRecord {
  return { spec: spec(name, over), uid, generation: 1, createdAtMs: 0, updatedAtMs: 0 };
}

function worker(id: string, sandboxes: SandboxInfoMsg[] = []): WorkerHelloMsg {
  return { workerId: id, address: `${id}:1`, capacity: { cpuMillis: 2000, memoryMib: 4096 }, runtimes: ['process'], sandboxes };
}

function info(id: string, fn: string, uid: string): SandboxInfoMsg {
  return { sandboxId: id, function: fn, functionUid: uid, address: `a-${id}`, resources: { cpuMillis: 500, memoryMib: 256 }, functionGeneration: 1, createdAtMs: 0 };
}

function demand(fn: string, uid: string, inflight: number, queued: number, first = true) {
  return { firstDemand: first, functions: [{ function: fn, functionUid: uid, inflight, queued, concurrencyAvg: inflight + queued, sandboxInflight: {} }] };
}

const creates = (eff: CpEffect[]) =>
  eff.flatMap((e) => (e.kind === 'worker_send' && e.command.case === 'create' ? [{ worker: e.workerId, id: e.command.value.sandboxId }] : []));
const deletes = (eff: CpEffect[]) =>
  eff.flatMap((e) => (e.kind === 'worker_send' && e.command.case === 'delete' ? [e.command.value.sandboxId] : []));
const deltas = (eff: CpEffect[]) => eff.flatMap((e) => (e.kind === 'dp_broadcast' && e.update.case === 'delta' ? [e.update.value] : []));

function core(): ControlPlaneCore {
  const cp = new ControlPlaneCore(config, seededRng(11), silentLogger);
  cp.handle({ kind: 'dp_connected', hello: { dataPlaneId: 'dp1', proxyAddress: 'p:1', internalAddress: 'i:1' } }, 0);
  cp.handle({ kind: 'worker_connected', hello: worker('w1') }, 0);
  return cp;
}

/** A store that answers every write at once and records API answers, as the shell would. */
function drive(cp: ControlPlaneCore, nowMs: number, first: CpEffect[], results: Map<number, ApiResult>): CpEffect[] {
  const all: CpEffect[] = [];
  let queue = first;
  while (queue.length > 0) {
    all.push(...queue);
    const next: CpEffect[] = [];
    for (const e of queue) {
      if (e.kind === 'api_done') results.set(e.requestId, e.result);
      if (e.kind === 'store_function' || e.kind === 'store_delete_function') next.push(...cp.handle({ kind: 'persisted', opId: e.opId }, nowMs));
    }
    queue = next;
  }
  return all;
}

describe('ControlPlaneCore (issue 7)', () => {
  it('ignores demand for an unknown uid (a deleted and re-created function)', () => {
    const cp = core();
    cp.handle({ kind: 'function_upserted', record: record('f', 'uid-new') }, 0);
    const eff = cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'uid-old', 3, 0) }, 10);
    assert.equal(creates(eff).length, 0);
    assert.equal(cp.status('f')!.desired, 0);
    assert.equal(cp.status('f')!.inflight, 0);
  });

  it('deleting a function drains its sandboxes: deleted only after the DP reports them idle', () => {
    const cp = core();
    cp.handle({ kind: 'function_upserted', record: record('f', 'u1', { timeoutMs: 5000 }) }, 0);
    const [a] = creates(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', 1, 0) }, 10));
    cp.handle({ kind: 'sandbox_ready', workerId: 'w1', sandbox: info(a!.id, 'f', 'u1'), creationMs: 1 }, 50);
    const del = cp.handle({ kind: 'function_deleted', name: 'f' }, 100);
    assert.deepEqual(deltas(del).flatMap((d) => d.drainEndpoints), [a!.id]);
    assert.deepEqual(deletes(del), [], 'not deleted while a request may run on it');
    for (let t = 200; t < 5000; t += 100) assert.deepEqual(deletes(cp.tick(t)), [], `deleted early at ${t} ms`);
    assert.deepEqual(deletes(cp.handle({ kind: 'dp_drained', dataPlaneId: 'dp1', sandboxIds: [a!.id] }, 5000)), [a!.id]);
    cp.checkInvariants();
  });

  it('a drain gives up after the function timeout (capped), not at once', () => {
    const cp = core();
    cp.handle({ kind: 'function_upserted', record: record('f', 'u1', { timeoutMs: 3000 }) }, 0);
    const [a] = creates(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', 1, 0) }, 10));
    cp.handle({ kind: 'sandbox_ready', workerId: 'w1', sandbox: info(a!.id, 'f', 'u1'), creationMs: 1 }, 50);
    cp.handle({ kind: 'function_deleted', name: 'f' }, 1000);
    assert.deepEqual(deletes(cp.tick(3900)), []);
    assert.deepEqual(deletes(cp.tick(4000)), [a!.id]);
  });

  it('a draining sandbox of a deleted function never touches its re-created namesake', () => {
    const cp = core();
    cp.handle({ kind: 'function_upserted', record: record('f', 'u1') }, 0);
    const [a] = creates(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', 1, 0) }, 10));
    cp.handle({ kind: 'sandbox_ready', workerId: 'w1', sandbox: info(a!.id, 'f', 'u1'), creationMs: 1 }, 50);
    cp.handle({ kind: 'function_deleted', name: 'f' }, 100);
    cp.handle({ kind: 'function_upserted', record: record('f', 'u2') }, 110);
    cp.handle({ kind: 'dp_drained', dataPlaneId: 'dp1', sandboxIds: [a!.id] }, 120);
    cp.handle({ kind: 'sandbox_deleted', workerId: 'w1', sandboxId: a!.id }, 130);
    cp.checkInvariants();
    assert.equal(cp.status('f')!.draining, 0);
    // And the old function's sandbox reported again (late ready) is not adopted into the new one.
    const eff = cp.handle({ kind: 'sandbox_ready', workerId: 'w1', sandbox: info('late', 'f', 'u1'), creationMs: 1 }, 140);
    assert.deepEqual(deletes(eff), ['late']);
    cp.checkInvariants();
  });

  it('registry: 50 concurrent patches of different fields all apply, in order', () => {
    const cp = core();
    const results = new Map<number, ApiResult>();
    drive(cp, 0, cp.handle({ kind: 'api_create', requestId: 0, spec: spec('f'), uid: 'u1', wallMs: 0 }, 0), results);
    // All 50 arrive before the store answers any: each must patch the result of the previous one.
    const first: CpEffect[] = [];
    for (let i = 1; i <= 50; i += 1) {
      const patch = (cur: FunctionSpec): FunctionSpec => ({ ...cur, env: { ...cur.env, [`K${i}`]: String(i) } });
      first.push(...cp.handle({ kind: 'api_update', requestId: i, name: 'f', patch, wallMs: i }, i));
    }
    assert.equal(first.filter((e) => e.kind === 'store_function').length, 1, 'one write in flight per name');
    drive(cp, 100, first, results);
    assert.equal(Object.keys(cp.record('f')!.spec.env).length, 50);
    assert.equal(cp.record('f')!.generation, 51);
    for (let i = 1; i <= 50; i += 1) assert.equal(results.get(i), 'updated');
  });

  it('registry: 50 parallel creates of one name give one created and 49 exists', () => {
    const cp = core();
    const results = new Map<number, ApiResult>();
    const first: CpEffect[] = [];
    for (let i = 0; i < 50; i += 1) first.push(...cp.handle({ kind: 'api_create', requestId: i, spec: spec('f'), uid: `u${i}`, wallMs: 0 }, 0));
    drive(cp, 0, first, results);
    const values = [...results.values()];
    assert.equal(values.filter((r) => r === 'created').length, 1);
    assert.equal(values.filter((r) => r === 'exists').length, 49);
    assert.equal(cp.record('f')!.uid, 'u0');
  });

  it('registry: a delete racing a patch never brings the function back', () => {
    const cp = core();
    const results = new Map<number, ApiResult>();
    drive(cp, 0, cp.handle({ kind: 'api_create', requestId: 0, spec: spec('f'), uid: 'u1', wallMs: 0 }, 0), results);
    const first = [
      ...cp.handle({ kind: 'api_delete', requestId: 1, name: 'f' }, 1),
      ...cp.handle({ kind: 'api_update', requestId: 2, name: 'f', patch: (c) => ({ ...c, concurrency: 9 }), wallMs: 2 }, 2),
    ];
    drive(cp, 10, first, results);
    assert.equal(results.get(1), 'deleted');
    assert.equal(results.get(2), 'not_found');
    assert.equal(cp.record('f'), null);
  });

  it('registry: a failed store write answers store_failed and changes nothing', () => {
    const cp = core();
    const eff = cp.handle({ kind: 'api_create', requestId: 7, spec: spec('f'), uid: 'u1', wallMs: 0 }, 0);
    const w = eff.find((e) => e.kind === 'store_function');
    assert.ok(w && w.kind === 'store_function');
    const done = cp.handle({ kind: 'persist_failed', opId: w.opId, error: 'disk full' }, 1);
    assert.deepEqual(done.filter((e) => e.kind === 'api_done').map((e) => e.kind === 'api_done' && e.result), ['store_failed']);
    assert.equal(cp.record('f'), null);
  });

  it('unschedulable: the reason shows in status, and after 2 s queued requests are failed with 503', () => {
    const cp = core();
    cp.handle({ kind: 'function_upserted', record: { ...record('img', 'u1'), spec: { ...spec('img'), command: [], image: 'x' } } }, 0);
    cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('img', 'u1', 0, 2) }, 10);
    const st = cp.status('img')!;
    assert.match(st.unschedulableReason ?? '', /runtime image/);
    assert.equal(st.unschedulableSinceMs, 10);
    assert.deepEqual(deltas(cp.tick(1000)).flatMap((d) => d.failures), []);
    const failed = deltas(cp.tick(2100)).flatMap((d) => d.failures);
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.code, 'unschedulable');
    assert.equal(failed[0]!.functionUid, 'u1');
    // New demand while still unschedulable is failed again.
    const again = deltas(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('img', 'u1', 0, 1, false) }, 3000));
    assert.equal(again.flatMap((d) => d.failures).length, 1);
  });

  it('unschedulable only for lack of free capacity: the reason shows, requests keep waiting', () => {
    const cp = core();
    cp.handle({ kind: 'function_upserted', record: record('hog', 'h1', { resources: { cpuMillis: 2000, memoryMiB: 256 } }) }, 0);
    cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('hog', 'h1', 0, 1) }, 0);
    cp.handle({ kind: 'function_upserted', record: record('f', 'u1') }, 0);
    cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', 0, 2) }, 10);
    assert.match(cp.status('f')!.unschedulableReason ?? '', /insufficient cpu/);
    assert.deepEqual(deltas(cp.tick(5000)).flatMap((d) => d.failures), []);
  });

  it('no worker connected (a CP restart) is waiting, not a failure', () => {
    const cp = new ControlPlaneCore(config, seededRng(12), silentLogger);
    cp.handle({ kind: 'dp_connected', hello: { dataPlaneId: 'dp1', proxyAddress: 'p:1', internalAddress: 'i:1' } }, 0);
    cp.handle({ kind: 'function_upserted', record: record('f', 'u1'), reconstructed: true }, 0);
    cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', 0, 3) }, 10);
    assert.match(cp.status('f')!.unschedulableReason ?? '', /no workers/);
    assert.deepEqual(deltas(cp.tick(5000)).flatMap((d) => d.failures), []);
    cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', 0, 3, false) }, 5100);
    assert.deepEqual(deltas(cp.tick(5200)).flatMap((d) => d.failures), []);
  });

  it('forgets a worker and a data plane gone longer than the limit, in memory and in the store', () => {
    const cp = core();
    cp.handle({ kind: 'worker_disconnected', workerId: 'w1' }, 1000);
    cp.handle({ kind: 'dp_disconnected', dataPlaneId: 'dp1' }, 1000);
    assert.deepEqual(cp.tick(60_000).filter((e) => e.kind.startsWith('forget')), []);
    const eff = cp.tick(61_000).filter((e) => e.kind.startsWith('forget'));
    assert.deepEqual(eff.map((e) => e.kind).sort(), ['forget_data_plane', 'forget_worker']);
    assert.equal(cp.workers.size, 0);
    assert.equal(cp.dataPlanes.size, 0);
  });

  it('keeps a peer that came back before the limit', () => {
    const cp = core();
    cp.handle({ kind: 'worker_disconnected', workerId: 'w1' }, 1000);
    cp.handle({ kind: 'worker_connected', hello: worker('w1') }, 2000);
    assert.deepEqual(cp.tick(62_000).filter((e) => e.kind.startsWith('forget')), []);
    assert.equal(cp.workers.size, 1);
  });
});

describe('DeadlineHeap', () => {
  it('pops due deadlines in time order and nothing early', () => {
    const h = new DeadlineHeap();
    for (const due of [50, 10, 40, 30, 20, 60]) h.push({ dueMs: due, kind: 'creation', key: String(due) });
    assert.equal(h.popDue(5), null);
    const out: number[] = [];
    for (let d = h.popDue(45); d; d = h.popDue(45)) out.push(d.dueMs);
    assert.deepEqual(out, [10, 20, 30, 40]);
    assert.equal(h.size, 2);
  });
});

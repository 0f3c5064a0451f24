/**
 * Goal: pin the control-plane core's decisions: immediate scale from zero, placement commands,
 * endpoint pushes, worker loss with replacement, crash-failure back-off with fail-fast, drain
 * before delete, adoption after a CP restart, and exact allocation accounting throughout.
 * Method: feed events to the pure core at chosen virtual times and inspect its effects.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FunctionRecord } from '../../api/types.js';
import { scalingDefaults } from '../../config/defaults.js';
import type { SandboxInfoMsg, WorkerHelloMsg } from '../../api/cluster.js';
import { memoryLogger, silentLogger, type RecordedLog } from '../../shared/logger.js';
import { seededRng } from '../../shared/rng.js';
import { ControlPlaneCore } from './control-plane.js';
import type { CpEffect } from './types.js';

const config = {
  placement: 'kubernetes' as const,
  heartbeatTimeoutMs: 60_000,
  creationTimeoutMs: 5000,
  drainTimeoutMs: 2000,
  creatingPerFunctionMax: 100,
  retryBackoffMs: 100,
  failFastAfter: 2,
};

function record(name: string, scaling: Partial<typeof scalingDefaults> = {}): FunctionRecord {
  return {
    spec: {
      name, image: '', command: ['node', 's.js'], workingDir: '', port: 8080, env: {}, egress: false, auth: 'none',
      resources: { cpuMillis: 500, memoryMiB: 256 }, concurrency: 1, timeoutMs: 1000,
      scaling: { ...scalingDefaults, stableWindowS: 6, panicWindowS: 2, tickS: 1, ...scaling },
    },
    uid: `${name}-1`, generation: 1, createdAtMs: 0, updatedAtMs: 0,
  };
}

function worker(id: string, sandboxes: SandboxInfoMsg[] = []): WorkerHelloMsg {
  return { workerId: id, address: `${id}:1`, capacity: { cpuMillis: 2000, memoryMib: 4096 }, runtimes: ['process'], sandboxes };
}

function info(id: string, fn: string, generation = 1, uid = `${fn}-1`): SandboxInfoMsg {
  return { sandboxId: id, function: fn, functionUid: uid, address: `a-${id}`, resources: { cpuMillis: 500, memoryMib: 256 }, functionGeneration: generation, createdAtMs: 0 };
}

function demand(fn: string, inflight: number, queued: number, first: boolean, uid = `${fn}-1`) {
  return { firstDemand: first, functions: [{ function: fn, functionUid: uid, inflight, queued, concurrencyAvg: inflight + queued, sandboxInflight: {} }] };
}

const creates = (effects: CpEffect[]) =>
  effects.flatMap((e) => (e.kind === 'worker_send' && e.command.case === 'create' ? [{ worker: e.workerId, id: e.command.value.sandboxId }] : []));
const deletes = (effects: CpEffect[]) =>
  effects.flatMap((e) => (e.kind === 'worker_send' && e.command.case === 'delete' ? [e.command.value.sandboxId] : []));
const broadcastAdds = (effects: CpEffect[]) =>
  effects.flatMap((e) => (e.kind === 'dp_broadcast' && e.update.case === 'delta' ? e.update.value.addEndpoints.map((x) => x.sandboxId) : []));

function cluster(heartbeatTimeoutMs = config.heartbeatTimeoutMs) {
  const cp = new ControlPlaneCore({ ...config, heartbeatTimeoutMs }, seededRng(7), silentLogger);
  cp.handle({ kind: 'dp_connected', hello: { dataPlaneId: 'dp1', proxyAddress: 'p:1', internalAddress: 'i:1' } }, 0);
  cp.handle({ kind: 'worker_connected', hello: worker('w1') }, 0);
  cp.handle({ kind: 'worker_connected', hello: worker('w2') }, 0);
  cp.handle({ kind: 'function_upserted', record: record('f') }, 0);
  return cp;
}

describe('ControlPlaneCore', () => {
  it('scales from zero on first demand without waiting for a tick, then pushes the endpoint', () => {
    const cp = cluster();
    const eff = cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 0, 1, true) }, 10);
    const c = creates(eff);
    assert.equal(c.length, 1);
    assert.equal(cp.status('f')!.creating, 1);
    const ready = cp.handle({ kind: 'sandbox_ready', workerId: c[0]!.worker, sandbox: info(c[0]!.id, 'f'), creationMs: 40 }, 60);
    assert.deepEqual(broadcastAdds(ready), [c[0]!.id]);
    assert.equal(cp.status('f')!.ready, 1);
    cp.checkInvariants();
  });

  it('a sandbox holds a creation deadline only while creating and a drain deadline only while a DP owes a report', () => {
    const cp = cluster();
    const [a] = creates(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 1, 0, true) }, 0));
    cp.checkInvariants(); // creating: its deadline is in the heap
    cp.handle({ kind: 'sandbox_ready', workerId: a!.worker, sandbox: info(a!.id, 'f'), creationMs: 1 }, 50);
    cp.checkInvariants(); // ready: the creation deadline left at once, not after creationTimeoutMs
    cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 0, 0, false) }, 1000);
    for (let t = 1000; t <= 9000 && cp.status('f')!.draining === 0; t += 100) cp.tick(t);
    assert.equal(cp.status('f')!.draining, 1);
    cp.checkInvariants(); // draining, dp1 has not reported: a drain deadline
    cp.handle({ kind: 'dp_drained', dataPlaneId: 'dp1', sandboxIds: [a!.id] }, 9100);
    cp.checkInvariants(); // delete sent: the drain deadline left
    // A creation that never reports: its deadline pops at the timeout and cancels it.
    const [b] = creates(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 1, 0, false) }, 9200));
    assert.ok(b);
    const eff = cp.tick(9200 + config.creationTimeoutMs + 1);
    assert.ok(deletes(eff).includes(b.id), 'timed out: the worker is told to delete it');
    cp.checkInvariants();
  });

  it('replaces the sandboxes of a worker whose stream drops, on another worker', () => {
    const cp = cluster();
    const first = creates(cp.handle({ kind: 'function_upserted', record: record('g', { min: 2 }) }, 0));
    assert.equal(first.length, 2);
    for (const s of first) cp.handle({ kind: 'sandbox_ready', workerId: s.worker, sandbox: info(s.id, 'g'), creationMs: 1 }, 150);
    const victim = first[0]!.worker;
    const eff = cp.handle({ kind: 'worker_disconnected', workerId: victim }, 200);
    const lost = first.filter((s) => s.worker === victim).length;
    const again = creates(eff);
    assert.equal(again.length, lost);
    assert.ok(again.every((s) => s.worker !== victim));
    assert.equal(cp.workers.get(victim)!.allocated.cpuMillis, 0);
    cp.checkInvariants();
  });

  it('marks a silent worker unschedulable after the heartbeat timeout, replaces its sandboxes and drains them before telling it to stop them', () => {
    const cp = cluster(1000);
    const [s] = creates(cp.handle({ kind: 'function_upserted', record: record('g', { min: 1 }) }, 0));
    cp.handle({ kind: 'sandbox_ready', workerId: s!.worker, sandbox: info(s!.id, 'g'), creationMs: 1 }, 150);
    const other = s!.worker === 'w1' ? 'w2' : 'w1';
    cp.handle({ kind: 'worker_heartbeat', workerId: other, heartbeat: { sandboxCount: 0 } }, 1500);
    const eff = cp.tick(1600);
    assert.equal(cp.workers.get(s!.worker)!.schedulable, false);
    assert.equal(creates(eff)[0]!.worker, other);
    // A partition, not necessarily a death: a DP may still run a request on it.
    const drained = eff.flatMap((e) => (e.kind === 'dp_broadcast' && e.update.case === 'delta' ? e.update.value.drainEndpoints : []));
    assert.deepEqual(drained, [s!.id]);
    assert.deepEqual(deletes(eff), []);
    assert.deepEqual(deletes(cp.handle({ kind: 'dp_drained', dataPlaneId: 'dp1', sandboxIds: [s!.id] }, 1700)), [s!.id]);
    cp.checkInvariants();
  });

  it('any event from a worker counts as a heartbeat: a busy worker that skips its heartbeats stays schedulable, and one marked silent recovers', () => {
    const cp = cluster(1000);
    for (let t = 900; t <= 3_600; t += 900) {
      cp.handle({ kind: 'sandbox_deleted', workerId: 'w1', sandboxId: `gone-${t}` }, t);
      cp.handle({ kind: 'worker_heartbeat', workerId: 'w2', heartbeat: { sandboxCount: 0 } }, t);
      cp.tick(t + 50);
    }
    assert.equal(cp.workers.get('w1')!.schedulable, true, 'events every 900 ms keep it alive without a heartbeat');
    cp.tick(5_000);
    assert.equal(cp.workers.get('w1')!.schedulable, false, 'silent for 1.4 s: lost');
    cp.handle({ kind: 'sandbox_deleted', workerId: 'w1', sandboxId: 'late' }, 5_100);
    assert.equal(cp.workers.get('w1')!.schedulable, true, 'heard from again: recovered');
    cp.checkInvariants();
  });

  it('backs off after creation failures and fails queued requests fast after the limit', () => {
    const cp = cluster();
    const [a] = creates(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 0, 1, true) }, 0));
    const e1 = cp.handle({ kind: 'sandbox_failed', workerId: a!.worker, sandboxId: a!.id, failure: 'create', reason: 'exit code 1' }, 10);
    assert.equal(creates(e1).length, 0, 'no retry before the back-off');
    const [b] = creates(cp.tick(120));
    assert.ok(b, 'retried after 100 ms');
    const e2 = cp.handle({ kind: 'sandbox_failed', workerId: b!.worker, sandboxId: b!.id, failure: 'create', reason: 'exit code 1' }, 130);
    const failures = e2.flatMap((e) => (e.kind === 'dp_broadcast' && e.update.case === 'delta' ? e.update.value.failures : []));
    assert.equal(failures.length, 1);
    assert.match(failures[0]!.reason, /exit code 1/);
    cp.checkInvariants();
  });

  it('drains before deleting on scale-down, and deletes once every data plane reported', () => {
    const cp = cluster();
    const [a] = creates(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 1, 0, true) }, 0));
    cp.handle({ kind: 'sandbox_ready', workerId: a!.worker, sandbox: info(a!.id, 'f'), creationMs: 1 }, 50);
    cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 0, 0, false) }, 1000);
    let drained: string[] = [];
    for (let t = 1000; t <= 9000 && drained.length === 0; t += 100) {
      drained = cp.tick(t).flatMap((e) => (e.kind === 'dp_broadcast' && e.update.case === 'delta' ? e.update.value.drainEndpoints : []));
    }
    assert.deepEqual(drained, [a!.id], 'scaled to zero within the 6 s stable window plus ticks');
    assert.equal(cp.status('f')!.draining, 1);
    const eff = cp.handle({ kind: 'dp_drained', dataPlaneId: 'dp1', sandboxIds: [a!.id] }, 9100);
    assert.deepEqual(deletes(eff), [a!.id]);
    cp.handle({ kind: 'sandbox_deleted', workerId: a!.worker, sandboxId: a!.id }, 9200);
    assert.equal(cp.workers.get(a!.worker)!.allocated.memoryMiB, 0);
    cp.checkInvariants();
  });

  it('after a restart adopts the sandboxes workers report and keeps them for one stable window', () => {
    const cp = new ControlPlaneCore(config, seededRng(3), silentLogger);
    cp.handle({ kind: 'function_upserted', record: record('f'), reconstructed: true }, 0);
    const eff = cp.handle({ kind: 'worker_connected', hello: worker('w1', [info('old-1', 'f'), info('stale', 'f', 0), info('orphan', 'gone')]) }, 10);
    assert.equal(cp.status('f')!.ready, 1);
    // No DP is connected yet, so the leftovers need no drain acknowledgement: deleted at once.
    assert.deepEqual(deletes(eff).sort(), ['orphan', 'stale']);
    for (const id of ['orphan', 'stale']) cp.handle({ kind: 'sandbox_deleted', workerId: 'w1', sandboxId: id }, 20);
    for (let t = 100; t < 5000; t += 100) assert.deepEqual(deletes(cp.tick(t)), []);
    assert.equal(cp.status('f')!.ready + cp.status('f')!.draining, 1);
    cp.checkInvariants();
  });

  it('evicts the idle sandbox on scale-down even when the busy one is newer', () => {
    const cp = cluster();
    const made = creates(cp.handle({ kind: 'function_upserted', record: record('h', { min: 2 }) }, 0));
    assert.equal(made.length, 2);
    cp.handle({ kind: 'sandbox_ready', workerId: made[0]!.worker, sandbox: info(made[0]!.id, 'h'), creationMs: 1 }, 10);
    cp.handle({ kind: 'sandbox_ready', workerId: made[1]!.worker, sandbox: info(made[1]!.id, 'h'), creationMs: 1 }, 20);
    const busy = made[1]!.id; // the newest: recency alone would pick it
    const report = { firstDemand: false, functions: [{ function: 'h', functionUid: 'h-1', inflight: 1, queued: 0, concurrencyAvg: 1, sandboxInflight: { [busy]: 1 } }] };
    cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report }, 30);
    const eff = cp.handle({ kind: 'function_upserted', record: { ...record('h', { min: 1, max: 1 }), generation: 1 } }, 40);
    const drained = eff.flatMap((e) => (e.kind === 'dp_broadcast' && e.update.case === 'delta' ? e.update.value.drainEndpoints : []));
    assert.deepEqual(drained, [made[0]!.id]);
    cp.checkInvariants();
  });

  it('keeps unschedulable demand waiting without retrying until capacity appears', () => {
    const cp = new ControlPlaneCore(config, seededRng(5), silentLogger);
    cp.handle({ kind: 'worker_connected', hello: worker('small') }, 0);
    const big = record('big');
    big.spec.resources = { cpuMillis: 3000, memoryMiB: 256 };
    cp.handle({ kind: 'function_upserted', record: big }, 0);
    assert.equal(creates(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('big', 0, 1, true) }, 1)).length, 0);
    let placements = 0;
    for (let t = 100; t < 3000; t += 100) placements += creates(cp.tick(t)).length;
    assert.equal(placements, 0, 'no node fits: nothing is created and nothing retried');
    const roomy = { ...worker('roomy'), capacity: { cpuMillis: 8000, memoryMib: 8192 } };
    const eff = cp.handle({ kind: 'worker_connected', hello: roomy }, 3000);
    assert.deepEqual(creates(eff).map((c) => c.worker), ['roomy']);
    cp.checkInvariants();
  });

  it('the leader term starts at 0 (no election), is set on taking over, and never goes back', () => {
    const logs: RecordedLog[] = [];
    const cp = new ControlPlaneCore(config, seededRng(6), memoryLogger(logs));
    assert.equal(cp.term, 0);
    cp.setTerm(7);
    assert.equal(cp.term, 7);
    cp.setTerm(5);
    assert.equal(cp.term, 7, 'a lower term is refused');
    assert.deepEqual(logs.find((l) => l.event === 'control_plane.term_regressed')?.fields, { term: 5, current: 7 });
    cp.setTerm(9);
    assert.equal(cp.term, 9);
  });
});

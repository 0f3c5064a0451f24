/**
 * Goal: the ticker visits an active function when it is due (record, decision, retry), once per
 * due time, and not at every tick; a newly active function at the next tick; stale entries (a
 * visit moved earlier, a deleted function) never.
 * Method: CoreState's schedule in virtual time; then the core: a function with a creation retry
 * is retried at the first tick after its back-off, and an idle one leaves the schedule.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../shared/logger.js';
import { seededRng } from '../../shared/rng.js';
import { emptySmallSet } from '../../shared/small-set.js';
import { newFnState, noDemand } from './functions.js';
import { CoreState, scheduleBucketMs } from './state.js';
import { ControlPlaneCore } from './control-plane.js';
import { applyDelete } from './registry.js';
import { reconcileDirty } from './scaler.js';
import { config, core, creates, deletes, deltas, demand, info, record, spec, worker } from './testkit.js';
import type { IdleHistoryRecord } from '../../api/types.js';
import type { CpEffect } from './types.js';

/** The names of the functions a tick would visit, in order. */
function due(s: CoreState, nowMs: number): string[] {
  return s.takeDue(nowMs).map((fn) => fn.record.spec.name);
}

/**
 * Answers a core's effects as one worker (w1) and one DP (dp1) would, at once: creations ready,
 * drains acknowledged, deletions confirmed; and what the core does in return, until nothing is left.
 */
function answerer(cp: ControlPlaneCore, fn: string, uid: string): (eff: CpEffect[], nowMs: number) => void {
  const answer = (eff: CpEffect[], nowMs: number): void => {
    for (const c of creates(eff)) answer(cp.handle({ kind: 'sandbox_ready', workerId: c.worker, sandbox: info(c.id, fn, uid), creationMs: 40 }, nowMs), nowMs);
    const drained = deltas(eff).flatMap((d) => d.drainEndpoints);
    if (drained.length > 0) answer(cp.handle({ kind: 'dp_drained', dataPlaneId: 'dp1', sandboxIds: drained }, nowMs), nowMs);
    for (const id of deletes(eff)) answer(cp.handle({ kind: 'sandbox_deleted', workerId: 'w1', sandboxId: id }, nowMs), nowMs);
  };
  return answer;
}

function state(names: string[]): CoreState {
  const s = new CoreState(config, seededRng(3), silentLogger);
  for (const n of names) s.functions.set(n, newFnState(record(n, `u-${n}`), 0, false));
  return s;
}

describe('tick schedule of active functions', () => {
  it('a newly active function is visited at the next tick, once', () => {
    const s = state(['f']);
    s.markDirty(s.functions.get('f')!);
    s.markDirty(s.functions.get('f')!);
    assert.deepEqual(due(s, 0), ['f']);
    assert.deepEqual(due(s, 10_000), []);
  });

  it('a planned visit is due at the first tick at or after its time, not before', () => {
    const s = state(['f']);
    s.visitAt(s.functions.get('f')!, 1_010);
    // Buckets are scheduleBucketMs wide, and a visit is never early: 1,010 falls in the bucket from 1,050.
    assert.equal(scheduleBucketMs, 50);
    assert.deepEqual(due(s, 1_000), []);
    assert.deepEqual(due(s, 1_049), []);
    assert.deepEqual(due(s, 1_050), ['f']);
    assert.deepEqual(due(s, 5_000), []);
  });

  it('the earlier of two planned visits wins; the later entry is skipped', () => {
    const s = state(['f', 'g']);
    const f = s.functions.get('f')!;
    s.visitAt(f, 2_000);
    s.visitAt(f, 500); // moved earlier
    s.visitAt(f, 3_000); // later: ignored
    s.visitAt(s.functions.get('g')!, 2_000);
    assert.deepEqual(due(s, 600), ['f']);
    assert.deepEqual(due(s, 2_000), ['g']);
    assert.deepEqual(due(s, 4_000), []);
  });

  it('a deleted function, or one re-created under its name, is not visited for the old entry', () => {
    const s = state(['f', 'g']);
    s.visitAt(s.functions.get('f')!, 100);
    s.markDirty(s.functions.get('g')!); // newly active: due at the next tick
    const oldF = s.functions.get('f')!;
    applyDelete(s, 'f', 50);
    applyDelete(s, 'g', 50);
    s.markDirty(oldF); // a stale reference marks nothing
    assert.equal(s.dirtyList.includes(oldF), false);
    assert.deepEqual(due(s, 1_000), []);
    s.functions.set('f', newFnState(record('f', 'u-2'), 1_000, false));
    s.visitAt(s.functions.get('f')!, 1_200);
    assert.deepEqual(due(s, 1_100), []);
    assert.deepEqual(due(s, 1_200), ['f']);
    assert.equal(due(s, 1_200)[0], undefined);
  });

  it('a function deleted and re-created under its name between planning and the tick: only the new one is visited, once', () => {
    const s = state(['f']);
    s.visitAt(s.functions.get('f')!, 1_000);
    applyDelete(s, 'f', 500);
    s.functions.set('f', newFnState(record('f', 'u-2'), 500, false));
    const fresh = s.functions.get('f')!;
    s.visitAt(fresh, 1_000);
    const visits = s.takeDue(1_000);
    assert.equal(visits.length, 1);
    assert.equal(visits[0], fresh);
  });

  it('a change of capacity marks every watched function for a reconcile pass, and only those', () => {
    const s = state(['f', 'g', 'h', 'i']);
    for (const n of ['f', 'g', 'h']) s.markDirty(s.functions.get(n)!);
    reconcileDirty(s, 0);
    assert.equal(s.dirtyList.length, 0);
    s.deactivate(s.functions.get('g')!); // idle: the ticker stops watching it
    applyDelete(s, 'h', 0);
    s.markAllActiveDirty();
    assert.deepEqual(s.dirtyList.map((fn) => fn.record.spec.name), ['f']);
    s.markAllActiveDirty();
    assert.equal(s.dirtyList.length, 1, 'a function waits once, however often it is marked');
  });

  it('10,000 active functions, each due once a second: a tick 50 ms after a full one visits about 1/20 of them', () => {
    const names = Array.from({ length: 10_000 }, (_, i) => `f${i}`);
    const s = state(names);
    for (const n of names) s.markDirty(s.functions.get(n)!);
    assert.equal(s.takeDue(0).length, 10_000);
    // Each visit plans the next one a second later, staggered as their records are.
    names.forEach((n, i) => s.visitAt(s.functions.get(n)!, 1_000 + (i % 1_000)));
    assert.equal(s.takeDue(999).length, 0);
    assert.equal(s.takeDue(1_000).length, 10); // due at exactly 1,000
    assert.equal(s.takeDue(1_050).length, 500); // due in (1,000, 1,050]: 1/20 of them
    assert.equal(s.takeDue(1_050).length, 0);
  });
});

describe('a registered function nobody invokes', () => {
  it('is ticked and its zero demand recorded, and it still holds no autoscaler window', () => {
    const cp = core();
    cp.handle({ kind: 'function_upserted', record: record('f', 'u1') }, 0);
    for (let t = 50; t <= 5_000; t += 50) cp.tick(t);
    const fn = cp.functions.get('f')!;
    assert.ok(fn.kpa.lastBucket !== null, 'recorded');
    assert.equal(fn.kpa.ring.bucketIds.length, 0);
  });
});

describe('a function invoked once, then idle', () => {
  it('gives back its demand list, its sandbox list and its window once scaled to zero, and starts again on the next demand', () => {
    // Goal: an idle function holds what a never-invoked one holds (shared empty lists, no
    // window), so a cluster of many rarely invoked functions does not keep one of each per
    // function. Method: the core alone; drains acknowledged and deletions confirmed at once, as a
    // DP and a worker would; invariants checked at every step.
    const cp = core();
    cp.handle({ kind: 'function_upserted', record: record('f', 'u1') }, 0);
    const fn = cp.functions.get('f')!;
    assert.equal(fn.demand, noDemand, 'a registered function holds the shared empty demand list');
    assert.equal(fn.sandboxIds, emptySmallSet);
    const [c] = creates(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', 0, 1) }, 10));
    assert.ok(c, 'scale from zero');
    cp.handle({ kind: 'sandbox_ready', workerId: c.worker, sandbox: info(c.id, 'f', 'u1'), creationMs: 40 }, 50);
    assert.deepEqual([...fn.sandboxIds], [c.id]);
    assert.equal(fn.demand.length, 1);
    cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', 0, 0, false) }, 100);
    assert.equal(fn.demand, noDemand, 'a report of all zeros is not kept');
    const answer = (eff: CpEffect[], nowMs: number): void => {
      const drained = deltas(eff).flatMap((d) => d.drainEndpoints);
      if (drained.length > 0) answer(cp.handle({ kind: 'dp_drained', dataPlaneId: 'dp1', sandboxIds: drained }, nowMs), nowMs);
      for (const id of deletes(eff)) answer(cp.handle({ kind: 'sandbox_deleted', workerId: c.worker, sandboxId: id }, nowMs), nowMs);
    };
    for (let t = 150; t <= 70_000; t += 50) {
      answer(cp.tick(t), t);
      cp.checkInvariants();
    }
    assert.equal(cp.sandboxes.size, 0, 'scaled to zero');
    assert.equal(fn.sandboxIds, emptySmallSet, 'the sandbox list is the shared empty one again');
    assert.equal(fn.kpa.ring.bucketIds.length, 0, 'the window of zeros was given back');
    assert.equal(cp.status('f')!.desired, 0);
    // (The worker sent no heartbeat in these 70 s, so no sandbox can be placed; the decision is what counts.)
    cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', 0, 1) }, 70_010);
    assert.equal(cp.status('f')!.desired, 1, 'a new demand scales it from zero again');
    assert.equal(fn.kpa.ring.bucketIds.length, fn.record.spec.scaling.stableWindowS, 'with a window of its own');
    cp.checkInvariants();
  });
});

describe('a tick with a visit limit', () => {
  it('visits at most that many; the next calls visit the rest, and the end state is that of one unbounded tick', () => {
    const build = (): ControlPlaneCore => {
      const cp = core();
      for (let i = 0; i < 40; i += 1) {
        cp.handle({ kind: 'function_upserted', record: record(`f${i}`, `u${i}`, { resources: { cpuMillis: 10, memoryMiB: 8 } }) }, 0);
        // One sandbox from zero at once, ready at 50 ms; then more in flight than it has slots:
        // the tick's decision asks for more.
        for (const c of creates(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand(`f${i}`, `u${i}`, 0, 1) }, 10))) {
          cp.handle({ kind: 'sandbox_ready', workerId: c.worker, sandbox: info(c.id, `f${i}`, `u${i}`), creationMs: 40 }, 50);
        }
        cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand(`f${i}`, `u${i}`, 2 + (i % 3), 0, false) }, 60);
      }
      return cp;
    };
    const whole = build();
    const sliced = build();
    const wholeCreates = creates(whole.tick(1_100)).length;
    let slicedCreates = 0;
    const pendingAfter: number[] = [];
    for (let call = 0; call < 20; call += 1) {
      slicedCreates += creates(sliced.tick(1_100, 7)).length;
      pendingAfter.push(sliced.visitsPending);
      if (sliced.visitsPending === 0) break;
    }
    assert.deepEqual(pendingAfter, [33, 26, 19, 12, 5, 0], '40 due, 7 per call');
    assert.ok(wholeCreates > 0);
    assert.equal(slicedCreates, wholeCreates);
    for (let i = 0; i < 40; i += 1) assert.equal(sliced.status(`f${i}`)!.desired, whole.status(`f${i}`)!.desired, `f${i}`);
    // Nothing is visited twice or left behind: the next due time is the same for both.
    assert.equal(creates(sliced.tick(5_000)).length, creates(whole.tick(5_000)).length);
    sliced.checkInvariants();
  });
});

describe('a function held at its floor (scaling.min 1)', () => {
  it('leaves the schedule once its sandbox is ready and its window is given back, and comes back for demand and for a lost sandbox', () => {
    // Goal: a function nobody invokes, held at one sandbox, costs the ticker nothing (40,000 of
    // them cost the leader ~12 % of a core while the cluster was idle), yet demand still scales
    // it up and down, and a sandbox it loses is replaced. Method: the core alone; creations
    // answered ready, drains acknowledged and deletions confirmed at once, as a worker and a DP
    // would; invariants checked at every step.
    const cp = core();
    const answer = answerer(cp, 'f', 'u1');
    const run = (from: number, to: number): void => {
      for (let t = from; t <= to; t += 50) {
        answer(cp.tick(t), t);
        cp.checkInvariants();
      }
    };
    answer(cp.handle({ kind: 'function_upserted', record: record('f', 'u1', { resources: { cpuMillis: 100, memoryMiB: 64 }, scaling: { ...spec('f').scaling, min: 1, max: 4 } }) }, 0), 0);
    const fn = cp.functions.get('f')!;
    run(50, 2_000);
    assert.equal(cp.sandboxes.size, 1, 'held at min');
    assert.equal(fn.active, false, 'at its floor with no demand: not watched');
    const idleAt = cp.visitsPending;
    run(2_050, 10_000);
    assert.equal(cp.visitsPending, idleAt);
    assert.equal(fn.active, false);

    // Demand: watched again, and scaled up.
    answer(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', 1, 3) }, 10_010), 10_010);
    assert.equal(fn.active, true);
    run(10_050, 12_000);
    assert.ok(cp.status('f')!.desired > 1, `scaled up for 4 requests, desired ${cp.status('f')!.desired}`);
    assert.ok(cp.sandboxes.size > 1);
    // Demand gone: back to one sandbox, then off the schedule once the window is all zeros.
    answer(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', 0, 0, false) }, 12_010), 12_010);
    run(12_050, 40_000);
    assert.equal(cp.status('f')!.desired, 1);
    assert.equal(cp.sandboxes.size, 1);
    assert.equal(fn.kpa.ring.bucketIds.length, 0, 'the window of zeros was given back');
    assert.equal(fn.active, false, 'at its floor again: not watched');

    // Its sandbox crashes: watched again, and replaced.
    const [lost] = [...cp.sandboxes.keys()];
    const eff = cp.handle({ kind: 'sandbox_failed', workerId: 'w1', sandboxId: lost!, failure: 'crash', reason: 'exit code 137' }, 40_010);
    assert.equal(fn.active, true);
    answer(eff, 40_010);
    run(40_050, 42_000);
    assert.equal(cp.sandboxes.size, 1);
    assert.ok(!cp.sandboxes.has(lost!), 'a new sandbox in its place');
    assert.equal(fn.active, false);
  });
});

describe('a function with the keep-alive policy (scaling.keepAliveWindowS)', () => {
  // Goal: a function invoked every few minutes keeps, or gets back before it is due, one
  // sandbox the KPA alone would have given up a stable window after each call, and gives it up
  // when the policy's window ends; without the policy the same calls scale it to zero each time.
  // Method: the core alone in virtual time; creations answered ready, drains acknowledged and
  // deletions confirmed at once, heartbeats every 10 s; invariants checked at every step.
  const windowS = 600;
  const kaSpec = (keepAliveWindowS: number) => ({ resources: { cpuMillis: 100, memoryMiB: 64 }, scaling: { ...spec('k').scaling, keepAliveWindowS } });
  /**
   * Drives `cp` from `startMs` (a multiple of 10 s): ticks every 250 ms, heartbeats every 10 s,
   * calls of function k; keeps the idle histories the core asks to store.
   */
  function driver(cp: ControlPlaneCore, startMs: number) {
    const answer = answerer(cp, 'k', 'u1');
    const saved: { atMs: number; records: IdleHistoryRecord[] }[] = [];
    let nowMs = startMs;
    const runTo = (toMs: number): void => {
      for (let t = nowMs + 250; t <= toMs; t += 250) {
        if (t % 10_000 === 0) answer(cp.handle({ kind: 'worker_heartbeat', workerId: 'w1', heartbeat: { sandboxCount: cp.sandboxes.size } }, t), t);
        const eff = cp.tick(t);
        for (const e of eff) if (e.kind === 'store_idle_histories') saved.push({ atMs: t, records: e.records });
        answer(eff, t);
        cp.checkInvariants();
      }
      nowMs = toMs;
    };
    /** One call of `busyMs`: demand reported at its start, a report of zeros at its end. */
    const call = (atMs: number, busyMs = 1000): void => {
      runTo(atMs);
      answer(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('k', 'u1', 1, 0) }, atMs), atMs);
      runTo(atMs + busyMs);
      answer(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('k', 'u1', 0, 0, false) }, atMs + busyMs), atMs + busyMs);
    };
    return { runTo, call, saved, answer, now: () => nowMs };
  }
  function cluster(keepAliveWindowS: number) {
    const cp = core();
    cp.handle({ kind: 'function_upserted', record: record('k', 'u1', kaSpec(keepAliveWindowS)) }, 0);
    return { cp, fn: cp.functions.get('k')!, ...driver(cp, 0) };
  }
  /** A new leader at t0 (its own clock): k rebuilt from the store, worker w1 reporting `running`. */
  function newLeader(t0: number, idleHistory: IdleHistoryRecord | undefined, running: string[]) {
    const cp = new ControlPlaneCore(config, seededRng(5), silentLogger);
    cp.handle({ kind: 'function_upserted', record: record('k', 'u1', kaSpec(windowS)), reconstructed: true, idleHistory }, t0);
    cp.handle({ kind: 'dp_connected', hello: { dataPlaneId: 'dp1', proxyAddress: 'p:1', internalAddress: 'i:1' } }, t0);
    cp.handle({ kind: 'worker_connected', hello: worker('w1', running.map((id) => info(id, 'k', 'u1'))) }, t0);
    return { cp, fn: cp.functions.get('k')!, ...driver(cp, t0) };
  }

  it('holds one sandbox for the whole window after a call while its idle times are unknown, then gives it up', () => {
    const off = cluster(0);
    off.call(1000);
    off.runTo(60_000);
    assert.equal(off.cp.sandboxes.size, 0, 'without the policy: scaled to zero a stable window after the call');

    const k = cluster(windowS);
    k.call(1000);
    k.runTo(60_000);
    assert.equal(k.cp.sandboxes.size, 1, 'held after the KPA would have scaled to zero');
    assert.equal(k.cp.status('k')!.desired, 1);
    assert.match(k.cp.status('k')!.lastScaleReason, /keep-alive holds 1 sandbox for \d+ s more \(standard window; the KPA alone: 0\)/);
    assert.equal(k.fn.active, false, 'held with nothing to change until the window ends: off the ticker');
    const endMs = k.fn.keepAliveWakeAtMs;
    assert.ok(endMs >= 2000 + windowS * 1000 && endMs <= 3000 + windowS * 1000, `the window ends ${windowS} s after the call's end, not at ${endMs}`);
    assert.equal(k.fn.visitBucket, Math.ceil(endMs / scheduleBucketMs), 'one visit planned, at the window end');
    k.runTo(2000 + windowS * 1000 - 5000);
    assert.equal(k.cp.sandboxes.size, 1, 'still held near the window end');
    k.runTo(2000 + windowS * 1000 + 5000);
    assert.equal(k.cp.sandboxes.size, 0, 'given up once the window ended');
    assert.equal(k.cp.status('k')!.desired, 0);
    k.runTo(2000 + windowS * 1000 + 30_000);
    assert.equal(k.fn.active, false, 'at rest again: off the schedule');
    assert.equal(k.fn.keepAliveWakeAtMs, 0);
  });

  it('learns a regular idle time: gives the sandbox up between calls and brings it back before the next one is due', () => {
    const k = cluster(windowS);
    const gapMs = 270_000; // 4.5 minutes idle: bin 4
    let at = 1000;
    for (let i = 0; i < 7; i += 1, at += gapMs + 1000) k.call(at);
    k.runTo(at - gapMs + 2000); // the next record sees the last call's end
    const idleSince = k.fn.keepAlive!.idleSinceMs;
    assert.ok(!k.fn.keepAlive!.busy && idleSince > at - gapMs - 1000, `idle since the last call's end, not ${idleSince}`);
    assert.equal(k.fn.keepAlive!.samples, 6);
    assert.equal(k.fn.keepAlive!.bins![4], 6);
    // The histogram: pre-warm at 0.9 x 4 min = 216 s, held until 1.1 x 5 min = 330 s.
    k.runTo(idleSince + 100_000);
    assert.equal(k.cp.sandboxes.size, 0, 'given up between calls');
    assert.equal(k.fn.active, false, 'off the ticker between calls');
    assert.equal(k.fn.visitBucket, Math.ceil(k.fn.keepAliveWakeAtMs / scheduleBucketMs), 'one visit planned, at the pre-warm');
    k.runTo(idleSince + 218_000);
    assert.equal(k.cp.sandboxes.size, 1, 'pre-warmed before the call is due, with no demand');
    assert.match(k.cp.status('k')!.lastScaleReason, /histogram window/);
    k.runTo(idleSince + 325_000);
    assert.equal(k.cp.sandboxes.size, 1);
    k.runTo(idleSince + 340_000);
    assert.equal(k.cp.sandboxes.size, 0, 'the call did not come: given up at the window end');
  });

  it('a call that finds the pre-warmed sandbox is not a cold start', () => {
    const k = cluster(windowS);
    const gapMs = 270_000;
    let at = 1000;
    for (let i = 0; i < 7; i += 1, at += gapMs + 1000) k.call(at);
    k.runTo(at - 1000);
    const before = [...k.cp.sandboxes.keys()];
    assert.equal(before.length, 1);
    k.call(at);
    assert.deepEqual([...k.cp.sandboxes.keys()], before, 'served by the sandbox already there');
  });

  it('after a CP failover, the sandbox it held is adopted and held for the window; the idle time since the takeover is not recorded', () => {
    const k = cluster(windowS);
    k.call(1000);
    k.runTo(60_000);
    const [held] = [...k.cp.sandboxes.keys()];
    assert.ok(held, 'held by the old leader');
    // The new leader stored nothing of k (no idle time yet); its clock has another origin.
    const t0 = 500_000;
    const l = newLeader(t0, undefined, [held]);
    l.runTo(t0 + 300_000);
    assert.deepEqual([...l.cp.sandboxes.keys()], [held], 'still held long after the adoption hold (one stable window) ended');
    assert.match(l.cp.status('k')!.lastScaleReason, /keep-alive holds 1 sandbox .*standard window/);
    l.call(l.now());
    assert.deepEqual([...l.cp.sandboxes.keys()], [held], 'the call found it: no cold start');
    l.runTo(l.now() + 1000);
    const ka = l.fn.keepAlive!;
    assert.equal(ka.samples + ka.outOfRange, 0, 'the time since the takeover is not an idle time (its start is unknown)');
    l.runTo(l.now() + windowS * 1000 + 5000);
    assert.equal(l.cp.sandboxes.size, 0, 'given up a window after the call, as on the old leader');
  });

  it('after a CP failover, a function that held nothing gets nothing', () => {
    const t0 = 500_000;
    const l = newLeader(t0, undefined, []);
    for (let t = t0 + 250; t <= t0 + 120_000; t += 250) {
      assert.deepEqual(creates(l.cp.tick(t)), [], `nothing created at ${t}`);
    }
    assert.equal(l.fn.keepAlive, null);
  });

  it('the leader stores what it learns, a batch at most every 10 s; a new leader pre-warms from it as the old one did', () => {
    const k = cluster(windowS);
    const gapMs = 270_000;
    let at = 1000;
    for (let i = 0; i < 7; i += 1, at += gapMs + 1000) k.call(at);
    k.runTo(at);
    assert.equal(k.saved.length, 6, 'one batch per idle time recorded (the calls are minutes apart)');
    for (let i = 1; i < k.saved.length; i += 1) assert.ok(k.saved[i]!.atMs - k.saved[i - 1]!.atMs >= 10_000);
    const last = k.saved.at(-1)!.records;
    assert.equal(last.length, 1);
    const stored = last[0]!;
    assert.deepEqual({ ...stored, bins: stored.bins[4] }, { function: 'k', functionUid: 'u1', windowS, bins: 6, samples: 6, outOfRange: 0 });
    assert.deepEqual(stored.bins, k.fn.keepAlive!.bins);
    assert.notEqual(stored.bins, k.fn.keepAlive!.bins, 'a copy: the core goes on counting in its own');

    // The leader dies between calls, holding nothing (before the pre-warm). The new one:
    const t0 = 2_000_000;
    const l = newLeader(t0, stored, []);
    assert.equal(l.fn.keepAlive!.samples, 6, 'starts from the stored counts');
    l.call(t0 + 10_000);
    l.runTo(t0 + 13_000); // the next record sees the call's end
    assert.equal(l.fn.keepAlive!.samples, 6, 'the idle time before its first call began before it led: not recorded');
    const idleSince = l.fn.keepAlive!.idleSinceMs;
    assert.ok(!l.fn.keepAlive!.busy && idleSince > t0 + 10_000, `idle since the call's end, not ${idleSince}`);
    l.runTo(idleSince + 100_000);
    assert.equal(l.cp.sandboxes.size, 0, 'given up between calls, as the old leader did (the standard window would hold it)');
    l.runTo(idleSince + 218_000);
    assert.equal(l.cp.sandboxes.size, 1, 'pre-warmed at 90 % of 4 minutes, from the stored idle times');
    assert.match(l.cp.status('k')!.lastScaleReason, /histogram window/);
    assert.equal(l.saved.length, 0, 'nothing new learned: nothing written');
  });

  it('a stored history of an older function under the name, or of another window, is not used', () => {
    const stored = { function: 'k', functionUid: 'u1', windowS, bins: [0, 0, 0, 0, 6, 0, 0, 0, 0, 0], samples: 6, outOfRange: 0 };
    assert.equal(newLeader(0, { ...stored, functionUid: 'u0' }, []).fn.keepAlive, null);
    assert.equal(newLeader(0, { ...stored, windowS: 300, bins: [0, 0, 0, 0, 6] }, []).fn.keepAlive, null);
    assert.equal(newLeader(0, stored, []).fn.keepAlive!.samples, 6);
  });

  it('a stored history is forgotten when an update turns the keep-alive off, or when a new leader finds it does not fit', () => {
    // Goal: the store never keeps idle times no leader will use, so a restart cannot bring back
    // what an update turned off. Method: the effects of upserts on a fresh core.
    const forgets = (effects: readonly CpEffect[]): string[] => effects.flatMap((e) => (e.kind === 'store_delete_idle_history' ? [e.name] : []));
    const cp = core();
    const upsert = (keepAliveWindowS: number, generation: number): CpEffect[] =>
      cp.handle({ kind: 'function_upserted', record: { ...record('k', 'u1', kaSpec(keepAliveWindowS)), generation } }, generation * 1000);
    assert.deepEqual(forgets(upsert(windowS, 1)), [], 'registered with the keep-alive on');
    assert.deepEqual(forgets(upsert(windowS * 2, 2)), [], 'another window: the next save replaces the history');
    assert.deepEqual(forgets(upsert(0, 3)), ['k'], 'turned off: forgotten');
    assert.deepEqual(forgets(upsert(0, 4)), [], 'off already: nothing to forget');
    assert.deepEqual(forgets(upsert(windowS, 5)), [], 'on again: learns from nothing');

    const stored = { function: 'k', functionUid: 'u1', windowS, bins: [0, 0, 0, 0, 6, 0, 0, 0, 0, 0], samples: 6, outOfRange: 0 };
    const load = (keepAliveWindowS: number, idleHistory: IdleHistoryRecord): string[] =>
      forgets(new ControlPlaneCore(config, seededRng(5), silentLogger)
        .handle({ kind: 'function_upserted', record: record('k', 'u1', kaSpec(keepAliveWindowS)), reconstructed: true, idleHistory }, 0));
    assert.deepEqual(load(windowS, stored), [], 'a history that fits is used, and kept');
    assert.deepEqual(load(0, stored), ['k'], 'stored while on, found with the keep-alive off');
    assert.deepEqual(load(windowS / 2, stored), ['k'], 'of another window');
    assert.deepEqual(load(windowS, { ...stored, functionUid: 'u0' }), ['k'], 'of an older function under the name');
  });

  it('turned off by an update: the floor goes at the next decision', () => {
    const k = cluster(windowS);
    k.call(1000);
    k.runTo(60_000);
    assert.equal(k.cp.sandboxes.size, 1);
    k.cp.handle({ kind: 'function_upserted', record: { ...record('k', 'u1', { resources: { cpuMillis: 100, memoryMiB: 64 }, scaling: { ...spec('k').scaling, keepAliveWindowS: 0 } }), generation: 2 } }, 60_000);
    k.runTo(70_000);
    assert.equal(k.cp.sandboxes.size, 0);
    assert.equal(k.fn.keepAlive, null);
  });
});

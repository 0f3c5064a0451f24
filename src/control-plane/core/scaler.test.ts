/**
 * Goal: demand is matched by function uid; unschedulable shows in status and fails queued requests fast only when no worker could ever run the function.
 * Method: the pure core in virtual time, driven with events; effects inspected.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { seededRng } from '../../shared/rng.js';
import { memoryLogger, silentLogger, type RecordedLog } from '../../shared/logger.js';
import { ControlPlaneCore } from './control-plane.js';
import { scaleSummaryIntervalMs } from './state.js';
import { config, spec, record, demand, creates, deltas, core, info, worker } from './testkit.js';

describe('Scaler (control-plane core)', () => {
  it('sums the demand of every data plane per function, and drops a DP\'s share when it goes', () => {
    const cp = core();
    for (const id of ['dp2', 'dp3']) {
      cp.handle({ kind: 'dp_connected', hello: { dataPlaneId: id, proxyAddress: `${id}:1`, internalAddress: `${id}:2` } }, 0);
    }
    cp.handle({ kind: 'function_upserted', record: record('f', 'u1') }, 0);
    cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', 2, 0, false) }, 10);
    cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp2', report: demand('f', 'u1', 3, 1, false) }, 10);
    cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp3', report: demand('f', 'u1', 0, 2, false) }, 10);
    assert.equal(cp.status('f')!.inflight, 5);
    assert.equal(cp.status('f')!.queueDepth, 3);
    cp.tick(1100); // the autoscaler decides on the sum: 8 requests, 1 per sandbox
    assert.equal(cp.status('f')!.desired, 8);
    cp.handle({ kind: 'dp_disconnected', dataPlaneId: 'dp2' }, 1200);
    assert.equal(cp.status('f')!.inflight, 2);
    assert.equal(cp.status('f')!.queueDepth, 2);
  });

  it('keeps the reason of the decision that last changed the count, not of every decision', () => {
    const cp = core();
    cp.handle({ kind: 'function_upserted', record: record('f', 'u1') }, 0);
    cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', 8, 0, false) }, 10);
    cp.tick(1100);
    assert.equal(cp.status('f')!.desired, 8);
    const scaledUp = cp.status('f')!.lastScaleReason;
    assert.ok(scaledUp.length > 0);
    // Demand gone: the next decisions hold the count (delay, rate bound) with other figures.
    cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', 0, 0, false) }, 1200);
    const reasons = new Set<string>();
    let t = 1100;
    while (cp.status('f')!.desired === 8 && t < 60_000) {
      t += 250;
      cp.tick(t);
      if (cp.status('f')!.desired === 8) reasons.add(cp.status('f')!.lastScaleReason);
    }
    assert.deepEqual([...reasons], [scaledUp], 'held at 8: the reason is still the scale-up\'s');
    assert.ok(cp.status('f')!.desired < 8, 'scaled down in the end');
    assert.notEqual(cp.status('f')!.lastScaleReason, scaledUp, 'the scale-down has its own reason');
  });

  it('queue floor: a queue behind busy sandboxes, reported at once, adds sandboxes without waiting for a tick', () => {
    for (const queueFloor of [true, false]) {
      const cp = new ControlPlaneCore({ ...config, queueFloor }, seededRng(11), silentLogger);
      cp.handle({ kind: 'dp_connected', hello: { dataPlaneId: 'dp1', proxyAddress: 'p:1', internalAddress: 'i:1' } }, 0);
      cp.handle({ kind: 'worker_connected', hello: worker('w1') }, 0);
      cp.handle({ kind: 'function_upserted', record: record('f', 'u1', { resources: { cpuMillis: 100, memoryMiB: 64 } }) }, 0);
      const first = creates(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', 0, 2) }, 10));
      for (const c of first) cp.handle({ kind: 'sandbox_ready', workerId: c.worker, sandbox: info(c.id, 'f', 'u1'), creationMs: 40 }, 60);
      const ready = cp.status('f')!.ready;
      assert.ok(ready >= 1);
      // Every sandbox busy, 3 more requests queued behind them: an urgent report 40 ms later.
      const more = creates(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', ready, 3) }, 100));
      if (queueFloor) {
        assert.equal(more.length, 3, 'one new sandbox per queued request');
        assert.match(cp.status('f')!.lastScaleReason ?? '', /queue floor/);
      } else {
        assert.equal(more.length, 0, 'plain KPA waits for its tick');
      }
      // The same queue reported again while those are being created asks for nothing more.
      assert.equal(creates(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', ready, 3) }, 150)).length, 0);
      cp.checkInvariants();
    }
  });

  it('logs each decision at debug and their counts at info, at most every 10 s, nothing when quiet', () => {
    const logs: RecordedLog[] = [];
    const cp = new ControlPlaneCore(config, seededRng(11), memoryLogger(logs));
    cp.handle({ kind: 'dp_connected', hello: { dataPlaneId: 'dp1', proxyAddress: 'p:1', internalAddress: 'i:1' } }, 0);
    cp.handle({ kind: 'worker_connected', hello: worker('w1') }, 0);
    const summaries = (): Record<string, unknown>[] => logs.filter((l) => l.event === 'autoscaler.decisions').map((l) => l.fields);
    cp.tick(0);
    for (const name of ['f', 'g']) {
      cp.handle({ kind: 'function_upserted', record: record(name, `u-${name}`) }, 0);
      const [c] = creates(cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand(name, `u-${name}`, 0, 1) }, 10));
      cp.handle({ kind: 'sandbox_ready', workerId: c!.worker, sandbox: info(c!.id, name, `u-${name}`), creationMs: 40 }, 60);
    }
    const scaled = logs.filter((l) => l.event === 'function.scaled');
    assert.deepEqual(scaled.map((l) => [l.level, l.fields.fn, l.fields.from, l.fields.to]), [['debug', 'f', 0, 1], ['debug', 'g', 0, 1]]);
    cp.tick(scaleSummaryIntervalMs - 1);
    assert.deepEqual(summaries(), [], 'not before the interval');
    cp.tick(scaleSummaryIntervalMs);
    assert.deepEqual(summaries(), [{ up: 2, fromZero: 2, down: 0, toZero: 0, windowMs: scaleSummaryIntervalMs }]);
    assert.equal(logs.find((l) => l.event === 'autoscaler.decisions')!.level, 'info');
    // Demand gone: both scale to zero within the stable window; the next line counts them.
    for (const name of ['f', 'g']) cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand(name, `u-${name}`, 0, 0, false) }, 10_100);
    for (let t = 10_100; t <= 40_000; t += 100) cp.tick(t);
    assert.deepEqual(summaries()[1], { up: 0, fromZero: 0, down: 2, toZero: 2, windowMs: scaleSummaryIntervalMs });
    assert.equal(summaries().length, 2, 'a quiet spell logs nothing');
    assert.deepEqual(cp.scaleDecisions, { up: 2, down: 2, fromZero: 2, toZero: 2 });
    // The first decision after the quiet spell: logged with the spell as its window.
    cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u-f', 0, 1) }, 40_050);
    cp.tick(40_100);
    assert.deepEqual(summaries()[2], { up: 1, fromZero: 1, down: 0, toZero: 0, windowMs: 20_100 });
  });

  it('ignores demand for an unknown uid (a deleted and re-created function)', () => {
    const cp = core();
    cp.handle({ kind: 'function_upserted', record: record('f', 'uid-new') }, 0);
    const eff = cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'uid-old', 3, 0) }, 10);
    assert.equal(creates(eff).length, 0);
    assert.equal(cp.status('f')!.desired, 0);
    assert.equal(cp.status('f')!.inflight, 0);
  });

  it('unschedulable: the reason shows in status, and after 2 s queued requests are failed with 503', () => {
    const cp = core();
    cp.handle({ kind: 'function_upserted', record: { ...record('img', 'u1'), spec: { ...spec('img'), command: [], image: 'x' } } }, 0);
    cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('img', 'u1', 0, 2) }, 10);
    const st = cp.status('img')!;
    assert.match(st.unschedulableReason ?? '', /without an image runtime/);
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

  it('counts every placement no worker could take, and keeps the count once room is back', () => {
    const cp = core();
    assert.deepEqual(cp.placementRefusals, { total: 0, lastReason: '' });
    cp.handle({ kind: 'function_upserted', record: record('hog', 'h1', { resources: { cpuMillis: 2000, memoryMiB: 256 } }) }, 0);
    cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('hog', 'h1', 0, 1) }, 0);
    assert.equal(cp.placementRefusals.total, 0, 'the hog fits');
    cp.handle({ kind: 'function_upserted', record: record('f', 'u1') }, 0);
    cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', 0, 2) }, 10);
    assert.equal(cp.placementRefusals.total, 1);
    assert.match(cp.placementRefusals.lastReason, /^0\/1 workers available: 1 insufficient cpu/);
    // A new worker brings room: f is placed, and the count of the moment it had none stays.
    const placed = creates(cp.handle({ kind: 'worker_connected', hello: worker('w2') }, 20));
    assert.ok(placed.length > 0 && placed.every((c) => c.worker === 'w2'), JSON.stringify(placed));
    assert.equal(cp.placementRefusals.total, 1);
    assert.equal(cp.status('f')!.unschedulableReason ?? '', '');
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
});

/**
 * Goal: the registry serializes create/update/delete per name through the store: concurrent patches all apply, creates of one name give one created, a delete racing a patch never brings the function back, a failed write changes nothing. A create is announced to the DPs while it commits (taken back if the commit fails); updates route only once persisted.
 * Method: the pure core in virtual time, driven with events; effects inspected.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FunctionSpec } from '../../api/types.js';
import type { ApiResult, CpEffect } from './types.js';
import { spec, core, drive } from './testkit.js';

describe('Registry (control-plane core)', () => {
  it('50 concurrent patches of different fields all apply, in order', () => {
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

  it('creates handled together are announced in one routing delta while they commit; their commit adds no second one', () => {
    const cp = core();
    const creates = Array.from({ length: 16 }, (_, i) => ({ kind: 'api_create' as const, requestId: i, spec: spec(`f${i}`), uid: `u${i}`, wallMs: 0 }));
    const writes = cp.handleAll(creates, 0);
    const announced = writes.filter((e) => e.kind === 'dp_broadcast');
    assert.equal(announced.length, 1, 'one routing message for the turn');
    const delta = announced[0]!.kind === 'dp_broadcast' && announced[0]!.update.case === 'delta' ? announced[0]!.update.value : null;
    assert.ok(delta);
    assert.deepEqual(delta.upsertFunctions.map((f) => f.name), creates.map((c) => c.spec.name), 'the DPs learn every function before the commit');
    assert.equal(cp.record('f0'), null, 'not live before the commit');
    const persisted = writes.flatMap((e) => (e.kind === 'store_function' ? [{ kind: 'persisted' as const, opId: e.opId }] : []));
    assert.equal(persisted.length, 16);
    const eff = cp.handleAll(persisted, 1);
    assert.equal(eff.filter((e) => e.kind === 'dp_send' || e.kind === 'dp_broadcast').length, 0, 'nothing more to route');
    const done = eff.flatMap((e) => (e.kind === 'api_done' ? [e] : []));
    assert.deepEqual(done.map((e) => e.result), Array(16).fill('created'));
    // Every answer waits for the version that announced it, no later one.
    assert.deepEqual(done.map((e) => e.routingVersion), Array(16).fill(delta.version));
    assert.equal(cp.record('f0')!.uid, 'u0');
  });

  it('an announced create whose commit fails is taken back from the DPs', () => {
    const cp = core();
    const eff = cp.handle({ kind: 'api_create', requestId: 7, spec: spec('f'), uid: 'u1', wallMs: 0 }, 0);
    const w = eff.find((e) => e.kind === 'store_function');
    assert.ok(w && w.kind === 'store_function');
    const failed = cp.handle({ kind: 'persist_failed', opId: w.opId, error: 'disk full' }, 1);
    const sent = failed.find((e) => e.kind === 'dp_broadcast');
    assert.ok(sent && sent.kind === 'dp_broadcast' && sent.update.case === 'delta');
    assert.deepEqual(sent.update.value.deleteFunctions, [{ name: 'f', uid: 'u1' }]);
    assert.equal(cp.routing.snapshot([]).functions.length, 0);
  });

  it('an update changes the routing only once it is persisted', () => {
    const cp = core();
    drive(cp, 0, cp.handle({ kind: 'api_create', requestId: 0, spec: spec('f'), uid: 'u1', wallMs: 0 }, 0), new Map());
    const eff = cp.handle({ kind: 'api_update', requestId: 1, name: 'f', patch: (c) => ({ ...c, concurrency: 9 }), wallMs: 1 }, 1);
    assert.equal(eff.filter((e) => e.kind === 'dp_broadcast').length, 0);
    const w = eff.find((e) => e.kind === 'store_function');
    assert.ok(w && w.kind === 'store_function');
    const after = cp.handle({ kind: 'persisted', opId: w.opId }, 2);
    const sent = after.find((e) => e.kind === 'dp_broadcast');
    assert.ok(sent && sent.kind === 'dp_broadcast' && sent.update.case === 'delta');
    assert.equal(sent.update.value.upsertFunctions[0]!.concurrency, 9);
    const done = after.find((e) => e.kind === 'api_done');
    assert.ok(done && done.kind === 'api_done' && done.routingVersion === sent.update.value.version);
  });

  it('50 parallel creates of one name give one created and 49 exists', () => {
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

  it('a delete racing a patch never brings the function back', () => {
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

  it('a failed store write answers store_failed and changes nothing', () => {
    const cp = core();
    const eff = cp.handle({ kind: 'api_create', requestId: 7, spec: spec('f'), uid: 'u1', wallMs: 0 }, 0);
    const w = eff.find((e) => e.kind === 'store_function');
    assert.ok(w && w.kind === 'store_function');
    const done = cp.handle({ kind: 'persist_failed', opId: w.opId, error: 'disk full' }, 1);
    assert.deepEqual(done.filter((e) => e.kind === 'api_done').map((e) => e.kind === 'api_done' && e.result), ['store_failed']);
    assert.equal(cp.record('f'), null);
  });
});

/**
 * Goal: pin the tenancy parts of the control-plane core: namespace quotas on live sandboxes
 * block placement with the quota named, fail queued requests with quota_exceeded after the
 * unschedulable limit, never stop running sandboxes, and resume when room appears; the invoke
 * token set reaches DPs as diffs in deltas and whole in snapshots.
 * Method: feed events to the pure core at chosen virtual times and inspect effects and status.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { InvokeTokenMsg } from '../../api/cluster.js';
import type { NamespaceQuotas } from '../../api/types.js';
import { config, core, deletes, deltas, demand, info, record, creates } from './testkit.js';
import type { CpEffect } from './types.js';

const none: NamespaceQuotas = { functions: 0, sandboxes: 0, cpuMillis: 0, memoryMiB: 0 };
const quota = (over: Partial<NamespaceQuotas>) => ({ kind: 'quotas_set' as const, records: [{ name: 'team-a', quotas: { ...none, ...over } }], defaults: none });
const oneEach = { ...record('x', 'x').spec.scaling, min: 1, initial: 1 };
const failures = (eff: CpEffect[]) => deltas(eff).flatMap((d) => d.failures);

function ready(cp: ReturnType<typeof core>, eff: CpEffect[], fn: string, uid: string, nowMs: number): void {
  for (const c of creates(eff)) cp.handle({ kind: 'sandbox_ready', workerId: c.worker, sandbox: { ...info(c.id, fn, uid) }, creationMs: 1 }, nowMs);
}

describe('namespace quotas in the CP core', () => {
  it('refuses a sandbox past the sandboxes quota, names it, fails queued requests with quota_exceeded, resumes when raised', () => {
    const cp = core();
    cp.handle(quota({ sandboxes: 1 }), 0);
    const a = cp.handle({ kind: 'function_upserted', record: record('a.team-a', 'ua', { scaling: oneEach }) }, 0);
    assert.equal(creates(a).length, 1);
    ready(cp, a, 'a.team-a', 'ua', 10);
    const b = cp.handle({ kind: 'function_upserted', record: record('b.team-a', 'ub', { scaling: oneEach }) }, 20);
    assert.equal(creates(b).length, 0);
    assert.equal(cp.status('b.team-a')!.unschedulableReason, 'quota sandboxes of namespace team-a reached (1 of 1)');
    // The default namespace is not bound by team-a's quota.
    assert.equal(creates(cp.handle({ kind: 'function_upserted', record: record('c', 'uc', { scaling: oneEach }) }, 30)).length, 1);
    cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('b.team-a', 'ub', 0, 2) }, 40);
    const later = cp.tick(40 + config.unschedulableFailAfterMs);
    assert.deepEqual(failures(later).map((f) => [f.function, f.code]), [['b.team-a', 'quota_exceeded']]);
    assert.match(failures(later)[0]!.reason, /quota sandboxes of namespace team-a/);
    assert.deepEqual(cp.namespaceUsage('team-a'), { functions: 2, sandboxes: 1, cpuMillis: 500, memoryMiB: 256 });
    // Raised by one: b gets one sandbox, and still names the quota for the second it wants
    // (a quota throttles a function that serves too, as Lambda's concurrency limit does).
    const raised = cp.handle(quota({ sandboxes: 2 }), 3000);
    assert.equal(creates(raised).length, 1);
    assert.equal(cp.status('b.team-a')!.unschedulableReason, 'quota sandboxes of namespace team-a reached (2 of 2)');
    const room = cp.handle(quota({ sandboxes: 3 }), 3010);
    assert.equal(creates(room).length, 1);
    assert.equal(cp.status('b.team-a')!.unschedulableReason, undefined);
    cp.checkInvariants();
  });

  it('names the cpu and memory quotas', () => {
    const cp = core();
    cp.handle(quota({ cpuMillis: 400 }), 0);
    cp.handle({ kind: 'function_upserted', record: record('a.team-a', 'ua', { scaling: oneEach }) }, 0);
    assert.equal(cp.status('a.team-a')!.unschedulableReason, 'quota cpuMillis of namespace team-a reached (0 of 400)');
    cp.handle(quota({ memoryMiB: 100 }), 10);
    assert.equal(cp.status('a.team-a')!.unschedulableReason, 'quota memoryMiB of namespace team-a reached (0 of 100)');
  });

  it('lowering a quota stops no running sandbox; room from a deleted sandbox resumes placement', () => {
    const cp = core();
    const a = cp.handle({ kind: 'function_upserted', record: record('a.team-a', 'ua', { scaling: { ...oneEach, min: 2, initial: 2 } }) }, 0);
    assert.equal(creates(a).length, 2);
    ready(cp, a, 'a.team-a', 'ua', 10);
    const lowered = cp.handle(quota({ sandboxes: 1 }), 20);
    assert.deepEqual(deletes(lowered), []);
    assert.equal(cp.status('a.team-a')!.ready, 2);
    // One crashes: 1 of 1 left, so no replacement.
    const sb = creates(a)[0]!.id;
    const crashed = cp.handle({ kind: 'sandbox_failed', workerId: 'w1', sandboxId: sb, failure: 'crash', reason: 'x' }, 30);
    assert.equal(creates(crashed).length, 0);
    assert.equal(cp.namespaceUsage('team-a').sandboxes, 1);
    const raised = cp.handle(quota({ sandboxes: 3 }), 40);
    assert.equal(creates(raised).length, 1);
    cp.checkInvariants();
  });
});

const tok = (id: string, over: Partial<InvokeTokenMsg> = {}): InvokeTokenMsg => ({ id, sha256Hex: 'ab'.repeat(32), scope: 'invoke', namespace: 'team-a', ...over });

describe('invoke tokens in the CP routing table', () => {
  it('puts additions and changes in the next delta, removals in revokeTokens, and the whole set in snapshots', () => {
    const cp = core();
    const first = deltas(cp.handle({ kind: 'tokens_set', tokens: [tok('t1'), tok('t2')] }, 0));
    assert.deepEqual(first.map((d) => d.upsertTokens.map((t) => t.id)), [['t1', 't2']]);
    assert.deepEqual(deltas(cp.handle({ kind: 'tokens_set', tokens: [tok('t1'), tok('t2')] }, 1)), [], 'no change, no delta');
    const changed = deltas(cp.handle({ kind: 'tokens_set', tokens: [tok('t1', { scope: 'deploy' })] }, 2));
    assert.equal(changed.length, 1);
    assert.deepEqual(changed[0]!.upsertTokens.map((t) => [t.id, t.scope]), [['t1', 'deploy']]);
    assert.deepEqual(changed[0]!.revokeTokens, ['t2']);
    assert.equal(changed[0]!.version, first[0]!.version + 1);
    const hello = cp.handle({ kind: 'dp_connected', hello: { dataPlaneId: 'dp2', proxyAddress: 'p:2', internalAddress: 'i:2' } }, 3);
    const snap = hello.flatMap((e) => (e.kind === 'dp_send' && e.update.case === 'snapshot' ? [e.update.value] : []));
    assert.deepEqual(snap[0]!.tokens.map((t) => [t.id, t.scope]), [['t1', 'deploy']]);
    assert.equal(cp.routingAppliedEverywhere(cp.routing.version), false, 'the DPs have not acked the revoke yet');
  });
});

/**
 * Goal: whatever routing updates a control plane sends, once the codec has accepted them, the
 * data-plane core does not throw while requests come and go: snapshots and deltas naming unknown
 * functions or endpoints, endpoints moving between functions, drains of what is not there, odd
 * versions, failures for deleted functions. It guards the boundary between the codec and the core.
 * Method: fast-check sequences mixing schema-shaped hostile routing updates (through real protobuf
 * bytes and the codec) with admits, releases, retries (refused, reset), expiries and demand reports, in virtual time.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RoutingUpdateSchema, type RoutingUpdate } from '../../gen/dirigent/v1/cluster_pb.js';
import { decodeRoutingUpdate } from '../../wire/codec.js';
import { hostileDouble, hostileString, hostileUint, message, overTheWire } from '../../wire/schema-arbitrary.testkit.js';
import { DataPlaneCore, newWaiter, type DpEffect, type Waiter } from '../core/data-plane.js';
import { silentLogger } from '../../shared/logger.js';
import { seededRng } from '../../shared/rng.js';

/** Ids the core will have seen, so updates reach deep paths rather than stop at a lookup. */
const knownIds = fc.constantFrom('f', 'g', 'u1', 'u2', 's1', 's2', 's3', 'w1', 'a:1', 'sandbox_failure', 'unschedulable');
const ids = fc.oneof({ weight: 4, arbitrary: knownIds }, { weight: 1, arbitrary: hostileString });
/** Mostly plausible numbers (versions, counts, times), sometimes hostile ones. */
const plausible = fc.nat({ max: 1000 });
const leaves = {
  strings: ids,
  doubles: fc.oneof({ weight: 6, arbitrary: plausible }, { weight: 1, arbitrary: hostileDouble }),
  uints: fc.oneof({ weight: 6, arbitrary: plausible }, { weight: 1, arbitrary: hostileUint }),
};

/**
 * The codec checks the tenancy fields strictly (a spec's auth against a fixed set, every field
 * of a token, a DP peer's id and address): random text there makes it refuse most updates with a
 * function, token or peer, and the core would see too few. Specs get a valid auth derived from
 * the random one; token and peer lists become valid ones (hostile ones are the codec tests' subject).
 */
const validToken = (i: number) => ({ id: `t${i}`, sha256Hex: 'a'.repeat(64), scope: ['admin', 'deploy', 'invoke'][i % 3]!, namespace: 'team-a' });

function tenancyFieldsValid<T>(init: T): T {
  if (Array.isArray(init)) return init.map((v: unknown) => tenancyFieldsValid(v)) as T;
  if (init === null || typeof init !== 'object' || init instanceof Uint8Array) return init;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(init as Record<string, unknown>)) {
    if (k === 'auth' && typeof v === 'string') out[k] = v.length % 2 === 0 ? 'none' : 'token';
    else if ((k === 'tokens' || k === 'upsertTokens') && Array.isArray(v)) out[k] = v.slice(0, 3).map((_, i) => validToken(i));
    else if (k === 'revokeTokens' && Array.isArray(v)) out[k] = v.slice(0, 3).map((x) => `t${String(x).length % 4}`);
    else if ((k === 'peers' || k === 'upsertPeers') && Array.isArray(v)) out[k] = v.slice(0, 3).map((_, i) => ({ dataPlaneId: `dp${i}`, proxyAddress: `h:${i + 1}` }));
    else if (k === 'removePeers' && Array.isArray(v)) out[k] = v.slice(0, 3).map((x) => `dp${String(x).length % 4}`);
    else out[k] = tenancyFieldsValid(v);
  }
  return out as T;
}

const action = fc.oneof(
  { weight: 4, arbitrary: message(RoutingUpdateSchema, leaves).map((init) => ({ kind: 'routing' as const, init: tenancyFieldsValid(init) })) },
  { weight: 3, arbitrary: fc.constantFrom('f', 'g', 'h').map((fn) => ({ kind: 'admit' as const, fn })) },
  { weight: 2, arbitrary: fc.nat({ max: 20 }).map((i) => ({ kind: 'release' as const, i })) },
  { weight: 1, arbitrary: fc.nat({ max: 20 }).map((i) => ({ kind: 'cancel' as const, i })) },
  { weight: 1, arbitrary: fc.tuple(fc.nat({ max: 20 }), fc.constantFrom('refused' as const, 'reset' as const)).map(([i, cause]) => ({ kind: 'retry' as const, i, cause })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'demand' as const }) },
);

/** A sane starting table (two functions, three sandboxes) for the hostile updates to work on. */
const startingSnapshot = {
  update: {
    case: 'snapshot',
    value: {
      version: 1,
      functions: [{ name: 'f', uid: 'u1', port: 80, concurrency: 1, timeoutMs: 1000 }, { name: 'g', uid: 'u2', port: 80, concurrency: 0, timeoutMs: 1000 }],
      endpoints: [
        { sandboxId: 's1', function: 'f', functionUid: 'u1', address: 'a:1', workerId: 'w1' },
        { sandboxId: 's2', function: 'f', functionUid: 'u1', address: 'a:2', workerId: 'w1' },
        { sandboxId: 's3', function: 'g', functionUid: 'u2', address: 'a:3', workerId: 'w1' },
      ],
    },
  },
};

function dispatched(effects: DpEffect[]): Waiter[] {
  return effects.flatMap((e) => (e.kind === 'dispatch' ? [e.waiter] : []));
}

describe('data-plane core against a hostile control plane', () => {
  test('any sequence of accepted routing updates amid requests never makes the core throw', () => {
    let accepted = 0;
    let served = 0;
    fc.assert(fc.property(fc.array(fc.tuple(action, fc.nat({ max: 200 })), { minLength: 1, maxLength: 40 }), (steps) => {
      const c = new DataPlaneCore({ queueDepthMax: 3, queueWaitMsMax: 100, loadBalancing: 'least-loaded' }, seededRng(1), silentLogger);
      const start = decodeRoutingUpdate(overTheWire(RoutingUpdateSchema, startingSnapshot) as RoutingUpdate);
      assert.ok(start.ok && c.applyRouting(start.msg, 0).ok, JSON.stringify(start));
      const waiters: Waiter[] = [];
      let nowMs = 0;
      for (const [a, advanceMs] of steps) {
        nowMs += advanceMs;
        assert.doesNotThrow(() => {
          c.expire(nowMs);
          if (a.kind === 'routing') {
            const wire = overTheWire(RoutingUpdateSchema, a.init);
            const d = wire === null ? null : decodeRoutingUpdate(wire as RoutingUpdate);
            if (d?.ok) accepted += 1;
            if (d?.ok) waiters.push(...dispatched(c.applyRouting(d.msg, nowMs).effects));
          } else if (a.kind === 'admit') {
            const w = newWaiter(a.fn, nowMs);
            waiters.push(w);
            if (c.admit(a.fn, w, nowMs).kind === 'dispatched') served += 1;
          } else if (a.kind === 'release' && waiters.length > 0) {
            waiters.push(...dispatched(c.release(waiters[a.i % waiters.length]!, nowMs)));
          } else if (a.kind === 'cancel' && waiters.length > 0) {
            waiters.push(...dispatched(c.cancel(waiters[a.i % waiters.length]!, nowMs)));
          } else if (a.kind === 'retry' && waiters.length > 0) {
            waiters.push(...dispatched(c.retry(waiters[a.i % waiters.length]!, nowMs, a.cause)));
          } else if (a.kind === 'demand') {
            c.takeDemand(nowMs);
          }
        }, JSON.stringify(a));
      }
    }), { numRuns: 500 });
    // Not so hostile that nothing gets through: tables are built and requests dispatched.
    assert.ok(accepted > 100 && served > 10, `accepted ${accepted} updates, dispatched ${served} requests`);
  });
});

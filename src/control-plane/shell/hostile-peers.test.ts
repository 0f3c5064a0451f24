/**
 * Goal: whatever workers and data planes send, once the codec has accepted it, the control-plane
 * core does not throw: ids that name nothing, sandboxes of unknown functions, a hello reusing
 * another peer's id, demand for deleted functions, out-of-order acks. Found nothing at the time of
 * writing; it guards the boundary between the codec and the core. Method: fast-check sequences of
 * schema-shaped hostile messages (ids drawn mostly from the ones the core knows), through real
 * protobuf bytes, the codec and the shell's event mapping, into a core in virtual time.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DataPlaneEventSchema, WorkerEventSchema } from '../../gen/dirigent/v1/cluster_pb.js';
import { decodeDataPlaneEvent, decodeWorkerEvent } from '../../wire/codec.js';
import { hostileDouble, hostileString, hostileUint, message, overTheWire } from '../../wire/schema-arbitrary.testkit.js';
import { dataPlaneEventToCp, workerEventToCp } from './peer-events.js';
import { core, record } from '../core/testkit.js';
import type { DataPlaneEvent, WorkerEvent } from '../../gen/dirigent/v1/cluster_pb.js';

/** Ids the core knows, so generated messages reach deep paths rather than stop at a lookup. */
const knownIds = fc.constantFrom('w1', 'w2', 'dp1', 'dp2', 'f', 'g', 'u1', 'u2', 's1', 's2', 'w1:1', 'process', 'crash', 'create');
const ids = fc.oneof({ weight: 4, arbitrary: knownIds }, { weight: 1, arbitrary: hostileString });
/** Mostly plausible numbers (versions, counts, times), sometimes hostile ones. */
const plausible = fc.nat({ max: 1000 });
const leaves = {
  strings: ids,
  doubles: fc.oneof({ weight: 6, arbitrary: plausible }, { weight: 1, arbitrary: hostileDouble }),
  uints: fc.oneof({ weight: 6, arbitrary: plausible }, { weight: 1, arbitrary: hostileUint }),
};

const peerMessage = fc.oneof(
  fc.tuple(fc.constantFrom('w1', 'w2'), message(WorkerEventSchema, leaves)).map(([peer, init]) => ({ side: 'worker' as const, peer, init })),
  fc.tuple(fc.constantFrom('dp1', 'dp2'), message(DataPlaneEventSchema, leaves)).map(([peer, init]) => ({ side: 'dp' as const, peer, init })),
);
const step = fc.tuple(peerMessage, fc.nat({ max: 5_000 }));

describe('control-plane core against hostile peers', () => {
  test('any sequence of accepted worker and data-plane messages never makes the core throw', () => {
    const accepted = { worker: 0, dp: 0 };
    fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 30 }), (steps) => {
      const cp = core();
      cp.handle({ kind: 'function_upserted', record: record('f', 'u1') }, 0);
      cp.handle({ kind: 'function_upserted', record: record('g', 'u2', { concurrency: 0 }) }, 0);
      let nowMs = 0;
      for (const [m, advanceMs] of steps) {
        nowMs += advanceMs;
        if (m.side === 'worker') {
          const wire = overTheWire(WorkerEventSchema, m.init);
          const d = wire === null ? null : decodeWorkerEvent(wire as WorkerEvent);
          if (d?.ok) accepted.worker += 1;
          if (d?.ok) assert.doesNotThrow(() => cp.handle(workerEventToCp(m.peer, d.msg), nowMs), JSON.stringify(d.msg));
        } else {
          const wire = overTheWire(DataPlaneEventSchema, m.init);
          const d = wire === null ? null : decodeDataPlaneEvent(wire as DataPlaneEvent);
          if (d?.ok) accepted.dp += 1;
          if (d?.ok) assert.doesNotThrow(() => cp.handle(dataPlaneEventToCp(m.peer, d.msg), nowMs), JSON.stringify(d.msg));
        }
      }
    }), { numRuns: 500 });
    // Not so hostile that nothing gets through to the core.
    assert.ok(accepted.worker > 500 && accepted.dp > 500, JSON.stringify(accepted));
  });
});

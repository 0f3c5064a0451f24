/**
 * @module sim/fencing
 * The data plane's side of a routing batch, as `data-plane/shell/cp-link.ts` and
 * `data-plane/main.ts` handle it: the batch's term goes to the core's fence first (a stale batch
 * is ignored whole: no apply, no ack, no resync), then every update is applied and acknowledged.
 *
 * Fencing invariant (asserted where the update is applied): no DP applies a routing update of a
 * term lower than one it has received before. The sim keeps its own record of the highest term
 * each DP process received (`termDelivered`), independent of the core's, so a fence that
 * forgets its term (or a shell that skips it) fails here.
 */
import type { RoutingUpdateMsg, WorkerCommandMsg } from '../api/cluster.js';
import type { RoutingBatch, WorkerCommandBatch } from '../gen/dirigent/v1/cluster_pb.js';
import { assert } from '../shared/assert.js';
import {
  decodeBatchHeader, decodeRoutingUpdate, encodeDataPlaneEvent, encodeRoutingBatch, encodeRoutingUpdate, encodeWorkerCommand,
  encodeWorkerCommandBatch,
} from '../wire/codec.js';
import type { Cluster, SimDataPlane } from './cluster.js';

/**
 * `reply`: acks and resyncs go back on the DP's stream. A late batch from a paused old leader
 * came on that leader's old stream, so whatever the DP answers is lost with it (`reply` false).
 */
export function deliverRouting(c: Cluster, dp: SimDataPlane, batch: RoutingBatch, nowMs: number, reply: boolean): void {
  const header = decodeBatchHeader(batch);
  if (!header.ok) throw new Error(`CP sent ${dp.id} an invalid ${header.field}: ${header.reason}`);
  const term = header.msg.term;
  const seenBefore = dp.termDelivered;
  dp.termDelivered = Math.max(seenBefore, term);
  if (dp.core.admitTerm(term) === 'stale') {
    c.countFault('stale_routing_ignored');
    return;
  }
  for (const update of batch.updates) {
    const decoded = decodeRoutingUpdate(update);
    if (!decoded.ok) throw new Error(`CP sent ${dp.id} an invalid ${decoded.field}: ${decoded.reason}`);
    assert(term >= seenBefore, `${dp.id} applied a routing update of term ${term} after seeing term ${seenBefore}`);
    const applied = dp.core.applyRouting(decoded.msg, nowMs);
    if (reply) {
      // The shell acks once per event-loop turn with the newest version; one per update is
      // the same to the core, which keeps the maximum.
      const ev = applied.ok
        ? encodeDataPlaneEvent({ case: 'ack', value: { version: dp.core.version } })
        : encodeDataPlaneEvent({ case: 'resync', value: { haveVersion: dp.core.version } });
      c.dpSend(dp, ev, nowMs);
    }
    c.runEffects(dp, applied.effects, nowMs);
  }
}

/** One command in a batch with the sending leader's term, as the CP's rpc-server writes it. */
export function commandBatch(term: number, command: WorkerCommandMsg): WorkerCommandBatch {
  return encodeWorkerCommandBatch({ term, leaderAddress: '' }, [encodeWorkerCommand(command)]);
}

/** One routing update in a batch with the sending leader's term. */
export function routingBatch(term: number, update: RoutingUpdateMsg): RoutingBatch {
  return encodeRoutingBatch({ term, leaderAddress: '' }, [encodeRoutingUpdate(update)]);
}

/**
 * @module data-plane/core/routing-acks
 * Which applied routing updates the CP is waiting to hear about. The CP answers an API call that
 * changed functions, tokens or peers once every DP acknowledged the version holding the change
 * (`routingAppliedEverywhere`), so those acks go at once. A delta that only moves endpoints (a
 * sandbox ready, draining or gone) has no such waiter: the CP learns of drained sandboxes from
 * `drained`, not from acks. Its ack can wait and carry the versions applied meanwhile.
 */
import type { RoutingUpdateMsg } from '../../api/cluster.js';

/** The delta's lists that only move endpoints; any other non-empty list needs a prompt ack. */
const endpointOnlyFields: ReadonlySet<string> = new Set(['addEndpoints', 'removeEndpoints', 'drainEndpoints']);

/**
 * True for a snapshot, and for a delta that changes anything beyond endpoints. The delta's lists
 * are checked by name, so a list added to the delta later is prompt unless it is listed above.
 */
export function needsPromptAck(update: RoutingUpdateMsg): boolean {
  if (update.case !== 'delta') return true;
  const delta = update.value as unknown as Record<string, unknown>;
  for (const key in delta) {
    const value = delta[key];
    if (Array.isArray(value) && value.length > 0 && !endpointOnlyFields.has(key)) return true;
  }
  return false;
}

/**
 * @module control-plane/store/idle-history
 * An idle history read back from a store is another process's bytes: checked here, at the
 * boundary, before the core trusts its counts. A malformed one is dropped and counted (the CP
 * logs the count; the function learns its idle times again), never thrown on: one bad row must
 * not keep a CP from leading.
 */
import type { IdleHistoryRecord } from '../../api/types.js';
import { scalingLimits } from '../../config/defaults.js';
import { keepAliveBinCount } from '../../policy/autoscaler/keep-alive.js';

/** A bin's count stays under this (the policy halves every bin when one reaches 0xffff). */
const idleBinCountMax = 0xffff;

const isCount = (v: unknown, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;

/** The record in `body` (JSON), or null when it is not one. */
export function parseIdleHistory(body: string): IdleHistoryRecord | null {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const r = v as Record<string, unknown>;
  if (typeof r.function !== 'string' || r.function === '' || typeof r.functionUid !== 'string') return null;
  const windowS = r.windowS;
  if (typeof windowS !== 'number' || !(windowS > 0 && windowS <= scalingLimits.keepAliveWindowS[1])) return null;
  const bins = r.bins;
  // One bin per started minute of the window, as the policy counts them.
  if (!Array.isArray(bins) || bins.length !== keepAliveBinCount(windowS) || !bins.every((c) => isCount(c, idleBinCountMax))) return null;
  if (!isCount(r.samples, Number.MAX_SAFE_INTEGER) || !isCount(r.outOfRange, Number.MAX_SAFE_INTEGER)) return null;
  const sum = (bins as number[]).reduce((a, c) => a + c, 0);
  if (sum !== r.samples) return null;
  return { function: r.function, functionUid: r.functionUid, windowS, bins: bins as number[], samples: r.samples, outOfRange: r.outOfRange };
}

/** The records among `bodies` (JSON), and how many malformed ones were left out. */
export function parseIdleHistories(bodies: readonly string[]): { idleHistories: IdleHistoryRecord[]; idleHistoriesDropped: number } {
  const idleHistories: IdleHistoryRecord[] = [];
  for (const body of bodies) {
    const r = parseIdleHistory(body);
    if (r) idleHistories.push(r);
  }
  return { idleHistories, idleHistoriesDropped: bodies.length - idleHistories.length };
}

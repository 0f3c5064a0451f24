/**
 * @module sim/checkers
 * Invariants of a simulated cluster. `checkStep` runs after every step (safety: must hold at
 * every instant, under any fault of the model in `network.ts`); `checkSettled` runs once at
 * the end of the quiet phase (liveness: a healed cluster with no load must have converged).
 * Each returns the first violation as a string, or null.
 *
 * Safety, every step:
 *  S1 the CP core's own invariants (`checkInvariants`: allocation = sum of its sandboxes'
 *     resources, counters = sandbox states, routing table = ready sandboxes);
 *  S2 the CP never places beyond a worker's capacity: the resources of its creating and ready
 *     sandboxes ≤ capacity (draining leftovers a reconnecting worker still runs may exceed it);
 *  S3 per DP endpoint: the core's inflight equals the requests the clients see running on it,
 *     and never exceeds its slots (the function's concurrency; 0 = unlimited);
 *  S4 per function: min ≤ desired ≤ max; and ready + creating ≤ max, where draining sandboxes
 *     are not counted (scale-down keeps them until their requests end). The upper bound is
 *     excused for a settle window after any event that lets the CP learn of sandboxes it did not
 *     create (a worker hello, a CP restart, a worker marked unschedulable): adopting them can
 *     overshoot max legitimately until the next scale-down; that window is one stable window
 *     plus the longest creation plus a tick;
 *  S5 every request is answered at most once (asserted in the ledger);
 *  S6 no DP function has a negative in-flight level, queued count or demand level; the DP's
 *     totals (what its metrics read) are the functions' queued sum and at least their in-flight sum;
 *  S7 no worker stops a sandbox (on its core's order, not a crash) while a request runs on it,
 *     unless the request, or the CP's drain of the sandbox, has lasted past the drain limit
 *     (drain before delete; a DP partitioned from the CP may route to it after the drain began).
 * Liveness, after the quiet phase:
 *  L1 no accepted request is still pending (none lost from a queue: every admitted request
 *     ended served or failed with a status); every DP queue and inflight count, and total, is 0;
 *  L2 every DP's functions and per-function endpoint ids equal the CP routing table, at the
 *     same version;
 *  L3 per function: desired = ready, creating = 0, draining = 0, min ≤ ready ≤ max;
 *  L4 every worker runs exactly the sandboxes the CP attributes to it (no orphans, no ghosts),
 *     and every link is connected.
 */
import type { Cluster } from './cluster.js';

export function checkStep(c: Cluster): string | null {
  try {
    c.cp.checkInvariants();
  } catch (e) {
    return `S1 cp.checkInvariants: ${(e as Error).message}`;
  }
  return checkCapacity(c) ?? checkSlots(c) ?? checkScale(c) ?? checkLevels(c) ?? checkDrains(c);
}

function checkLevels(c: Cluster): string | null {
  for (const dp of c.dps) {
    if (dp.down) continue;
    let inflight = 0;
    let queued = 0;
    for (const fn of dp.core.functions.values()) {
      if (fn.inflight < 0 || fn.queued < 0 || fn.level < 0) {
        return `S6 ${dp.id} ${fn.name} inflight ${fn.inflight} queued ${fn.queued} level ${fn.level}`;
      }
      inflight += fn.inflight;
      queued += fn.queued;
    }
    // The totals the metrics read: queued ones only on live functions (a delete fails them at
    // once); in-flight ones also on deleted functions still settling.
    if (dp.core.queuedTotal !== queued || dp.core.inflightTotal < inflight) {
      return `S6 ${dp.id} totals: queued ${dp.core.queuedTotal} (functions ${queued}), inflight ${dp.core.inflightTotal} (functions ${inflight})`;
    }
  }
  return null;
}

/** The CP's drain limit: a request may outlive its sandbox only past it. */
function drainLimitMs(c: Cluster): number {
  return c.options.cp.drainTimeoutMs;
}

function checkDrains(c: Cluster): string | null {
  for (const sb of c.cp.sandboxes.values()) {
    if (sb.state === 'draining' && !c.drainsSeen.has(sb.id)) c.drainsSeen.set(sb.id, sb.drainStartedAtMs);
  }
  const stopped = c.stoppedSandboxes.splice(0);
  if (!c.options.checkDrains) return null;
  for (const s of stopped) {
    for (const r of c.ledger.pending) {
      const ep = r.endpoint;
      if (!ep || ep.id !== s.sandboxId || ep.workerId !== s.workerId) continue;
      // A request may outlive the drain limit (it ran that long, or a DP cut off from the CP
      // kept routing to the sandbox after the drain began); before that the stop is a bug.
      const ranMs = s.atMs - r.startedAtMs;
      const drainedMs = s.drainStartedAtMs === null ? 0 : s.atMs - s.drainStartedAtMs;
      if (ranMs < drainLimitMs(c) && drainedMs < drainLimitMs(c)) {
        return `S7 ${s.workerId} stopped ${s.sandboxId} at ${s.atMs} while request #${r.id} ${r.fn} ran on it for ${ranMs} ms`;
      }
    }
  }
  return null;
}

/**
 * Placement never exceeds a worker's capacity. Sandboxes draining are left out: leftovers a
 * reconnecting worker still runs are tracked (they occupy it) even when they no longer fit.
 */
function checkCapacity(c: Cluster): string | null {
  const live = new Map<string, { cpuMillis: number; memoryMiB: number }>();
  for (const sb of c.cp.sandboxes.values()) {
    if (sb.state === 'draining') continue;
    const a = live.get(sb.workerId) ?? { cpuMillis: 0, memoryMiB: 0 };
    a.cpuMillis += sb.resources.cpuMillis;
    a.memoryMiB += sb.resources.memoryMiB;
    live.set(sb.workerId, a);
  }
  for (const w of c.cp.workers.values()) {
    const a = live.get(w.id) ?? { cpuMillis: 0, memoryMiB: 0 };
    if (a.cpuMillis > w.capacity.cpuMillis || a.memoryMiB > w.capacity.memoryMiB) {
      return `S2 worker ${w.id} allocated ${JSON.stringify(a)} > ${JSON.stringify(w.capacity)}`;
    }
  }
  return null;
}

function checkSlots(c: Cluster): string | null {
  for (const [ep, n] of c.ledger.inflight) {
    if (ep.inflight !== n) return `S3 endpoint ${ep.id} inflight ${ep.inflight}, clients see ${n}`;
    if (ep.slots > 0 && n > ep.slots) {
      return `S3 endpoint ${ep.id} has ${n} in flight > ${ep.slots} slots`;
    }
  }
  for (const dp of c.dps) {
    if (dp.down) continue; // a dead DP's core is garbage; it restarts with a new one
    for (const ep of dp.core.endpoints.values()) {
      if (ep.inflight !== (c.ledger.inflight.get(ep) ?? 0)) {
        return `S3 endpoint ${ep.id} on ${dp.id} inflight ${ep.inflight} without client requests`;
      }
    }
  }
  return null;
}

function checkScale(c: Cluster): string | null {
  const risky = [...c.cp.workers.values()].some((w) => w.connected && !w.schedulable);
  if (risky) c.lastAdoptionRiskMs = c.nowMs;
  for (const fn of c.cp.functions.values()) {
    const s = fn.record.spec.scaling;
    const name = fn.record.spec.name;
    if (fn.desired < s.min || fn.desired > s.max) {
      return `S4 ${name} desired ${fn.desired} outside [${s.min}, ${s.max}]`;
    }
    const windowMs = s.stableWindowS * 1000 + creationMsMax(c) + s.tickS * 1000 + 1000;
    const excused = c.nowMs - c.lastAdoptionRiskMs < windowMs;
    if (!excused && fn.ready + fn.creating > s.max) {
      return `S4 ${name} ready ${fn.ready} + creating ${fn.creating} > max ${s.max}`;
    }
  }
  return null;
}

function creationMsMax(c: Cluster): number {
  const cr = c.options.creation;
  return Math.max(cr.createMs[1] * cr.slowFactor[1], c.options.cp.creationTimeoutMs);
}

export function checkSettled(c: Cluster): string | null {
  return checkRequests(c) ?? checkRouting(c) ?? checkFunctions(c) ?? checkWorkers(c);
}

function checkRequests(c: Cluster): string | null {
  if (c.ledger.pending.size > 0) {
    const r = [...c.ledger.pending][0]!;
    const n = c.ledger.pending.size;
    return `L1 ${n} requests pending, e.g. #${r.id} ${r.fn} accepted at ${r.acceptedAtMs}`;
  }
  for (const dp of c.dps) {
    for (const fn of dp.core.functions.values()) {
      if (fn.queued !== 0 || fn.inflight !== 0) {
        return `L1 ${dp.id} ${fn.name} queued ${fn.queued} inflight ${fn.inflight}`;
      }
    }
    if (dp.core.queuedTotal !== 0 || dp.core.inflightTotal !== 0) {
      return `L1 ${dp.id} totals: queued ${dp.core.queuedTotal} inflight ${dp.core.inflightTotal}`;
    }
  }
  return null;
}

function checkRouting(c: Cluster): string | null {
  const want = new Map<string, string[]>();
  for (const fn of c.cp.functions.values()) want.set(fn.record.spec.name, []);
  for (const sb of c.cp.sandboxes.values()) if (sb.state === 'ready') want.get(sb.fn)!.push(sb.id);
  for (const dp of c.dps) {
    if (dp.core.version !== c.cp.routing.version) {
      return `L2 ${dp.id} at version ${dp.core.version}, CP at ${c.cp.routing.version}`;
    }
    const names = [...dp.core.functions.keys()].sort().join(',');
    if (names !== [...want.keys()].sort().join(',')) return `L2 ${dp.id} functions ${names}`;
    for (const [name, ids] of want) {
      const have = dp.core.functions.get(name)!.endpoints.map((e) => e.id).sort().join(',');
      if (have !== ids.sort().join(',')) {
        return `L2 ${dp.id} ${name} endpoints [${have}] != [${ids}]`;
      }
    }
  }
  return null;
}

function checkFunctions(c: Cluster): string | null {
  for (const fn of c.cp.functions.values()) {
    const s = fn.record.spec.scaling;
    const name = fn.record.spec.name;
    if (fn.desired !== fn.ready || fn.creating !== 0 || fn.draining !== 0) {
      const st = `ready ${fn.ready} creating ${fn.creating} draining ${fn.draining}`;
      return `L3 ${name} not settled: desired ${fn.desired} ${st}`;
    }
    if (fn.ready < s.min || fn.ready > s.max) {
      return `L3 ${name} ready ${fn.ready} outside [${s.min}, ${s.max}]`;
    }
  }
  return null;
}

function checkWorkers(c: Cluster): string | null {
  for (const w of c.workers.values()) {
    const cpw = c.cp.workers.get(w.id);
    const link = c.workerNet.links.get(w.id)!;
    if (!w.alive || !link.connected || !cpw || !cpw.connected || !cpw.schedulable) {
      return `L4 worker ${w.id} not back: alive ${w.alive} link ${link.connected}`;
    }
    const have = [...w.running.keys()].sort().join(',');
    const want = [...cpw.sandboxes].sort().join(',');
    if (have !== want || w.creating.size > 0) {
      return `L4 worker ${w.id} runs [${have}] creating ${w.creating.size}, CP has [${want}]`;
    }
  }
  for (const dp of c.dps) if (!dp.link.connected) return `L4 ${dp.id} not connected`;
  return null;
}

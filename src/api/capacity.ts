/**
 * @module api/capacity
 * Whether a cluster's capacity binds: the share of CPU or memory allocated on its schedulable
 * workers, read from `GET /v1/cluster`, and the placements refused during a run. `dirigent
 * cluster status` prints both, and `bench cold` warns with them, so a benchmark capped by the
 * node size says so instead of reporting slow cold starts.
 */

export interface WorkerCapacityView {
  schedulable: boolean;
  capacity: { cpuMillis: number; memoryMiB: number };
  allocated: { cpuMillis: number; memoryMiB: number };
}

/** What a bench reads of `GET /v1/cluster`: the workers, and the placements refused so far. */
export interface ClusterCapacityView {
  workers: WorkerCapacityView[];
  /** Absent from a CP older than the field. */
  placementRefusals?: { total: number; lastReason: string };
}

/** From this share of CPU or memory allocated, new sandboxes may no longer fit. */
export const capacityBindsAtFraction = 0.9;

const advice = 'new sandboxes may not fit: give workers a larger node (--worker-cpu-millis / ' +
  '--worker-memory-mib, or the worker\'s --cpu-millis / --memory-mib) or add workers';

/** A sentence naming the bound resource, or null when the cluster has room. */
export function capacityBinding(workers: readonly WorkerCapacityView[]): string | null {
  const usable = workers.filter((w) => w.schedulable);
  if (usable.length === 0) return workers.length === 0 ? 'no worker registered' : 'no schedulable worker';
  const sum = (pick: (w: WorkerCapacityView) => number): number => usable.reduce((s, w) => s + pick(w), 0);
  const resources = [
    { name: 'CPU', unit: 'millis', used: sum((w) => w.allocated.cpuMillis), cap: sum((w) => w.capacity.cpuMillis) },
    { name: 'memory', unit: 'MiB', used: sum((w) => w.allocated.memoryMiB), cap: sum((w) => w.capacity.memoryMiB) },
  ];
  const bound = resources.filter((r) => r.cap <= 0 || r.used / r.cap >= capacityBindsAtFraction);
  if (bound.length === 0) return null;
  const n = usable.length;
  const parts = bound.map((r) => `${r.name} ${r.cap <= 0 ? 100 : Math.floor((100 * r.used) / r.cap)}% allocated ` +
    `(${r.used.toLocaleString('en-US')} of ${r.cap.toLocaleString('en-US')} ${r.unit})`);
  return `${parts.join(', ')} on ${n} schedulable worker${n === 1 ? '' : 's'}: ${advice}`;
}

/**
 * Placements no worker could take between two reads of the cluster (before and after a run): a
 * sentence, or null when there were none or either read lacks the count. The capacity may have
 * bound for a moment only (the sandboxes of a run's first seconds end before its last ones
 * start), so a run's end can look roomy after cold starts waited for room. A count lower after
 * than before means another leader took over meanwhile; its count since then is used.
 */
export function refusalsBetween(before: ClusterCapacityView | null, after: ClusterCapacityView | null): string | null {
  const a = before?.placementRefusals;
  const b = after?.placementRefusals;
  if (a === undefined || b === undefined) return null;
  const n = b.total >= a.total ? b.total - a.total : b.total;
  if (n === 0) return null;
  return `${n.toLocaleString('en-US')} placement${n === 1 ? '' : 's'} found no worker able to take the sandbox ` +
    `during the run (last: ${b.lastReason}): ${advice}`;
}

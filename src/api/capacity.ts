/**
 * @module api/capacity
 * Whether a cluster's capacity binds: the share of CPU or memory allocated on its schedulable
 * workers, read from `GET /v1/cluster`. `dirigent cluster status` prints it, and `bench cold`
 * warns with it, so a benchmark capped by the node size says so instead of reporting slow
 * cold starts.
 */

export interface WorkerCapacityView {
  schedulable: boolean;
  capacity: { cpuMillis: number; memoryMiB: number };
  allocated: { cpuMillis: number; memoryMiB: number };
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

/**
 * @module shared/process-metrics
 * prom-client's default process metrics (CPU, memory, heap, handles, GC, versions) for one
 * component's registry, without prom-client's event-loop lag family. That family runs a
 * perf_hooks monitor of its own, a timer waking the process every 10 ms, beside ours
 * (shared/loop-delay, every 2 ms, one per process), to report the same figure: measured on this
 * project's 2-core VM, 3.5-4 ms of CPU per second per idle process.
 *
 * prom-client has no option to leave one family out, so its default metrics are registered one
 * by one from `collectDefaultMetrics.metricsList`, each from its module in prom-client's
 * `lib/metrics` (the names are that list's; a version that moved them fails the first start,
 * and `metrics-names.test` checks what a scrape shows).
 *
 * Several families set all their metrics from one member's collect (heap used from the heap
 * total's, CPU user and system from the total's): `metricFamily` names a metric's siblings so
 * that a scrape of one name (shared/metrics-select) collects them.
 */
import { createRequire } from 'node:module';
import client from 'prom-client';

/** The default families left out: the loop-lag one (see the module header). */
const skipped = new Set(['eventLoopLag']);

type DefaultMetric = ((registry: client.Registry, config: { prefix: string }) => void) & { metricNames?: string[] };

const load = createRequire(import.meta.url);
let families: DefaultMetric[] | null = null;
/** Per registry: each process metric's name to the names of its family (itself included). */
const familiesByRegistry = new WeakMap<client.Registry, Map<string, readonly string[]>>();

/** prom-client's default metrics but the loop-lag family, named `${prefix}...`, into `registry`. */
export function collectProcessMetrics(registry: client.Registry, prefix: string): void {
  families ??= client.collectDefaultMetrics.metricsList
    .filter((name) => !skipped.has(name))
    .map((name) => load(`prom-client/lib/metrics/${name}.js`) as DefaultMetric);
  let byName = familiesByRegistry.get(registry);
  if (!byName) familiesByRegistry.set(registry, (byName = new Map()));
  for (const family of families) {
    family(registry, { prefix });
    const names = (family.metricNames ?? []).map((n) => prefix + n);
    for (const n of names) byName.set(n, names);
  }
}

/** The metrics collected together with `name` (its family, itself included); [name] for any other. */
export function metricFamily(registry: client.Registry, name: string): readonly string[] {
  return familiesByRegistry.get(registry)?.get(name) ?? [name];
}

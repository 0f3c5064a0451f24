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
 */
import { createRequire } from 'node:module';
import client from 'prom-client';

/** The default families left out: the loop-lag one (see the module header). */
const skipped = new Set(['eventLoopLag']);

type DefaultMetric = (registry: client.Registry, config: { prefix: string }) => void;

const load = createRequire(import.meta.url);
let families: DefaultMetric[] | null = null;

/** prom-client's default metrics but the loop-lag family, named `${prefix}...`, into `registry`. */
export function collectProcessMetrics(registry: client.Registry, prefix: string): void {
  families ??= client.collectDefaultMetrics.metricsList
    .filter((name) => !skipped.has(name))
    .map((name) => load(`prom-client/lib/metrics/${name}.js`) as DefaultMetric);
  for (const family of families) family(registry, { prefix });
}

/**
 * @module shared/metrics-select
 * `/metrics?name=a&name=b`: only the named metrics, so a poller that wants a few gauges (the
 * bench reads the event-loop delay twice a second) does not make the process collect all of
 * them. Collecting everything cost a component 1.2-2.5 ms of CPU on a 2-vCPU VM
 * (process.memoryUsage, /proc reads; measured while prom-client's loop-lag family, since left
 * out by shared/process-metrics, was still collected), enough to show up as a stall in the very
 * delay being measured. Without `name` the whole registry is served, as Prometheus expects.
 */
import type { ServerResponse } from 'node:http';
import type client from 'prom-client';
import { ErrorCode } from '../api/types.js';
import { metricFamily } from './process-metrics.js';

/** Most names one request may ask for; a longer list is refused, not truncated. */
export const metricNamesPerRequestMax = 64;
/** Prometheus metric names; longer ones are not ours. */
const metricNamePattern = /^[a-zA-Z_:][a-zA-Z0-9_:]{0,199}$/;

export type MetricsSelection =
  | { kind: 'all' }
  | { kind: 'names'; names: string[] }
  | { kind: 'invalid'; field: 'name'; message: string };

/** What a /metrics query asks for: `name` (or `name[]`), repeated; any other parameter is ignored. */
export function metricsSelection(query: URLSearchParams): MetricsSelection {
  const names = [...query.getAll('name'), ...query.getAll('name[]')];
  if (names.length === 0) return { kind: 'all' };
  if (names.length > metricNamesPerRequestMax) {
    return { kind: 'invalid', field: 'name', message: `at most ${metricNamesPerRequestMax} metric names per request, got ${names.length}` };
  }
  const bad = names.find((n) => !metricNamePattern.test(n));
  if (bad !== undefined) {
    return { kind: 'invalid', field: 'name', message: `not a metric name: ${JSON.stringify(bad.slice(0, 64))} (letters, digits, _ and :, not starting with a digit)` };
  }
  return { kind: 'names', names: [...new Set(names)] };
}

/** A selection that was valid. */
export type SelectedMetrics = Exclude<MetricsSelection, { kind: 'invalid' }>;

/** The exposition text of what `selection` names; names the registry does not have are left out. */
export async function metricsText(registry: client.Registry, selection: SelectedMetrics): Promise<string> {
  if (selection.kind === 'all') return registry.metrics();
  const parts: string[] = [];
  for (const name of selection.names) {
    if (registry.getSingleMetric(name) === undefined) continue;
    // A family that sets all its values in one member's collect: run the others' collect first.
    for (const sibling of metricFamily(registry, name)) if (sibling !== name) await registry.getSingleMetric(sibling)?.get();
    parts.push(await registry.getSingleMetricAsString(name));
  }
  return parts.length === 0 ? '' : `${parts.join('\n')}\n`;
}

/** The path of a request target and its query; null for a target that is not a path. */
export function splitTarget(target: string): { path: string; query: URLSearchParams } | null {
  if (!target.startsWith('/')) return null;
  const q = target.indexOf('?');
  return q < 0 ? { path: target, query: new URLSearchParams() } : { path: target.slice(0, q), query: new URLSearchParams(target.slice(q + 1)) };
}

/**
 * Answers a /metrics request on a plain Node HTTP server (the DP's internal port, a worker's
 * health port): 200 with the selected text, 400 naming `name` for a bad selection, 500 when
 * collecting failed.
 */
export function serveMetrics(registry: client.Registry, query: URLSearchParams, res: ServerResponse): void {
  const selection = metricsSelection(query);
  if (selection.kind === 'invalid') {
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: ErrorCode.invalidField, message: selection.message, field: selection.field } }));
    return;
  }
  metricsText(registry, selection).then((text) => {
    res.writeHead(200, { 'content-type': registry.contentType });
    res.end(text);
  }, () => {
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: ErrorCode.internal, message: 'metrics unavailable' } }));
  });
}

/**
 * @module control-plane/shell/metrics
 * The CP's Prometheus metrics: counters fed by the runtime, gauges read from the core on scrape.
 */
import client from 'prom-client';
import type { ControlPlaneCore } from '../core/control-plane.js';
import { registerLoopDelayMetrics } from '../../shared/loop-delay.js';
import { defaultMetricsPrefix } from '../../shared/metric-prefix.js';
import { collectProcessMetrics } from '../../shared/process-metrics.js';

export interface CpMetrics {
  registry: client.Registry;
  onFailure(): void;
  onReady(creationMs: number): void;
  /** Stops the event-loop delay monitor this registry holds (on close). */
  close(): void;
}

export function createMetrics(core: ControlPlaneCore): CpMetrics {
  const registry = new client.Registry();
  collectProcessMetrics(registry, defaultMetricsPrefix.controlPlane);
  const stopLoopDelay = registerLoopDelayMetrics(registry);
  const failures = new client.Counter({ name: 'dirigent_sandbox_failures_total', help: 'Sandbox creations or runs that failed', registers: [registry] });
  const created = new client.Counter({ name: 'dirigent_sandboxes_created_total', help: 'Sandboxes that became ready', registers: [registry] });
  const creation = new client.Histogram({
    name: 'dirigent_sandbox_creation_seconds',
    help: 'Sandbox creation time on the worker (runtime start plus readiness)',
    buckets: [0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12],
    registers: [registry],
  });
  new client.Gauge({
    name: 'dirigent_functions', help: 'Registered functions', registers: [registry],
    collect() { this.set(core.functions.size); },
  });
  new client.Gauge({
    name: 'dirigent_sandboxes', help: 'Sandboxes by state', labelNames: ['state'], registers: [registry],
    collect() {
      const counts = { creating: 0, ready: 0, draining: 0 };
      for (const sb of core.sandboxes.values()) counts[sb.state] += 1;
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
    },
  });
  new client.Counter({
    name: 'dirigent_scale_decisions_total',
    help: 'Autoscaler decisions that changed a function\'s desired sandboxes, by direction (from_zero and to_zero are included in up and down)',
    labelNames: ['direction'],
    registers: [registry],
    collect() {
      const c = core.scaleDecisions;
      this.reset();
      this.inc({ direction: 'up' }, c.up);
      this.inc({ direction: 'down' }, c.down);
      this.inc({ direction: 'from_zero' }, c.fromZero);
      this.inc({ direction: 'to_zero' }, c.toZero);
    },
  });
  new client.Counter({
    name: 'dirigent_placement_refusals_total',
    help: 'Sandboxes the autoscaler wanted that no worker could take (capacity, runtime); a blocked function counts again at each retry',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(core.placementRefusals.total);
    },
  });
  new client.Gauge({
    name: 'dirigent_workers', help: 'Workers by health', labelNames: ['state'], registers: [registry],
    collect() {
      let up = 0;
      let down = 0;
      for (const w of core.workers.values()) if (w.schedulable) up += 1; else down += 1;
      this.set({ state: 'schedulable' }, up);
      this.set({ state: 'unschedulable' }, down);
    },
  });
  return {
    registry,
    onFailure: () => failures.inc(),
    onReady(creationMs: number) {
      created.inc();
      creation.observe(creationMs / 1000);
    },
    close: stopLoopDelay,
  };
}

/**
 * @module data-plane/async/metrics
 * Prometheus metrics of async invocations on the DP's /metrics: accepted, completed by outcome,
 * retries, dead letters, and per function the queue depth and the age of the oldest queued one.
 */
import client from 'prom-client';
import type { Clock } from '../../shared/clock.js';
import type { AsyncDispatcher } from './dispatcher.js';
import type { AsyncService } from './service.js';

export interface AsyncMetrics {
  accepted: client.Counter<'function'>;
  completed: client.Counter<'function' | 'outcome'>;
  retries: client.Counter<'function'>;
  deadLetters: client.Counter<'function'>;
}

export function registerAsyncMetrics(registry: client.Registry, service: AsyncService, dispatcher: () => AsyncDispatcher, clock: Clock): AsyncMetrics {
  const accepted = new client.Counter({ name: 'dirigent_dp_async_accepted_total', help: 'Async invocations accepted', labelNames: ['function'], registers: [registry] });
  const completed = new client.Counter({
    name: 'dirigent_dp_async_completed_total', help: 'Async invocations finished, by outcome (succeeded, failed, dead: the dead letters)',
    labelNames: ['function', 'outcome'], registers: [registry],
  });
  const retries = new client.Counter({
    name: 'dirigent_dp_async_retries_total', help: 'Async attempts followed by a retry', labelNames: ['function'], registers: [registry],
  });
  new client.Gauge({
    name: 'dirigent_dp_async_queue_depth', help: 'Unfinished async invocations per function', labelNames: ['function'], registers: [registry],
    collect() {
      this.reset();
      for (const [fn, n] of service.counts.byFunction) this.set({ function: fn }, n);
    },
  });
  new client.Gauge({
    name: 'dirigent_dp_async_held', help: 'Async invocations this DP holds (running, being recorded or waiting for capacity)', registers: [registry],
    collect() { this.set(dispatcher().heldCount); },
  });
  new client.Gauge({
    name: 'dirigent_dp_async_unrecorded', registers: [registry],
    help: 'Async executions this DP started whose outcome is not durable yet (running or being recorded): a crash of the DP runs them again',
    collect() { this.set(dispatcher().unrecordedCount); },
  });
  const deadLetters = new client.Counter({
    name: 'dirigent_dp_async_dead_letters_total', help: 'Async invocations this DP moved to the dead-letter state (attempts exhausted, too old, function gone)',
    labelNames: ['function'], registers: [registry],
  });
  new client.Gauge({
    name: 'dirigent_dp_async_oldest_queued_age_seconds', help: 'Age of the oldest unfinished async invocation per function',
    labelNames: ['function'], registers: [registry],
    // One store query per scrape: SQLite groups the unfinished rows by function, Redis reads one
    // sorted-set head per function with unfinished work.
    async collect() {
      // A store that does not answer keeps the last values: /metrics itself stays up.
      const byFunction = (await service.store.counts(clock.nowMs()).catch(() => null))?.oldestQueuedAgeMsByFunction;
      if (!byFunction) return;
      this.reset();
      for (const [fn, ageMs] of Object.entries(byFunction)) this.set({ function: fn }, ageMs / 1000);
    },
  });
  return { accepted, completed, retries, deadLetters };
}

/**
 * @module shared/metric-prefix
 * The prefix each component puts before prom-client's default metrics (process, heap, GC), so
 * one name tells the component apart and a poller can ask for exactly one of them.
 */
export const defaultMetricsPrefix = Object.freeze({ controlPlane: 'dirigent_cp_', dataPlane: 'dirigent_dp_', worker: 'dirigent_worker_' });

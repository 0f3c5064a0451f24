/**
 * @module shared/http1/lean-metrics
 * One gauge per lean HTTP/1.1 listener: requests its lean path served, and connections it
 * handed to Node's server by reason (`what="requests"`, `what="hand_off:<reason>"`).
 */
import client from 'prom-client';
import type { LeanStats } from './lean-h1.js';

/** `stats` returns null while the listener has no lean path (Node's parser chosen). */
export function registerLeanHttpGauge(registry: client.Registry, name: string, help: string, stats: () => LeanStats | null): void {
  new client.Gauge({
    name, help, labelNames: ['what'], registers: [registry],
    collect() {
      const s = stats();
      if (!s) return;
      this.set({ what: 'requests' }, s.requests);
      for (const [why, n] of s.handOffs) this.set({ what: `hand_off:${why}` }, n);
    },
  });
}

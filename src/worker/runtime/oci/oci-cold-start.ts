/**
 * @module worker/runtime/oci/oci-cold-start
 * Measures the oci runtime's cold start on the example image: N sequential create -> ready,
 * then delete, with the image already fetched and unpacked (the first create is a warm-up and
 * not counted). Prints, asserts nothing. Run as root after `npm run build`:
 *
 *   node dist/worker/runtime/oci/oci-cold-start.js [N=50]
 */
import { systemClock } from '../../../shared/clock.js';
import { helloImageArchive } from '../../../integration/image-registry.js';
import { expectCreated } from '../runtime.contract.js';
import { imageSpec, makeOciRuntime } from './oci-runtime.testkit.js';

const trialsDefault = 50;

function percentile(sortedMs: number[], p: number): number {
  const i = Math.min(sortedMs.length - 1, Math.ceil((p / 100) * sortedMs.length) - 1);
  return Math.round(sortedMs[Math.max(0, i)] * 10) / 10;
}

function summary(name: string, ms: number[]): string {
  const sorted = [...ms].sort((a, b) => a - b);
  return `${name}: p50 ${percentile(sorted, 50)} ms, p99 ${percentile(sorted, 99)} ms, max ${percentile(sorted, 100)} ms`;
}

async function main(): Promise<void> {
  const trials = Number(process.argv[2] ?? trialsDefault);
  const fn = imageSpec('cold', `oci-archive:${await helloImageArchive()}`);
  const h = await makeOciRuntime();
  const totals: number[] = [];
  const readiness: number[] = [];
  const starts: number[] = [];
  const teardowns: number[] = [];
  try {
    for (let i = 0; i <= trials; i++) {
      const result = await h.runtime.create({ sandboxId: `cold-${i}`, fn });
      expectCreated(result);
      const t0Ms = systemClock.nowMs();
      await h.runtime.delete(`cold-${i}`);
      if (i === 0 || !result.ok) continue; // warm-up: image fetch and unpack
      totals.push(result.totalMs);
      readiness.push(result.readinessMs);
      starts.push(result.startMs);
      teardowns.push(systemClock.nowMs() - t0Ms);
    }
  } finally {
    await h.runtime.close();
    await h.cleanup();
  }
  console.log(`oci cold start, example image, ${trials} sequential trials`);
  console.log(summary('create->ready', totals));
  console.log(summary('  of which readiness probe (runc run + httpd)', readiness));
  console.log(summary('  of which bundle (overlay mount, config.json) + spawn', starts));
  console.log(summary('delete', teardowns));
}

await main();

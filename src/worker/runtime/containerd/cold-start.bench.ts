/**
 * Cold start of the containerd runtime with the example image, measured, not asserted:
 * `node dist/worker/runtime/containerd/cold-start.bench.js [creates]` prints create->ready and
 * teardown p50/p99 over N sequential creates (default 50; the image is imported before the
 * first timed one), then one burst of 20 concurrent creates. Uses ports 30900-30999.
 */
import { helloImageArchive, imageToolsMissing } from '../../../integration/image-registry.js';
import { expectCreated } from '../runtime.contract.js';
import { ContainerdFixture, imageSpec, imageTools } from './containerd.testkit.js';

const burstSize = 20;

function percentile(sortedMs: number[], p: number): number {
  return sortedMs[Math.min(sortedMs.length - 1, Math.ceil((p / 100) * sortedMs.length) - 1)];
}

function summary(label: string, samplesMs: number[]): string {
  const sorted = [...samplesMs].sort((x, y) => x - y);
  const f = (ms: number): string => ms.toFixed(1);
  return `${label}: p50 ${f(percentile(sorted, 50))} ms, p99 ${f(percentile(sorted, 99))} ms, max ${f(sorted.at(-1)!)} ms (n=${sorted.length})`;
}

async function main(): Promise<void> {
  const missing = await imageToolsMissing(imageTools);
  if (missing) throw new Error(missing);
  const creates = Number(process.argv[2] ?? 50);
  const fixture = new ContainerdFixture([30_900, 30_999]);
  await fixture.start();
  const h = await fixture.runtime();
  try {
    const fn = imageSpec('bench', `oci-archive:${await helloImageArchive()}`);
    expectCreated(await h.runtime.create({ sandboxId: 'warmup', fn }));
    await h.runtime.delete('warmup');
    const createMs: number[] = [];
    const startMs: number[] = [];
    const teardownMs: number[] = [];
    for (let i = 0; i < creates; i++) {
      const result = await h.runtime.create({ sandboxId: `sb-${i}`, fn });
      if (!result.ok) throw new Error(result.reason);
      createMs.push(result.totalMs);
      startMs.push(result.startMs);
      const t0 = performance.now();
      await h.runtime.delete(`sb-${i}`);
      teardownMs.push(performance.now() - t0);
    }
    console.log(summary('create->ready', createMs));
    console.log(summary('  of which containerd calls (lease..Tasks.Start)', startMs));
    console.log(summary('teardown', teardownMs));
    const t0 = performance.now();
    const burst = await Promise.all(Array.from({ length: burstSize }, (_, i) => h.runtime.create({ sandboxId: `burst-${i}`, fn })));
    const burstMs = performance.now() - t0;
    console.log(`burst of ${burstSize}: all ready in ${burstMs.toFixed(0)} ms (${burst.filter((r) => r.ok).length} ok)`);
    await Promise.all(burst.map((_, i) => h.runtime.delete(`burst-${i}`)));
  } finally {
    await h.cleanup();
    await fixture.stop();
  }
}

await main();

// Measures what bubblewrap isolation adds to a cold start: creates a busybox httpd sandbox
// N times with isolation 'none' (no limits) and 'bwrap' (+ cgroup limits), alternating, and
// prints create->ready p50/p90 for each. A measurement, not a test: run `npm run build` first,
// as root, then `node scripts/measure-isolation.mjs [trials]`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scalingDefaults } from '../dist/config/defaults.js';
import { systemClock } from '../dist/shared/clock.js';
import { memoryLogger } from '../dist/shared/logger.js';
import { createProcessRuntime } from '../dist/worker/runtime/process-runtime.js';

const trials = Number(process.argv[2] ?? 50);
const fn = {
  name: 'bb', image: '', workingDir: '', port: 0, env: {}, egress: false,
  command: ['/bin/sh', '-c', 'exec busybox httpd -f -p 127.0.0.1:$PORT -h /usr/share'],
  resources: { cpuMillis: 1000, memoryMiB: 128 }, concurrency: 1, timeoutMs: 10_000,
  scaling: { ...scalingDefaults },
};

async function runtimeFor(isolation, portRange, limits) {
  const stateDir = await mkdtemp(join(tmpdir(), 'dirigent-measure-'));
  const runtime = createProcessRuntime({
    host: '127.0.0.1', portRange, stateDir, readinessTimeoutMs: 5_000, readinessBackoffMs: [1, 2],
    logger: memoryLogger([]), clock: systemClock, isolation, limits,
  });
  return { runtime, close: async () => { await runtime.close(); await rm(stateDir, { recursive: true, force: true }); } };
}

const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const modes = { none: await runtimeFor('none', [32400, 32439]), bwrap: await runtimeFor('bwrap', [32440, 32479]) };
if (process.env.SPLIT) {
  modes.bwrapNoLimits = await runtimeFor('bwrap', [32480, 32489], 'none');
  modes.limitsOnly = await runtimeFor('none', [32490, 32499], 'cgroups');
}
const samples = Object.fromEntries(Object.keys(modes).map((k) => [k, []]));
try {
  for (let i = 0; i < trials + 3; i++) {
    for (const [name, { runtime }] of Object.entries(modes)) {
      const result = await runtime.create({ sandboxId: `m-${i}`, fn });
      if (!result.ok) throw new Error(`${name}: ${result.reason}`);
      if (i >= 3) samples[name].push(result.totalMs); // the first ones warm caches
      if (i >= 3 && process.env.DETAIL) console.log(name, result.startMs.toFixed(1), result.readinessMs.toFixed(1), result.totalMs.toFixed(1));
      await runtime.delete(`m-${i}`);
      if (process.env.PAUSE_MS) await new Promise((r) => setTimeout(r, Number(process.env.PAUSE_MS)));
    }
  }
} finally {
  for (const { close } of Object.values(modes)) await close();
}
for (const [name, xs] of Object.entries(samples)) {
  console.log(`${name.padEnd(14)} create->ready p50 ${pct(xs, 0.5).toFixed(1)} ms  p90 ${pct(xs, 0.9).toFixed(1)} ms  (n=${xs.length})`);
}
console.log(`added by bwrap+setpriv+cgroups: p50 ${(pct(samples.bwrap, 0.5) - pct(samples.none, 0.5)).toFixed(1)} ms`);

// KPA record cost and the GC it causes: 24,000 autoscaler states recorded once per round for 20
// rounds, with some short-lived garbage between, as a control plane with that many active
// functions does. Usage: node scripts/kpa-gc-bench.mjs [repo root, default this one] (after a build).
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
const root = process.argv[2] ?? fileURLToPath(new URL('..', import.meta.url));
const { kpaInitialState, kpaRecord } = await import(root + '/dist/policy/autoscaler/kpa.js');
const { scalingDefaults } = await import(root + '/dist/config/defaults.js');
const gc = { minor: 0, major: 0, nMajor: 0, maxMajor: 0 };
new PerformanceObserver((l) => { for (const e of l.getEntries()) { const k = e.detail?.kind ?? e.kind; if (k === 1) gc.minor += e.duration; else { gc.major += e.duration; gc.nMajor++; gc.maxMajor = Math.max(gc.maxMajor, e.duration); } } }).observe({ entryTypes: ['gc'] });
const N = 24000; const fns = [];
for (let i = 0; i < N; i++) fns.push({ kpa: kpaInitialState(scalingDefaults, 0), keep: { a: i } });
let junk = [];
const t0 = performance.now();
for (let sec = 1; sec <= 20; sec++) {
  for (let i = 0; i < N; i++) {
    fns[i].kpa = kpaRecord(fns[i].kpa, scalingDefaults, i % 7 === 0 ? 1 : 0, sec * 1000 + (i % 1000));
    if (i % 4 === 0) junk.push({ x: i, y: 'abc' + i });   // short-lived garbage like a server makes
    if (junk.length > 2000) junk = [];
  }
  await new Promise((r) => setImmediate(r));
}
await new Promise((r) => setTimeout(r, 100));
console.log(root, 'time ms', (performance.now() - t0).toFixed(0), 'gc minor ms', gc.minor.toFixed(0), 'major ms', gc.major.toFixed(0), 'n', gc.nMajor, 'max', gc.maxMajor.toFixed(1), 'heapMB', (process.memoryUsage().heapUsed / 1e6).toFixed(0));

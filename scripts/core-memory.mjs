// Heap the control-plane core keeps per function: once registered, and once active (its first
// demand, the autoscaler window that starts, and one ready sandbox routed to a DP). The core runs
// alone (no store, no streams), so this is the core's share of what `up` holds; the process adds
// the store's cache and the streams. Usage, after a build:
//   node --expose-gc scripts/core-memory.mjs [count, default 20000] [default|sweep] [repo root]
// `sweep` registers with the coldStartSweep preset of `bench cold` (a 6 s window), `default`
// with the cluster's defaults (a 60 s window).
import { fileURLToPath } from 'node:url';

if (typeof globalThis.gc !== 'function') {
  console.error('run with node --expose-gc');
  process.exit(2);
}
const count = Number(process.argv[2] ?? 20_000);
const presetName = process.argv[3] ?? 'default';
const root = process.argv[4] ?? fileURLToPath(new URL('..', import.meta.url));
const { ControlPlaneCore } = await import(`${root}/dist/control-plane/core/control-plane.js`);
const { config, record, info } = await import(`${root}/dist/control-plane/core/testkit.js`);
const { scalingDefaults, scalingPresets } = await import(`${root}/dist/config/defaults.js`);
const { silentLogger } = await import(`${root}/dist/shared/logger.js`);
const { seededRng } = await import(`${root}/dist/shared/rng.js`);
const scaling = presetName === 'sweep' ? scalingPresets.coldStartSweep : scalingDefaults;

const cp = new ControlPlaneCore(config, seededRng(11), silentLogger);
let nowMs = 0;
let version = 0;
/** Effects are dropped as a shell would after acting on them; the routing version is kept for the DP's ack. */
const run = (event) => {
  const effects = cp.handle(event, nowMs);
  for (const e of effects) if ((e.kind === 'dp_broadcast' || e.kind === 'dp_send') && e.update.value.version > version) version = e.update.value.version;
  return effects;
};
const ack = () => run({ kind: 'dp_ack', dataPlaneId: 'dp1', version });
const heapUsed = () => {
  for (let i = 0; i < 4; i += 1) globalThis.gc();
  return process.memoryUsage().heapUsed;
};

run({ kind: 'dp_connected', hello: { dataPlaneId: 'dp1', proxyAddress: 'p:1', internalAddress: 'i:1' } });
for (let w = 0; w < 10; w += 1) {
  run({ kind: 'worker_connected', hello: { workerId: `w${w}`, address: `w${w}:1`, capacity: { cpuMillis: 1e9, memoryMib: 1e9 }, runtimes: ['process'], sandboxes: [] } });
}
const before = heapUsed();
for (let i = 0; i < count; i += 1) run({ kind: 'function_upserted', record: record(`fn-${i}`, `uid-${i}`, { scaling: { ...scaling } }) });
ack();
const registered = heapUsed();

nowMs = 10;
let created = [];
for (let i = 0; i < count; i += 1) {
  const report = { firstDemand: true, functions: [{ function: `fn-${i}`, functionUid: `uid-${i}`, inflight: 0, queued: 1, concurrencyAvg: 1, sandboxInflight: {} }] };
  for (const e of run({ kind: 'dp_demand', dataPlaneId: 'dp1', report })) {
    if (e.kind === 'worker_send' && e.command.case === 'create') created.push([e.workerId, e.command.value.sandboxId, i]);
  }
}
nowMs = 50;
for (const [workerId, id, i] of created) run({ kind: 'sandbox_ready', workerId, sandbox: info(id, `fn-${i}`, `uid-${i}`), creationMs: 40 });
ack();
const sandboxes = created.length;
created = [];
const active = heapUsed();
cp.checkInvariants();
console.log(JSON.stringify({
  functions: count, sandboxes, scaling: presetName,
  bytesPerRegisteredFunction: Math.round((registered - before) / count),
  bytesPerActivation: Math.round((active - registered) / count),
}));

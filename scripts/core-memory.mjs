// Heap the control-plane core keeps per function: once registered, once active (its first
// demand, the autoscaler window that starts, and one ready sandbox routed to a DP), and once idle
// again (its demand back to zero, its sandbox drained and deleted). The core runs
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

// Idle again: every DP reports zero demand; ticks run past the scale-to-zero grace; drains are
// acknowledged at once and deletions confirmed, as a DP and a worker would.
const idleReport = { firstDemand: false, functions: [] };
for (let i = 0; i < count; i += 1) idleReport.functions.push({ function: `fn-${i}`, functionUid: `uid-${i}`, inflight: 0, queued: 0, concurrencyAvg: 0, sandboxInflight: {} });
const answer = (effects) => {
  const drained = [];
  const deleted = [];
  for (const e of effects) {
    if ((e.kind === 'dp_broadcast' || e.kind === 'dp_send') && e.update.case === 'delta') drained.push(...e.update.value.drainEndpoints);
    if (e.kind === 'worker_send' && e.command.case === 'delete') deleted.push([e.workerId, e.command.value.sandboxId]);
  }
  if (drained.length > 0) answer(run({ kind: 'dp_drained', dataPlaneId: 'dp1', sandboxIds: drained }));
  for (const [workerId, sandboxId] of deleted) answer(run({ kind: 'sandbox_deleted', workerId, sandboxId }));
};
const idleUntilMs = nowMs + (scaling.stableWindowS + scaling.scaleToZeroGraceS + scaling.scaleDownDelayS + 10) * 1000;
for (; nowMs <= idleUntilMs; nowMs += 1000) {
  answer(run({ kind: 'dp_demand', dataPlaneId: 'dp1', report: idleReport }));
  answer(cp.tick(nowMs));
  ack();
}
idleReport.functions = [];
const left = cp.sandboxes.size;
const idle = heapUsed();
cp.checkInvariants();
console.log(JSON.stringify({
  functions: count, sandboxes, scaling: presetName,
  bytesPerRegisteredFunction: Math.round((registered - before) / count),
  bytesPerActivation: Math.round((active - registered) / count),
  bytesPerFunctionIdleAgain: Math.round((idle - before) / count),
  sandboxesLeft: left,
}));

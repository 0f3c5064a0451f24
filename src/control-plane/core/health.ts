/**
 * @module control-plane/core/health
 * Workers and data planes as the control-plane core sees them: registration, reconnects,
 * heartbeats, loss, and forgetting peers gone past `peerForgetAfterMs`. Heartbeat and forget
 * timeouts are deadlines in the heap (one pending entry per worker), never a scan.
 */
import type { DataPlaneHelloMsg, HeartbeatMsg, WorkerHelloMsg } from '../../api/cluster.js';
import { adoptOrDelete, drainWorkerSandboxes, dropDrainPending, dropWorkerSandboxes, maybeFinishDrain } from './sandboxes.js';
import { dropDemand } from './functions.js';
import { fromWire, type CoreState } from './state.js';
import type { WorkerRec } from './types.js';

/** How long after a CP start API answers also wait for DPs the store knows to reconnect. */
const restoredDataPlaneGraceMs = 10_000;

function newWorker(hello: WorkerHelloMsg, nowMs: number): WorkerRec {
  return {
    id: hello.workerId,
    address: hello.address,
    connected: true,
    schedulable: true,
    capacity: fromWire(hello.capacity),
    allocated: { cpuMillis: 0, memoryMiB: 0 },
    runtimes: [...hello.runtimes],
    lastHeartbeatMs: nowMs,
    disconnectedAtMs: 0,
    heartbeatWatched: false,
    sandboxes: new Set(),
  };
}

export function onWorkerHello(s: CoreState, hello: WorkerHelloMsg, nowMs: number): void {
  s.workersExpectedBack.delete(hello.workerId);
  let w = s.workers.get(hello.workerId);
  if (!w) {
    w = newWorker(hello, nowMs);
    s.addWorker(w);
    s.effects.push({ kind: 'persist_worker', id: w.id, address: w.address });
  } else {
    // A reconnect: whatever the CP still attributes to it was lost with the old stream.
    dropWorkerSandboxes(s, w, 'worker reconnected', false);
    if (w.address !== hello.address) s.effects.push({ kind: 'persist_worker', id: w.id, address: hello.address });
    w.address = hello.address;
    w.capacity = fromWire(hello.capacity);
    w.runtimes = [...hello.runtimes];
  }
  w.connected = true;
  w.schedulable = true;
  s.workerChanged(w);
  w.disconnectedAtMs = 0;
  w.lastHeartbeatMs = nowMs;
  watchHeartbeat(s, w);
  s.capacityEpoch += 1;
  for (const info of hello.sandboxes) adoptOrDelete(s, w, info, nowMs);
  s.log.info('worker.registered', { workerId: w.id, adopted: w.sandboxes.size });
  s.markAllActiveDirty();
}

function watchHeartbeat(s: CoreState, w: WorkerRec): void {
  if (w.heartbeatWatched) return;
  w.heartbeatWatched = true;
  s.deadlines.push(w.lastHeartbeatMs + s.config.heartbeatTimeoutMs + 1, 'heartbeat', w.id);
}

export function onWorkerGone(s: CoreState, workerId: string, reason: string, nowMs: number): void {
  const w = s.workers.get(workerId);
  if (!w || !w.connected) return;
  w.connected = false;
  w.schedulable = false;
  s.workerChanged(w);
  w.disconnectedAtMs = nowMs;
  dropWorkerSandboxes(s, w, reason, false);
  s.deadlines.push(nowMs + s.peerForgetAfterMs, 'forget_worker', w.id);
  s.log.warn('worker.lost', { workerId, reason, atMs: nowMs });
}

export function onHeartbeat(s: CoreState, workerId: string, hb: HeartbeatMsg, nowMs: number): void {
  const w = s.workers.get(workerId);
  if (!w) return;
  const capacity = hb.capacity ? fromWire(hb.capacity) : w.capacity;
  if (capacity.cpuMillis !== w.capacity.cpuMillis || capacity.memoryMiB !== w.capacity.memoryMiB) {
    w.capacity = capacity;
    s.workerChanged(w);
    s.capacityEpoch += 1;
  }
  onWorkerAlive(s, workerId, nowMs);
}

/**
 * Any message from a worker proves it alive, not only a heartbeat: a worker that sent events
 * within a period skips its heartbeat (worker core), so 10,000 busy workers do not send 1,000
 * heartbeats a second on top of their sandbox events.
 */
export function onWorkerAlive(s: CoreState, workerId: string, nowMs: number): void {
  const w = s.workers.get(workerId);
  if (!w) return;
  w.lastHeartbeatMs = nowMs;
  if (w.connected && !w.schedulable) {
    w.schedulable = true;
    s.workerChanged(w);
    s.capacityEpoch += 1;
    s.log.info('worker.recovered', { workerId });
    s.markAllActiveDirty();
  }
  if (w.connected) watchHeartbeat(s, w);
}

/**
 * A heartbeat deadline popped. Silent but connected: treat as failed and replace its sandboxes;
 * in case it is alive (a partition) they drain and are then deleted, so nothing runs twice for
 * long and no request still running on one is cut off before the drain limit.
 */
export function onHeartbeatDeadline(s: CoreState, workerId: string, nowMs: number): void {
  const w = s.workers.get(workerId);
  if (!w) return;
  w.heartbeatWatched = false;
  if (!w.connected || !w.schedulable) return;
  if (nowMs - w.lastHeartbeatMs <= s.config.heartbeatTimeoutMs) {
    watchHeartbeat(s, w);
    return;
  }
  w.schedulable = false;
  s.workerChanged(w);
  drainWorkerSandboxes(s, w, nowMs);
  s.log.warn('worker.lost', { workerId: w.id, reason: 'heartbeat timeout' });
}

export function onForgetWorkerDeadline(s: CoreState, workerId: string, nowMs: number): void {
  const w = s.workers.get(workerId);
  if (!w || w.connected || nowMs - w.disconnectedAtMs < s.peerForgetAfterMs) return;
  s.workers.delete(workerId);
  s.workersChanged();
  s.effects.push({ kind: 'forget_worker', id: workerId });
  s.log.info('worker.forgotten', { workerId, goneMs: nowMs - w.disconnectedAtMs });
}

export function onDataPlaneHello(s: CoreState, hello: DataPlaneHelloMsg, sendSnapshot: (id: string) => void): void {
  const known = s.dataPlanes.get(hello.dataPlaneId);
  s.dataPlanes.set(hello.dataPlaneId, {
    id: hello.dataPlaneId,
    proxyAddress: hello.proxyAddress,
    internalAddress: hello.internalAddress,
    connected: true,
    disconnectedAtMs: 0,
    expectedBack: false,
    ackedVersion: 0,
  });
  if (!known || known.proxyAddress !== hello.proxyAddress || known.internalAddress !== hello.internalAddress) {
    s.effects.push({
      kind: 'persist_data_plane',
      id: hello.dataPlaneId,
      proxyAddress: hello.proxyAddress,
      internalAddress: hello.internalAddress,
    });
  }
  s.routing.upsertPeer({ dataPlaneId: hello.dataPlaneId, proxyAddress: hello.proxyAddress });
  sendSnapshot(hello.dataPlaneId);
  s.log.info('data_plane.registered', { dataPlaneId: hello.dataPlaneId });
}

export function onDataPlaneGone(s: CoreState, dataPlaneId: string, nowMs: number): void {
  const dp = s.dataPlanes.get(dataPlaneId);
  if (!dp || !dp.connected) return;
  dp.connected = false;
  dp.disconnectedAtMs = nowMs;
  for (const fn of s.functions.values()) dropDemand(fn, dataPlaneId);
  // Drains it owes stay pending: the DP may be alive with requests on those sandboxes (a broken
  // stream, not a dead process). It acknowledges them from its next snapshot, or the drain
  // limit ends the wait.
  s.deadlines.push(nowMs + s.peerForgetAfterMs, 'forget_dp', dataPlaneId);
  s.log.warn('data_plane.lost', { dataPlaneId });
}

/** A restored worker that did not come back within the grace: counted lost for scaling. */
export function onWorkerExpectedDeadline(s: CoreState, workerId: string, nowMs: number): void {
  if (nowMs < s.peersReachableFromMs + s.config.heartbeatTimeoutMs) return; // re-armed: a later deadline decides
  if (s.workersExpectedBack.delete(workerId)) s.markAllActiveDirty();
}

/** A restored DP that did not come back within the grace: API answers stop waiting for it. */
export function onDataPlaneExpectedDeadline(s: CoreState, dataPlaneId: string, nowMs: number): void {
  if (nowMs < s.peersReachableFromMs + restoredDataPlaneGraceMs) return;
  const dp = s.dataPlanes.get(dataPlaneId);
  if (dp) dp.expectedBack = false;
}

/**
 * Peers can reach this CP from now (its peer port is open). Restored peers get their whole grace
 * from here: a CP that loaded its records long before it listened (a slow start, a busy machine)
 * would otherwise replace sandboxes its workers are about to report.
 */
/** Until `onPeersReachable`, the graces of restored peers are held open (their deadlines are re-armed then). */
export function onPeersNotYetReachable(s: CoreState): void {
  s.peersReachableFromMs = Infinity;
}

export function onPeersReachable(s: CoreState, nowMs: number): void {
  s.peersReachableFromMs = nowMs;
  for (const id of s.workersExpectedBack) s.deadlines.push(nowMs + s.config.heartbeatTimeoutMs, 'worker_expected', id);
  for (const dp of s.dataPlanes.values()) {
    if (dp.expectedBack) s.deadlines.push(nowMs + restoredDataPlaneGraceMs, 'dp_expected', dp.id);
  }
}

export function onForgetDataPlaneDeadline(s: CoreState, dataPlaneId: string, nowMs: number): void {
  const dp = s.dataPlanes.get(dataPlaneId);
  if (!dp || dp.connected || nowMs - dp.disconnectedAtMs < s.peerForgetAfterMs) return;
  s.dataPlanes.delete(dataPlaneId);
  s.routing.removePeer(dataPlaneId);
  for (const sb of s.sandboxes.values()) {
    if (sb.state === 'draining' && dropDrainPending(sb, dataPlaneId)) maybeFinishDrain(s, sb);
  }
  s.effects.push({ kind: 'forget_data_plane', id: dataPlaneId });
  s.log.info('data_plane.forgotten', { dataPlaneId, goneMs: nowMs - dp.disconnectedAtMs });
}

/**
 * Peers the store remembers from before a restart: known but disconnected until they say hello,
 * and forgotten like any gone peer if they never come back.
 */
export function onPeersLoaded(
  s: CoreState,
  workers: { id: string; address: string }[],
  dataPlanes: { id: string; proxyAddress: string; internalAddress: string }[],
  nowMs: number,
): void {
  for (const r of workers) {
    if (s.workers.has(r.id)) continue;
    const hello = { workerId: r.id, address: r.address, runtimes: [], sandboxes: [] };
    s.workers.set(r.id, { ...newWorker(hello, nowMs), connected: false, schedulable: false, disconnectedAtMs: nowMs });
    s.deadlines.push(nowMs + s.peerForgetAfterMs, 'forget_worker', r.id);
    // Its sandboxes come back with its hello; until then (or the grace) restored functions do
    // not start replacements, which would run beside the ones it is about to report.
    s.workersExpectedBack.add(r.id);
    s.deadlines.push(nowMs + s.config.heartbeatTimeoutMs, 'worker_expected', r.id);
  }
  s.workersChanged();
  for (const r of dataPlanes) {
    if (s.dataPlanes.has(r.id)) continue;
    s.dataPlanes.set(r.id, { ...r, connected: false, disconnectedAtMs: nowMs, expectedBack: true, ackedVersion: 0 });
    // Its async invocations stay readable through the others (forwarded) once it is back.
    s.routing.upsertPeer({ dataPlaneId: r.id, proxyAddress: r.proxyAddress });
    s.deadlines.push(nowMs + s.peerForgetAfterMs, 'forget_dp', r.id);
    s.deadlines.push(nowMs + restoredDataPlaneGraceMs, 'dp_expected', r.id);
  }
}

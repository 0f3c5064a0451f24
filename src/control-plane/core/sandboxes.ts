/**
 * @module control-plane/core/sandboxes
 * Sandbox lifecycle in the control-plane core: create, ready, fail, drain, delete, adopt.
 *
 *   creating ──ready──▶ ready ──drain──▶ draining ──every DP drained, or drain limit──▶ delete sent
 *      │                  │                                                      ──deleted──▶ gone
 *      └─fail/timeout─────┴─crash / worker lost──▶ gone
 *
 * A sandbox belongs to a function identity (name + uid): events about a sandbox of a deleted
 * function never touch a re-created function of the same name.
 */
import type { SandboxInfoMsg } from '../../api/cluster.js';
import { keepAliveAdopt } from '../../policy/autoscaler/keep-alive.js';
import { assert } from '../../shared/assert.js';
import { addSandboxId, removeSandboxId, specGenerationOf, type FnState } from './functions.js';
import { drainTimeoutMsMax, fromWire, type CoreState } from './state.js';
import type { SandboxRec, WorkerRec } from './types.js';

const retryBackoffMsMax = 10_000;

function attach(s: CoreState, sb: SandboxRec, fn: FnState, w: WorkerRec): void {
  s.sandboxes.set(sb.id, sb);
  s.quotas.countSandbox(sb.fn, sb.resources, 1);
  addSandboxId(fn, sb.id);
  if (sb.state === 'creating') fn.creating += 1;
  else fn.ready += 1;
  w.sandboxes.add(sb.id);
  s.allocate(w, sb.resources, 1);
}

/** Forget a sandbox entirely: counters, allocation, routing. */
function detach(s: CoreState, sb: SandboxRec): void {
  s.sandboxes.delete(sb.id);
  endWait(s, sb);
  s.quotas.countSandbox(sb.fn, sb.resources, -1);
  // Quota room may have appeared for a blocked function of its namespace.
  s.capacityEpoch += 1;
  const fn = s.fnOf(sb);
  if (fn) {
    removeSandboxId(fn, sb.id);
    if (sb.state === 'creating') fn.creating -= 1;
    else if (sb.state === 'ready') fn.ready -= 1;
    else fn.draining -= 1;
  }
  if (sb.state === 'ready') s.routing.removeEndpoint(sb.id);
  const w = s.workers.get(sb.workerId);
  if (w && w.sandboxes.delete(sb.id)) s.allocate(w, sb.resources, -1);
}

function newRec(fn: FnState, id: string, workerId: string, nowMs: number): SandboxRec {
  return {
    id,
    fn: fn.record.spec.name,
    fnUid: fn.record.uid,
    workerId,
    address: '',
    state: 'creating',
    // Shared with the record (never written; an update makes a new one): a sandbox keeps the
    // resources it was created with.
    resources: fn.record.spec.resources,
    requestedAtMs: nowMs,
    readyAtMs: 0,
    drainPending: null,
    drainStartedAtMs: 0,
    drainDeadlineMs: 0,
    deleteSent: false,
    deadline: null,
  };
}

export function createSandbox(s: CoreState, fn: FnState, w: WorkerRec, nowMs: number): void {
  s.sandboxSeq += 1;
  const sb = newRec(fn, `sb-${s.idPrefix}-${s.sandboxSeq.toString(36)}`, w.id, nowMs);
  attach(s, sb, fn, w);
  sb.deadline = s.deadlines.push(nowMs + s.config.creationTimeoutMs, 'creation', sb.id);
  s.sendWorker(w.id, { case: 'create', value: { sandboxId: sb.id, function: fn.wire } });
}

/** How long a drain of this function's sandboxes may wait for DPs: its timeout, capped. */
export function drainLimitMs(s: CoreState, fn: FnState): number {
  const cap = Math.min(s.config.drainTimeoutMs, drainTimeoutMsMax);
  const timeoutMs = fn.record.spec.timeoutMs;
  return timeoutMs > 0 ? Math.min(timeoutMs, cap) : cap;
}

/** Stop routing to a ready sandbox; it is deleted once every connected DP reports it idle. */
export function drain(s: CoreState, sb: SandboxRec, fn: FnState, nowMs: number): void {
  assert(sb.state === 'ready', `drain of ${sb.id} in state ${sb.state}`);
  fn.ready -= 1;
  fn.draining += 1;
  sb.state = 'draining';
  sb.drainStartedAtMs = nowMs;
  sb.drainDeadlineMs = nowMs + drainLimitMs(s, fn);
  s.routing.drainEndpoint(sb.id);
  addDrainPending(s, sb);
  if (sb.drainPending !== null) sb.deadline = s.deadlines.push(sb.drainDeadlineMs, 'drain', sb.id);
  maybeFinishDrain(s, sb);
}

/** The sandbox's wait (its creation or its drain) is over: its deadline leaves the heap. */
function endWait(s: CoreState, sb: SandboxRec): void {
  if (sb.deadline === null) return;
  s.deadlines.remove(sb.deadline);
  sb.deadline = null;
}

/**
 * Every DP the CP knows must report the sandbox idle, connected or not: one whose stream broke
 * may still be serving requests on it, and acknowledges from its next snapshot. A DP that never
 * comes back costs the drain limit (and is forgotten after `peerForgetAfterMs`).
 */
function addDrainPending(s: CoreState, sb: SandboxRec): void {
  for (const dp of s.dataPlanes.values()) (sb.drainPending ??= new Set()).add(dp.id);
}

/** `dataPlaneId` reported the sandbox idle: whether the drain waited for it (the set goes once empty). */
export function dropDrainPending(sb: SandboxRec, dataPlaneId: string): boolean {
  if (sb.drainPending === null || !sb.drainPending.delete(dataPlaneId)) return false;
  if (sb.drainPending.size === 0) sb.drainPending = null;
  return true;
}

export function maybeFinishDrain(s: CoreState, sb: SandboxRec): void {
  if (sb.drainPending !== null || sb.deleteSent) return;
  sb.deleteSent = true;
  endWait(s, sb);
  s.deleteOnWorker(sb.workerId, sb.id);
}

/** Stop a creating sandbox (or one whose worker is gone) without draining. */
export function cancelSandbox(s: CoreState, sb: SandboxRec, reason: string): void {
  detach(s, sb);
  s.deleteOnWorker(sb.workerId, sb.id);
  s.log.info('sandbox.cancelled', { id: sb.id, fn: sb.fn, reason });
}

export function dropWorkerSandboxes(s: CoreState, w: WorkerRec, reason: string, tellWorker: boolean): void {
  const dropped = w.sandboxes.size;
  for (const id of [...w.sandboxes]) {
    const sb = s.sandboxes.get(id)!;
    detach(s, sb);
    if (tellWorker) s.deleteOnWorker(w.id, id);
    const fn = s.fnOf(sb);
    if (fn) s.markDirty(fn);
  }
  if (dropped > 0) s.log.info('worker.sandboxes_dropped', { workerId: w.id, reason, dropped });
}

/**
 * A worker went silent but its stream is up (a partition, or a hung daemon): its sandboxes leave
 * the routing tables at once and are replaced, but the running ones drain rather than die, so a
 * request a DP still has in flight on one finishes (bounded by the drain limit) before the
 * delete reaches the worker. Creating ones are cancelled: nothing runs on them yet.
 */
export function drainWorkerSandboxes(s: CoreState, w: WorkerRec, nowMs: number): void {
  let moved = 0;
  for (const id of [...w.sandboxes]) {
    const sb = s.sandboxes.get(id)!;
    const fn = s.fnOf(sb);
    if (sb.state === 'draining') continue;
    moved += 1;
    if (sb.state === 'ready' && fn) drain(s, sb, fn, nowMs);
    else cancelSandbox(s, sb, 'worker silent');
    if (fn) s.markDirty(fn);
  }
  if (moved > 0) s.log.info('worker.sandboxes_drained', { workerId: w.id, reason: 'heartbeat timeout', sandboxes: moved });
}

/**
 * A sandbox a worker reports that the CP will not adopt (its function is gone, re-created, or
 * now runs another spec). A DP may still run requests on it from before the CP lost track of
 * it, so it drains like any other before the delete: tracked as draining on its worker (its
 * resources stay allocated until it is gone) and under its function if that still exists.
 */
function drainLeftover(s: CoreState, w: WorkerRec, info: SandboxInfoMsg, fn: FnState | undefined, nowMs: number): void {
  const limitMs = fn ? drainLimitMs(s, fn) : Math.min(s.config.drainTimeoutMs, drainTimeoutMsMax);
  const sb: SandboxRec = {
    id: info.sandboxId, fn: info.function, fnUid: info.functionUid, workerId: w.id, address: info.address,
    state: 'draining', resources: fromWire(info.resources), requestedAtMs: nowMs, readyAtMs: nowMs,
    drainPending: null, drainStartedAtMs: nowMs, drainDeadlineMs: nowMs + limitMs, deleteSent: false, deadline: null,
  };
  s.sandboxes.set(sb.id, sb);
  s.quotas.countSandbox(sb.fn, sb.resources, 1);
  w.sandboxes.add(sb.id);
  s.allocate(w, sb.resources, 1);
  if (fn) {
    addSandboxId(fn, sb.id);
    fn.draining += 1;
  }
  s.routing.drainUnrouted(sb.id);
  addDrainPending(s, sb);
  if (sb.drainPending !== null) sb.deadline = s.deadlines.push(sb.drainDeadlineMs, 'drain', sb.id);
  maybeFinishDrain(s, sb);
}

/** A sandbox the CP did not ask for (CP failover, or a creation that outlived its CP). */
export function adoptOrDelete(s: CoreState, w: WorkerRec, info: SandboxInfoMsg, nowMs: number): void {
  if (s.sandboxes.has(info.sandboxId)) return;
  if (s.isTombstoned(info.sandboxId)) {
    // Deleted already; the command may still be on its way (or was lost with a stream).
    s.deleteOnWorker(w.id, info.sandboxId);
    return;
  }
  const fn = s.functions.get(info.function);
  const resources = fromWire(info.resources);
  // A late report (a creation that outlived a stream, or leftovers the worker still runs) may
  // not fit any more: the CP refilled the worker meanwhile. Such a sandbox is not adopted; it
  // drains like any leftover (it does occupy the worker until it is gone, so its resources stay
  // allocated and placement sees the worker as full until then).
  const fits =
    w.allocated.cpuMillis + resources.cpuMillis <= w.capacity.cpuMillis &&
    w.allocated.memoryMiB + resources.memoryMiB <= w.capacity.memoryMiB;
  // A sandbox of an older generation runs the current spec if only knobs changed since.
  const same = fn && info.functionUid === fn.record.uid && info.functionGeneration >= specGenerationOf(fn.record);
  if (!fn || !same || !fits) return drainLeftover(s, w, info, fn && info.functionUid === fn.record.uid ? fn : undefined, nowMs);
  const sb: SandboxRec = { ...newRec(fn, info.sandboxId, w.id, nowMs), state: 'ready', address: info.address, resources, readyAtMs: nowMs };
  attach(s, sb, fn, w);
  s.routing.addEndpoint(endpointOf(sb));
  // The old leader's keep-alive may have held it: the policy holds it from now.
  if (fn.record.spec.scaling.keepAliveWindowS > 0) fn.keepAlive = keepAliveAdopt(fn.keepAlive, nowMs);
  s.markDirty(fn);
}

export function onSandboxReady(s: CoreState, workerId: string, info: SandboxInfoMsg, nowMs: number): void {
  const sb = s.sandboxes.get(info.sandboxId);
  const w = s.workers.get(workerId);
  if (!sb) {
    if (w && w.connected) adoptOrDelete(s, w, info, nowMs);
    return;
  }
  if (sb.state !== 'creating' || sb.workerId !== workerId) return; // duplicate or misdirected
  const fn = s.fnOf(sb);
  assert(fn, `creating sandbox ${sb.id} without function ${sb.fn}`);
  sb.state = 'ready';
  sb.address = info.address;
  sb.readyAtMs = nowMs;
  endWait(s, sb);
  fn.creating -= 1;
  fn.ready += 1;
  fn.failures = 0;
  s.routing.addEndpoint(endpointOf(sb));
  s.markDirty(fn);
  if (s.log.isDebugEnabled()) {
    s.log.debug('sandbox.ready', { id: sb.id, fn: sb.fn, workerId, coldMs: nowMs - sb.requestedAtMs });
  }
}

export function onSandboxFailed(s: CoreState, sandboxId: string, kind: 'create' | 'crash', reason: string, nowMs: number): void {
  const sb = s.sandboxes.get(sandboxId);
  if (!sb) return;
  const fn = s.fnOf(sb);
  const wasCreating = sb.state === 'creating';
  detach(s, sb);
  s.capacityEpoch += 1;
  s.log.warn('sandbox.failed', { id: sandboxId, fn: sb.fn, workerId: sb.workerId, kind, reason });
  if (!fn) return;
  if (wasCreating || kind === 'create') {
    fn.failures += 1;
    const backoffMs = Math.min(retryBackoffMsMax, s.config.retryBackoffMs * 2 ** (fn.failures - 1));
    fn.retryAtMs = nowMs + backoffMs;
    s.visitAt(fn, fn.retryAtMs);
    if (fn.failures >= s.config.failFastAfter) {
      s.routing.failFunction(sb.fn, 'sandbox_failure', `sandbox failed to start: ${reason}`);
    }
  }
  s.markDirty(fn);
}

export function onSandboxDeleted(s: CoreState, sandboxId: string): void {
  const sb = s.sandboxes.get(sandboxId);
  if (!sb) return;
  detach(s, sb);
  s.capacityEpoch += 1;
  const fn = s.fnOf(sb);
  if (fn) s.markDirty(fn);
}

export function onDrained(s: CoreState, dataPlaneId: string, sandboxIds: string[]): void {
  for (const id of sandboxIds) {
    const sb = s.sandboxes.get(id);
    if (sb && sb.state === 'draining' && dropDrainPending(sb, dataPlaneId)) maybeFinishDrain(s, sb);
  }
}

/** A creation deadline popped: still creating (the same request) means it timed out. */
export function onCreationDeadline(s: CoreState, sandboxId: string, nowMs: number): void {
  const sb = s.sandboxes.get(sandboxId);
  if (!sb || sb.state !== 'creating') return;
  const fn = s.fnOf(sb);
  cancelSandbox(s, sb, 'creation timeout');
  if (!fn) return;
  fn.failures += 1;
  fn.retryAtMs = nowMs + s.config.retryBackoffMs;
  s.visitAt(fn, fn.retryAtMs);
  s.markDirty(fn);
}

/** A drain deadline popped: DPs that have not reported are skipped; the sandbox goes. */
export function onDrainDeadline(s: CoreState, sandboxId: string, nowMs: number): void {
  const sb = s.sandboxes.get(sandboxId);
  if (!sb || sb.state !== 'draining' || sb.drainPending === null || nowMs < sb.drainDeadlineMs) return;
  s.log.info('sandbox.drain_timed_out', { id: sb.id, fn: sb.fn, pending: [...sb.drainPending] });
  sb.drainPending = null;
  maybeFinishDrain(s, sb);
}

function endpointOf(sb: SandboxRec) {
  return { sandboxId: sb.id, function: sb.fn, address: sb.address, workerId: sb.workerId, functionUid: sb.fnUid };
}

/**
 * @module control-plane/core/testkit
 * Builders and effect filters shared by the control-plane core's unit tests: records, hellos,
 * demand reports, a small core with one DP and one worker, and a fake store (`drive`) that
 * answers every store effect with `persisted` at once, as the shell does once a write is durable.
 */
import type { SandboxInfoMsg, WorkerHelloMsg } from '../../api/cluster.js';
import type { FunctionRecord, FunctionSpec } from '../../api/types.js';
import { scalingDefaults } from '../../config/defaults.js';
import { silentLogger } from '../../shared/logger.js';
import { seededRng } from '../../shared/rng.js';
import { ControlPlaneCore } from './control-plane.js';
import type { ApiResult, CpEffect } from './types.js';

export const config = {
  placement: 'kubernetes' as const, heartbeatTimeoutMs: 60_000, creationTimeoutMs: 5000, drainTimeoutMs: 30_000,
  creatingPerFunctionMax: 100, retryBackoffMs: 100, failFastAfter: 2, peerForgetAfterMs: 60_000, unschedulableFailAfterMs: 2000,
};

export function spec(name: string, over: Partial<FunctionSpec> = {}): FunctionSpec {
  return {
    name, image: '', command: ['node', 's.js'], workingDir: '', port: 8080, env: {}, egress: false, auth: 'none',
    resources: { cpuMillis: 500, memoryMiB: 256 }, concurrency: 1, timeoutMs: 1000,
    scaling: { ...scalingDefaults, stableWindowS: 6, panicWindowS: 2, tickS: 1 }, ...over,
  };
}

export function record(name: string, uid: string, over: Partial<FunctionSpec> = {}): FunctionRecord {
  return { spec: spec(name, over), uid, generation: 1, createdAtMs: 0, updatedAtMs: 0 };
}

export function worker(id: string, sandboxes: SandboxInfoMsg[] = []): WorkerHelloMsg {
  return { workerId: id, address: `${id}:1`, capacity: { cpuMillis: 2000, memoryMib: 4096 }, runtimes: ['process'], sandboxes };
}

export function info(id: string, fn: string, uid: string): SandboxInfoMsg {
  return { sandboxId: id, function: fn, functionUid: uid, address: `a-${id}`, resources: { cpuMillis: 500, memoryMib: 256 }, functionGeneration: 1, createdAtMs: 0 };
}

export function demand(fn: string, uid: string, inflight: number, queued: number, first = true) {
  return { firstDemand: first, functions: [{ function: fn, functionUid: uid, inflight, queued, concurrencyAvg: inflight + queued, sandboxInflight: {} }] };
}

export const creates = (eff: CpEffect[]) =>
  eff.flatMap((e) => (e.kind === 'worker_send' && e.command.case === 'create' ? [{ worker: e.workerId, id: e.command.value.sandboxId }] : []));
export const deletes = (eff: CpEffect[]) =>
  eff.flatMap((e) => (e.kind === 'worker_send' && e.command.case === 'delete' ? [e.command.value.sandboxId] : []));
export const deltas = (eff: CpEffect[]) => eff.flatMap((e) => (e.kind === 'dp_broadcast' && e.update.case === 'delta' ? [e.update.value] : []));

export function core(): ControlPlaneCore {
  const cp = new ControlPlaneCore(config, seededRng(11), silentLogger);
  cp.handle({ kind: 'dp_connected', hello: { dataPlaneId: 'dp1', proxyAddress: 'p:1', internalAddress: 'i:1' } }, 0);
  cp.handle({ kind: 'worker_connected', hello: worker('w1') }, 0);
  return cp;
}

/** A store that answers every write at once and records API answers, as the shell would. */
export function drive(cp: ControlPlaneCore, nowMs: number, first: CpEffect[], results: Map<number, ApiResult>): CpEffect[] {
  const all: CpEffect[] = [];
  let queue = first;
  while (queue.length > 0) {
    all.push(...queue);
    const next: CpEffect[] = [];
    for (const e of queue) {
      if (e.kind === 'api_done') results.set(e.requestId, e.result);
      if (e.kind === 'store_function' || e.kind === 'store_delete_function') next.push(...cp.handle({ kind: 'persisted', opId: e.opId }, nowMs));
    }
    queue = next;
  }
  return all;
}

/**
 * @module sim/options
 * Everything a simulated run depends on, drawn from one seed (TigerBeetle's `options_swarm`):
 * cluster size, worker capacities, function mix, load, and every fault rate. A seed whose
 * options make a fault impossible still runs; swarm testing relies on many seeds, each with a
 * different mix, rather than on every fault in every run.
 */
import type { FunctionRecord, ScalingSpec } from '../api/types.js';
import { scalingDefaults } from '../config/defaults.js';
import type { ControlPlaneCoreConfig } from '../control-plane/core/control-plane.js';
import type { DataPlaneCoreConfig } from '../data-plane/core/data-plane.js';
import { assert } from '../shared/assert.js';
import type { Rng } from '../shared/rng.js';
import { noChurn, type ChurnRates } from './churn.js';
import type { FunctionLoad } from './fake-client.js';
import type { CreationFaults } from './fake-worker.js';
import { noLeaderChanges, type LeaderChangeRates } from './leader.js';
import type { LinkFaults } from './network.js';

export interface WorkerOptions {
  id: string;
  cpuMillis: number;
  memoryMiB: number;
}

/** Cluster-level fault rates, per virtual second during the fault phase. */
export interface FaultRates {
  linkBreakPerS: number;
  partitionPerS: number;
  partitionMs: readonly [number, number];
  workerCrashPerS: number;
  workerDownMs: readonly [number, number];
  sandboxCrashPerS: number;
  cpRestartPerS: number;
  cpDownMs: readonly [number, number];
}

export interface SimOptions {
  seed: number;
  stepMs: number;
  workers: WorkerOptions[];
  dataPlanes: number;
  functions: FunctionRecord[];
  loads: FunctionLoad[];
  link: LinkFaults;
  creation: CreationFaults;
  faults: FaultRates;
  /** Function changes and DP restarts under traffic (off unless the swarm asks: `--churn`). */
  churn: ChurnRates;
  /** Leader kills and paused old leaders (off unless the swarm asks: `--leader-changes`). */
  leader: LeaderChangeRates;
  /**
   * Check S7 (no sandbox stopped while a request runs on it). Off for the fixed regression seeds:
   * it fails there today (a worker stream break re-adopts and drains sandboxes the DP forgot).
   */
  checkDrains: boolean;
  /** Faults and load; then load without faults; then no load until the end. */
  faultPhaseMs: number;
  quietLoadMs: number;
  quietMs: number;
  cp: ControlPlaneCoreConfig;
  dp: DataPlaneCoreConfig;
}

export const noFaults: Readonly<FaultRates> = Object.freeze<FaultRates>({
  linkBreakPerS: 0, partitionPerS: 0, partitionMs: [0, 0], workerCrashPerS: 0,
  workerDownMs: [0, 0], sandboxCrashPerS: 0, cpRestartPerS: 0, cpDownMs: [0, 0],
});

export interface FnShape {
  name: string;
  concurrency: number;
  min: number;
  max: number;
  cpuMillis: number;
  memoryMiB: number;
  stableWindowS?: number;
  panicWindowS?: number;
  tickS?: number;
  /** scaling.keepAliveWindowS; absent: 0 (off). */
  keepAliveWindowS?: number;
}

export function functionRecord(f: FnShape): FunctionRecord {
  const scaling: ScalingSpec = {
    ...scalingDefaults,
    min: f.min,
    max: f.max,
    stableWindowS: f.stableWindowS ?? 6,
    panicWindowS: f.panicWindowS ?? 2,
    tickS: f.tickS ?? 1,
    keepAliveWindowS: f.keepAliveWindowS ?? 0,
  };
  const spec = {
    name: f.name, image: '', command: ['sim'], workingDir: '', port: 8080, env: {}, egress: false, auth: 'none' as const,
    resources: { cpuMillis: f.cpuMillis, memoryMiB: f.memoryMiB },
    concurrency: f.concurrency, timeoutMs: 60_000, scaling,
  };
  return { spec, uid: `${spec.name}-1`, generation: 1, createdAtMs: 0, updatedAtMs: 0 };
}

/** Defaults shared by the swarm and the scenarios: short timeouts so runs converge fast. */
export function baseOptions(seed: number): SimOptions {
  return {
    seed, stepMs: 10, workers: [], dataPlanes: 1, functions: [], loads: [],
    link: {
      delayMs: [0.2, 2], slowRate: 0, slowMs: [0, 0], dropRate: 0,
      keepaliveTimeoutMs: 3_000, backoffMs: [50, 2_000],
    },
    creation: { createMs: [20, 200], slowRate: 0, slowFactor: [1, 1], failRate: 0 },
    faults: noFaults,
    churn: noChurn,
    leader: noLeaderChanges,
    checkDrains: false,
    faultPhaseMs: 30_000, quietLoadMs: 5_000, quietMs: 40_000,
    cp: {
      placement: 'kubernetes', heartbeatTimeoutMs: 1_500, creationTimeoutMs: 10_000,
      drainTimeoutMs: 5_000, creatingPerFunctionMax: 10_000, retryBackoffMs: 200, failFastAfter: 3,
    },
    dp: { queueDepthMax: 200, queueWaitMsMax: 8_000, loadBalancing: 'least-loaded' },
  };
}

const pickOf = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)]!;
const between = (rng: Rng, lo: number, hi: number): number => lo + rng.next() * (hi - lo);
/** Half the seeds leave a fault out entirely: rare interleavings need quiet neighbours. */
const maybe = (rng: Rng, rate: number): number => (rng.next() < 0.5 ? 0 : rng.next() * rate);

export function swarmOptions(seed: number, rng: Rng): SimOptions {
  const o = baseOptions(seed);
  const fnCount = 1 + rng.int(4);
  const shapes: FnShape[] = [];
  for (let i = 0; i < fnCount; i += 1) {
    shapes.push({
      name: `fn${i}`, concurrency: pickOf(rng, [1, 1, 2, 4, 10, 0]),
      min: rng.next() < 0.7 ? 0 : 1, max: 1 + rng.int(10),
      cpuMillis: pickOf(rng, [100, 250, 500, 1000]), memoryMiB: pickOf(rng, [128, 256, 512]),
      // A window longer than the quiet phase: a function kept alive is still held, settled, at its end.
      keepAliveWindowS: rng.next() < 0.3 ? 120 : 0,
    });
  }
  o.functions = shapes.map(functionRecord);
  // Every worker fits every function's minimum at once (one sandbox held by a keep-alive
  // counts), so the settled state is reachable.
  let minCpu = 0;
  let minMem = 0;
  for (const s of shapes) {
    const held = Math.max(s.min, s.keepAliveWindowS ? 1 : 0);
    minCpu += held * s.cpuMillis;
    minMem += held * s.memoryMiB;
  }
  const workerCount = 1 + rng.int(5);
  for (let i = 0; i < workerCount; i += 1) {
    o.workers.push({
      id: `w${i}`, cpuMillis: Math.max(minCpu, pickOf(rng, [1000, 2000, 4000, 8000])),
      memoryMiB: Math.max(minMem, pickOf(rng, [1024, 4096, 16384])),
    });
  }
  o.dataPlanes = 1 + rng.int(2);
  o.loads = shapes.map((s) => ({
    fn: s.name, ratePerS: between(rng, 0.5, 30), holdMs: [10, between(rng, 20, 1500)] as const,
    onMs: [2_000, 15_000] as const, offMs: [1_000, 12_000] as const,
  }));
  o.link = {
    ...o.link, delayMs: [0.1, between(rng, 0.5, 20)], slowRate: maybe(rng, 0.05),
    slowMs: [10, between(rng, 20, 1_000)], dropRate: maybe(rng, 0.002),
  };
  o.creation = {
    createMs: [10, between(rng, 20, 800)], slowRate: maybe(rng, 0.1), slowFactor: [2, 10],
    failRate: maybe(rng, 0.2),
  };
  o.faults = {
    linkBreakPerS: maybe(rng, 0.2), partitionPerS: maybe(rng, 0.1), partitionMs: [100, 6_000],
    workerCrashPerS: maybe(rng, 0.05), workerDownMs: [200, 5_000],
    sandboxCrashPerS: maybe(rng, 0.3), cpRestartPerS: maybe(rng, 0.03), cpDownMs: [50, 3_000],
  };
  o.cp.placement = pickOf(rng, ['kubernetes', 'random', 'round-robin'] as const);
  o.dp.loadBalancing = pickOf(rng, ['least-loaded', 'round-robin', 'random', 'knative'] as const);
  o.faultPhaseMs = 20_000 + rng.int(40) * 1_000;
  assert(o.workers.length > 0 && o.functions.length > 0, 'swarm drew an empty cluster');
  return o;
}

/**
 * Churn rates for a swarm seed. Drawn after everything else from the same Rng, so a seed's
 * cluster, load and faults are the same with and without `--churn`.
 */
export function churnOptions(rng: Rng): ChurnRates {
  return {
    specUpdatePerS: maybe(rng, 0.2), knobUpdatePerS: maybe(rng, 0.2), deletePerS: maybe(rng, 0.15),
    recreateAfterMs: [0, between(rng, 10, 5_000)],
    dpRestartPerS: maybe(rng, 0.05), dpDownMs: [50, between(rng, 100, 3_000)],
  };
}

/** Leader-change rates for a swarm seed; drawn last, like the churn rates. */
export function leaderChangeOptions(rng: Rng): LeaderChangeRates {
  return {
    killPerS: maybe(rng, 0.05), pausePerS: 0.02 + rng.next() * 0.08,
    takeoverMs: [50, between(rng, 100, 3_000)], pauseMs: [0, between(rng, 10, 4_000)],
    zombieMs: [0, between(rng, 100, 5_000)], lateMs: [0, between(rng, 1, 500)],
  };
}

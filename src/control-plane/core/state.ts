/**
 * @module control-plane/core/state
 * The state every part of the control-plane core shares (functions, workers, data planes,
 * sandboxes, routing table, deadline heap) and the few helpers they all use to emit effects.
 * The parts (registry, scaler, sandboxes, health) are functions over this state.
 */
import type { WorkerCommandMsg } from '../../api/cluster.js';
import type { Resources } from '../../api/types.js';
import { controlPlaneDefaults } from '../../config/defaults.js';
import { NodeTable } from '../../policy/placement/node-table.js';
import type { Logger } from '../../shared/logger.js';
import type { Rng } from '../../shared/rng.js';
import { DeadlineHeap } from './deadlines.js';
import type { FnState } from './functions.js';
import { Quotas } from './quotas.js';
import { RoutingTable } from './routing.js';
import type { CpEffect, DataPlaneRec, SandboxRec, WorkerRec } from './types.js';

export interface ControlPlaneCoreConfig {
  placement: 'kubernetes' | 'random' | 'round-robin';
  heartbeatTimeoutMs: number;
  creationTimeoutMs: number;
  /** Cap on a drain (a drain waits for the function's timeoutMs, at most this). */
  drainTimeoutMs: number;
  creatingPerFunctionMax: number;
  retryBackoffMs: number;
  /** Consecutive failed creations after which queued requests are failed fast. */
  failFastAfter: number;
  /** Workers and DPs disconnected this long are forgotten (memory and store). */
  peerForgetAfterMs?: number;
  /** Placement failing this long makes DPs fail the function's queued requests with 503. */
  unschedulableFailAfterMs?: number;
  /** Registry operations waiting per function name while one is being stored. */
  registryQueuePerNameMax?: number;
  /** Never fewer sandboxes than requests in flight or queued (default true; false = plain KPA). */
  queueFloor?: boolean;
}

/** A drain never waits longer than this, whatever the function's timeout. */
export const drainTimeoutMsMax = 30_000;

/** Width of a bucket of the ticker's schedule of active functions (CoreState.visitAt). */
export const scheduleBucketMs = 50;

/**
 * How often the CP logs the count of its autoscaler's decisions (`autoscaler.decisions`, at info).
 * Each decision is logged at debug only: at 2,000 cold starts a second, a line per decision
 * (1.6 per cold start) was 9 % of the CP's busy time in a profile (pino and its writes).
 */
export const scaleSummaryIntervalMs = 10_000;
/**
 * How often the leader stores the keep-alive's changed idle times: what a failover can lose of
 * them, and a bound on the writes they cost (one batch per interval, whatever the call rate).
 */
export const idleHistorySaveIntervalMs = 10_000;

/**
 * Placements that found no worker able to take the sandbox: a cumulative count (a blocked
 * function tries again each time capacity may have appeared, and each try counts) and the last
 * reason. Shown in `GET /v1/cluster`; `bench cold` compares it before and after a run, so a run
 * that hit the node size for a moment says so even when room is back at its end.
 */
export interface PlacementRefusals {
  total: number;
  lastReason: string;
}

/** Scale decisions since this CP started: the metrics read them, the summary logs their deltas. */
export interface ScaleDecisionCounts {
  up: number;
  down: number;
  /** Of `up`: from zero sandboxes. */
  fromZero: number;
  /** Of `down`: to zero sandboxes. */
  toZero: number;
}

/** Deleted sandbox ids remembered per CP; older ones are forgotten first. */
export const sandboxTombstonesMax = 65_536;

export class CoreState {
  readonly functions = new Map<string, FnState>();
  readonly workers = new Map<string, WorkerRec>();
  readonly dataPlanes = new Map<string, DataPlaneRec>();
  readonly sandboxes = new Map<string, SandboxRec>();
  readonly routing = new RoutingTable();
  readonly deadlines = new DeadlineHeap();
  /** Per-namespace quotas and the live usage they bound. */
  readonly quotas = new Quotas();
  /**
   * Functions that need a reconcile pass, in the order first marked, each flagged `dirty` while
   * it waits. Which functions the ticker must look at is each one's `active` flag (and
   * `activeFns`). Flags on the function rather than sets of names: at 3,000 cold starts/s two
   * set operations on 24,000 names per mark were 5 % of the CP's main thread (BENCHMARKS "A
   * codec generated per type"). A deleted function is flagged `removed` and never marked again.
   */
  readonly dirtyList: FnState[] = [];
  /**
   * Functions whose keep-alive counts changed since they were last stored (`keepAliveSaved`
   * false); written together every `idleHistorySaveIntervalMs`.
   */
  readonly idleUnsaved: FnState[] = [];
  /** When the next batch of idle histories may be written. */
  idleSaveAtMs = 0;
  /**
   * The functions flagged `active`, in the order they became active (`markAllActiveDirty` walks
   * it). Changed only when a function starts or stops being watched, not at every mark.
   */
  private readonly activeFns = new Set<FnState>();
  /**
   * When the ticker visits each active function: functions by the bucket (`scheduleBucketMs` wide)
   * of their next record, decision or retry. A tick visits only the functions that are due, not
   * every active one (at 24,000 active functions a tick that visited all of them stalled the
   * loop for tens of ms, four times a second).
   */
  private readonly schedule = new Map<number, FnState[]>();
  /** Functions that became active since the last tick: visited at the next one. */
  private activated: FnState[] = [];
  /** The workers in a stable order (placement walks it); change it only through `addWorker` or `workersChanged`. */
  workerList: WorkerRec[] = [];
  /** Placement's copy of every worker's capacity, allocation, schedulable flag and runtimes. */
  readonly nodeTable = new NodeTable();
  placementCursor = 0;
  /** Bumped whenever capacity may have appeared; blocked functions retry only then. */
  capacityEpoch = 0;
  sandboxSeq = 0;
  readonly scaleDecisions: ScaleDecisionCounts = { up: 0, down: 0, fromZero: 0, toZero: 0 };
  /** Sandboxes the scaler wanted that no worker could take (capacity, runtime), since this core started. */
  readonly placementRefusals: PlacementRefusals = { total: 0, lastReason: '' };
  /** The counts at the last summary and when it was logged (-1: the first tick starts the window). */
  scaleSummary: ScaleDecisionCounts & { atMs: number } = { atMs: -1, up: 0, down: 0, fromZero: 0, toZero: 0 };
  readonly idPrefix: string;
  readonly peerForgetAfterMs: number;
  readonly unschedulableFailAfterMs: number;
  readonly registryQueuePerNameMax: number;
  effects: CpEffect[] = [];
  /**
   * Workers known from the store at start-up that have not said hello yet (for at most the
   * heartbeat timeout): restored functions wait for their sandboxes instead of replacing them.
   */
  readonly workersExpectedBack = new Set<string>();
  /**
   * When peers could first reach this CP (see health.onPeersReachable); restored peers' grace runs
   * from here. 0: reachable from the start (a standby CP listens before it leads); Infinity: not
   * yet (a lone CP loads before it listens).
   */
  peersReachableFromMs = 0;
  /** Sandbox ids this CP has told a worker to delete, oldest first (bounded). */
  private readonly tombstones = new Set<string>();

  constructor(readonly config: ControlPlaneCoreConfig, readonly rng: Rng, readonly log: Logger) {
    this.idPrefix = rng.int(0x100000000).toString(36).padStart(7, '0');
    this.peerForgetAfterMs = config.peerForgetAfterMs ?? controlPlaneDefaults.peerForgetAfterMs;
    this.unschedulableFailAfterMs = config.unschedulableFailAfterMs ?? controlPlaneDefaults.unschedulableFailAfterMs;
    this.registryQueuePerNameMax = config.registryQueuePerNameMax ?? controlPlaneDefaults.registryQueuePerNameMax;
  }

  /** A new worker: last in the list placement walks (map order), and in its table. O(1). */
  addWorker(w: WorkerRec): void {
    this.workers.set(w.id, w);
    this.workerList.push(w);
    this.nodeTable.append(w);
  }

  /** Workers were forgotten or restored: the list placement walks, and its table, again. O(n). */
  workersChanged(): void {
    this.workerList = [...this.workers.values()];
    this.nodeTable.rebuild(this.workerList);
  }

  /** A worker's capacity, allocation, schedulable flag or runtimes changed (placement's table). */
  workerChanged(w: WorkerRec): void {
    this.nodeTable.refresh(w);
  }

  /** Adds (sign 1) or frees (-1) a sandbox's reservation on its worker. */
  allocate(w: WorkerRec, r: Resources, sign: 1 | -1): void {
    addResources(w.allocated, r, sign);
    this.nodeTable.refresh(w);
  }

  /** The function a sandbox belongs to, or undefined if that function was deleted (or re-created). */
  fnOf(sb: SandboxRec): FnState | undefined {
    const fn = this.functions.get(sb.fn);
    return fn && fn.record.uid === sb.fnUid ? fn : undefined;
  }

  sendWorker(workerId: string, command: WorkerCommandMsg): void {
    this.effects.push({ kind: 'worker_send', workerId, command });
  }

  /**
   * Tell a worker to delete a sandbox. The id is remembered (a bounded tombstone), because the
   * command may reach the worker late (a partition): a report of that sandbox arriving before it
   * (a late ready, a reconnect's hello) must not bring it back into routing, or the late delete
   * would stop it under a request.
   */
  deleteOnWorker(workerId: string, sandboxId: string): void {
    this.tombstones.delete(sandboxId);
    this.tombstones.add(sandboxId);
    if (this.tombstones.size > sandboxTombstonesMax) this.tombstones.delete(this.tombstones.values().next().value!);
    this.sendWorker(workerId, { case: 'delete', value: { sandboxId } });
    if (this.log.isDebugEnabled()) this.log.debug('sandbox.delete_sent', { id: sandboxId, workerId });
  }

  /** Whether this CP has asked for the sandbox's deletion (see `deleteOnWorker`). */
  isTombstoned(sandboxId: string): boolean {
    return this.tombstones.has(sandboxId);
  }

  /** `fn` needs a reconcile pass; the ticker watches it from the next tick if it did not already. */
  markDirty(fn: FnState): void {
    if (fn.removed) return; // a stale reference: the function was deleted (or replaced)
    if (!fn.dirty) {
      fn.dirty = true;
      this.dirtyList.push(fn);
    }
    if (fn.active) return;
    fn.active = true;
    this.activeFns.add(fn);
    this.activated.push(fn);
  }

  /** The ticker stops watching `fn` (idle, or deleted) until it is marked again. */
  deactivate(fn: FnState): void {
    fn.active = false;
    this.activeFns.delete(fn);
  }

  /** The ticker visits `fn` at the first tick at or after `atMs` (an earlier visit already planned stands). */
  visitAt(fn: FnState, atMs: number): void {
    const bucket = Math.ceil(atMs / scheduleBucketMs);
    if (fn.visitBucket !== -1 && fn.visitBucket <= bucket) return;
    fn.visitBucket = bucket;
    const fns = this.schedule.get(bucket);
    if (fns === undefined) this.schedule.set(bucket, [fn]);
    else fns.push(fn);
  }

  /** The functions to visit at this tick (see `takeDueInto`). */
  takeDue(nowMs: number): FnState[] {
    return this.takeDueInto(nowMs, []);
  }

  /**
   * Appends to `due` the functions to visit at this tick: the newly active and those due by
   * `nowMs`, and returns it. An entry left behind by a move to an earlier bucket, or by a
   * deleted function, is skipped.
   */
  takeDueInto(nowMs: number, due: FnState[]): FnState[] {
    const now = Math.floor(nowMs / scheduleBucketMs);
    for (const fn of this.activated) if (!fn.removed) due.push(fn);
    this.activated = [];
    for (const [bucket, fns] of this.schedule) {
      if (bucket > now) continue;
      this.schedule.delete(bucket);
      for (const fn of fns) {
        if (fn.removed || fn.visitBucket !== bucket) continue;
        fn.visitBucket = -1;
        due.push(fn);
      }
    }
    return due;
  }

  /** Every function the ticker watches needs a reconcile pass (capacity or workers changed). */
  markAllActiveDirty(): void {
    for (const fn of this.activeFns) {
      if (fn.dirty) continue;
      fn.dirty = true;
      this.dirtyList.push(fn);
    }
  }

  /** Seal the routing changes of this call into one broadcast delta, then hand out the effects. */
  flush(): CpEffect[] {
    const delta = this.routing.seal();
    if (delta) this.effects.push({ kind: 'dp_broadcast', update: { case: 'delta', value: delta } });
    for (const e of this.effects) if (e.kind === 'api_done' && e.routingVersion === 0) e.routingVersion = this.routing.version;
    const out = this.effects;
    this.effects = [];
    return out;
  }
}

export function addResources(into: Resources, r: Resources, sign: 1 | -1): void {
  into.cpuMillis += sign * r.cpuMillis;
  into.memoryMiB += sign * r.memoryMiB;
}

export function fromWire(r: { cpuMillis: number; memoryMib: number } | undefined): Resources {
  return { cpuMillis: r?.cpuMillis ?? 0, memoryMiB: r?.memoryMib ?? 0 };
}

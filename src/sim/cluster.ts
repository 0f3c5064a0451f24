/**
 * @module sim/cluster
 * One simulated cluster: the real ControlPlaneCore, DataPlaneCores and WorkerCores (behind the
 * daemon's own driver, over fake runtimes), wired to open-loop clients and a fake network, all in virtual time and all drawn from
 * one seed. This file plays the shells: it turns messages into core events exactly as
 * `control-plane/shell/rpc-server.ts` does, carries out the effects as
 * `control-plane/main.ts` does, and carries out the DP effects as `data-plane/main.ts` does.
 *
 *   clients ─admit─▶ DataPlaneCore ◀─routing── Network ── ControlPlaneCore
 *                                  ──demand──▶            ◀── Network ──▶ FakeWorker ×N
 *
 * Periods (virtual): step 10 ms, CP tick 100 ms, DP expiry 50 ms, DP demand report 1000 ms,
 * worker heartbeat 250 ms. Faults (`options.faults`, `options.churn`) stop at the quiet phase.
 */
import type { FunctionRecord, FunctionSpec, IdleHistoryRecord } from '../api/types.js';
import { ControlPlaneCore } from '../control-plane/core/control-plane.js';
import type { CpEffect, CpEvent } from '../control-plane/core/types.js';
import { DataPlaneCore, newWaiter, type DpEffect, type Waiter } from '../data-plane/core/data-plane.js';
import { dataPlaneEventToCp, workerEventToCp } from '../control-plane/shell/peer-events.js';
import {
  type DataPlaneEvent,
  type RoutingBatch,
  type WorkerCommandBatch,
  type WorkerEvent,
} from '../gen/dirigent/v1/cluster_pb.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { decodeDataPlaneEvent, decodeWorkerEvent, encodeDataPlaneEvent } from '../wire/codec.js';
import { seededRng, type Rng } from '../shared/rng.js';
import { TimerQueue, VirtualClock } from './clock.js';
import { RequestLedger, startLoad } from './fake-client.js';
import { newFakeWorker, type FakeWorker } from './fake-worker.js';
import { commandBatch, deliverRouting, routingBatch } from './fencing.js';
import { Network, type Link } from './network.js';
import type { SimOptions } from './options.js';

export type WorkerLink = Link<WorkerEvent, WorkerCommandBatch>;
export type DpLink = Link<DataPlaneEvent, RoutingBatch>;

export interface SimDataPlane {
  id: string;
  core: DataPlaneCore;
  link: DpLink;
  /** The DP process is dead (churn.ts); a crash bumps the incarnation (old requests are void). */
  down: boolean;
  incarnation: number;
  /** The highest leader term of any batch this DP process received (checks fencing). */
  termDelivered: number;
}

/** Virtual time a store write takes (SQLite group commit is about this). */
const storeLatencyMs = 3;

export const periods = Object.freeze({
  cpTickMs: 100, dpExpiryMs: 50, dpDemandMs: 1_000, heartbeatMs: 250,
});

export class Cluster {
  readonly clock = new VirtualClock();
  readonly timers = new TimerQueue();
  readonly rng: Rng;
  readonly ledger = new RequestLedger();
  /** The store: survives CP restarts, like the SQLite store does. */
  readonly records = new Map<string, FunctionRecord>();
  /** Worker and DP records, as the store keeps them for a restarted CP. */
  private readonly storedWorkers = new Map<string, { id: string; address: string }>();
  private readonly storedDps = new Map<string, { id: string; proxyAddress: string; internalAddress: string }>();
  /** The keep-alive's idle histories, as the store keeps them for a new leader. */
  readonly idleHistories = new Map<string, IdleHistoryRecord>();
  private apiSeq = 0;
  readonly workers = new Map<string, FakeWorker>();
  readonly dps: SimDataPlane[] = [];
  readonly workerNet: Network<WorkerEvent, WorkerCommandBatch>;
  readonly dpNet: Network<DataPlaneEvent, RoutingBatch>;
  readonly faultCounts = new Map<string, number>();
  cp: ControlPlaneCore;
  /** The standby CP: it takes over (loads the store, gets a higher term) when the leader dies. */
  standby: ControlPlaneCore;
  /** The leader's term: grows on every takeover (etcd) or restart (the SQLite counter). */
  term = 1;
  cpDown = false;
  /** Peers whose hello the current CP has seen (the rpc-server's workerOut/dpOut maps). */
  readonly cpWorkers = new Set<string>();
  readonly cpDps = new Set<string>();
  /** Last time the CP may have learnt of sandboxes it did not create (adoption). */
  lastAdoptionRiskMs = 0;
  quiet = false;
  stepIndex = 0;
  /** Work for the end of the current step (worker flushes). */
  readonly deferred: (() => void)[] = [];
  /** Sandboxes the workers stopped since the checkers last looked. */
  readonly stoppedSandboxes: { workerId: string; sandboxId: string; atMs: number; drainStartedAtMs: number | null }[] = [];
  /**
   * When the CP began draining each sandbox, as the checker saw it: the CP may forget a drained
   * sandbox (its worker's stream broke) before the delete it already sent reaches the worker.
   */
  readonly drainsSeen = new Map<string, number>();

  constructor(readonly options: SimOptions, readonly log: Logger = silentLogger) {
    this.rng = seededRng(options.seed);
    this.cp = this.newCp();
    this.cp.setTerm(this.term);
    this.standby = this.newCp();
    this.workerNet = new Network(options.link, this.rng.split(), this.timers, {
      onCp: (l, m, now) => this.onWorkerMessage(l, m, now),
      onPeer: (l, m, now) => this.workers.get(l.peerId)!.onCommand(m, now),
      onBroken: (l, cpSees, now) => {
        this.workers.get(l.peerId)!.onBroken(now);
        this.onWorkerBroken(l, cpSees);
      },
      onConnected: (l, now) => this.workers.get(l.peerId)!.onConnected(now),
    });
    this.dpNet = new Network(options.link, this.rng.split(), this.timers, {
      onCp: (l, m, now) => this.onDpMessage(l, m, now),
      onPeer: (l, m, now) => deliverRouting(this, this.dps.find((d) => d.link === l)!, m, now, true),
      onBroken: (l, cpSees) => this.onDpBroken(l, cpSees),
      onConnected: (l, now) => this.dpNet.sendToCp(l, dpHello(l.peerId), now),
    });
    for (const r of options.functions) this.records.set(r.spec.name, r);
    for (const record of this.records.values()) {
      this.cpHandle({ kind: 'function_upserted', record }, 0);
    }
    this.buildPeers();
    const stopAtMs = options.faultPhaseMs + options.quietLoadMs;
    const invoke = (fn: string, holdMs: number, nowMs: number): void => {
      this.invoke(fn, holdMs, nowMs);
    };
    for (const load of options.loads) {
      startLoad(load, this.rng.split(), this.timers, stopAtMs, invoke);
    }
  }

  private newCp(): ControlPlaneCore {
    return new ControlPlaneCore(this.options.cp, this.rng.split(), this.log.child({ c: 'cp' }));
  }

  private buildPeers(): void {
    for (const w of this.options.workers) {
      this.workers.set(w.id, newFakeWorker(this, w, this.workerNet.add(w.id), periods.heartbeatMs));
      this.workerNet.connect(this.workerNet.links.get(w.id)!, 0);
    }
    for (let i = 0; i < this.options.dataPlanes; i += 1) {
      const id = `dp${i}`;
      const core = this.newDpCore(id);
      const dp = { id, core, link: this.dpNet.add(id), down: false, incarnation: 0, termDelivered: 0 };
      this.dps.push(dp);
      this.dpNet.connect(dp.link, 0);
    }
  }

  /** A DP core as data-plane/main.ts builds it (also for a DP that restarts empty). */
  newDpCore(id: string): DataPlaneCore {
    return new DataPlaneCore(this.options.dp, this.rng.split(), this.log.child({ c: id }));
  }

  /**
   * Management API calls, as the API server makes them: the registry in the core decides, the
   * store effect is carried out after `storeLatencyMs` (virtual), then the core completes it.
   */
  apiCreate(spec: FunctionSpec, uid: string, nowMs: number): void {
    this.apiSeq += 1;
    this.cpHandle({ kind: 'api_create', requestId: this.apiSeq, spec, uid, wallMs: nowMs }, nowMs);
  }

  apiUpdate(name: string, patch: (current: FunctionSpec) => FunctionSpec, nowMs: number): void {
    this.apiSeq += 1;
    this.cpHandle({ kind: 'api_update', requestId: this.apiSeq, name, patch, wallMs: nowMs }, nowMs);
  }

  apiDelete(name: string, nowMs: number): void {
    this.apiSeq += 1;
    this.cpHandle({ kind: 'api_delete', requestId: this.apiSeq, name }, nowMs);
  }

  /** The store write of a registry operation: durable after a virtual latency, then reported. */
  private storeWrite(opId: number, apply: () => void, nowMs: number): void {
    const cp = this.cp;
    this.timers.at(nowMs + storeLatencyMs, (t) => {
      if (this.cp !== cp) return; // the CP died before the write: it never happened
      apply();
      this.cpHandle({ kind: 'persisted', opId }, t);
    });
  }

  get nowMs(): number {
    return this.clock.nowMs();
  }

  countFault(kind: string): void {
    this.faultCounts.set(kind, (this.faultCounts.get(kind) ?? 0) + 1);
  }

  // ------------------------------------------------------------------ CP shell

  cpHandle(event: CpEvent, nowMs: number): void {
    if (this.cpDown) return;
    this.exec(this.cp.handle(event, nowMs), nowMs);
  }

  /** As control-plane/main.ts `exec`: sends go only to streams whose hello the CP has seen. */
  private exec(effects: CpEffect[], nowMs: number): void {
    const term = this.cp.term;
    for (const e of effects) {
      if (e.kind === 'worker_send') {
        if (this.cpWorkers.has(e.workerId)) {
          this.workerNet.sendToPeer(this.workerNet.links.get(e.workerId)!, commandBatch(term, e.command), nowMs);
        }
      } else if (e.kind === 'dp_send') {
        if (this.cpDps.has(e.dataPlaneId)) {
          this.dpNet.sendToPeer(this.dpNet.links.get(e.dataPlaneId)!, routingBatch(term, e.update), nowMs);
        }
      } else if (e.kind === 'dp_broadcast') {
        const update = routingBatch(term, e.update);
        for (const id of this.cpDps) {
          this.dpNet.sendToPeer(this.dpNet.links.get(id)!, update, nowMs);
        }
      }
      else if (e.kind === 'store_function') {
        const record = e.record;
        this.storeWrite(e.opId, () => this.records.set(record.spec.name, record), nowMs);
      } else if (e.kind === 'store_delete_function') {
        const name = e.name;
        this.storeWrite(e.opId, () => {
          this.records.delete(name);
          this.idleHistories.delete(name);
        }, nowMs);
      } else if (e.kind === 'store_delete_idle_history') {
        const cp = this.cp;
        const name = e.name;
        this.timers.at(nowMs + storeLatencyMs, () => {
          if (this.cp !== cp) return; // the CP died before the write
          this.idleHistories.delete(name);
        });
      } else if (e.kind === 'store_idle_histories') {
        const cp = this.cp;
        const records = e.records;
        this.timers.at(nowMs + storeLatencyMs, () => {
          if (this.cp !== cp) return; // the CP died before the write
          for (const r of records) this.idleHistories.set(r.function, r);
        });
      }
      else if (e.kind === 'persist_worker') this.storedWorkers.set(e.id, { id: e.id, address: e.address });
      else if (e.kind === 'persist_data_plane') this.storedDps.set(e.id, { id: e.id, proxyAddress: e.proxyAddress, internalAddress: e.internalAddress });
      else if (e.kind === 'forget_worker') this.storedWorkers.delete(e.id);
      else if (e.kind === 'forget_data_plane') this.storedDps.delete(e.id);
      // api_done: no client waits on the answer.
    }
  }

  private onWorkerMessage(link: WorkerLink, msg: WorkerEvent, nowMs: number): void {
    const decoded = decodeWorkerEvent(msg);
    if (!decoded.ok) throw new Error(`worker ${link.peerId} sent an invalid ${decoded.field}: ${decoded.reason}`);
    const e = decoded.msg;
    const workerId = link.peerId;
    if (e.case === 'hello') {
      this.cpWorkers.add(workerId);
      this.lastAdoptionRiskMs = nowMs;
    } else if (!this.cpWorkers.has(workerId)) {
      throw new Error(`worker ${workerId} sent ${e.case} before hello`);
    }
    this.cpHandle(workerEventToCp(workerId, e), nowMs);
  }

  private onWorkerBroken(link: WorkerLink, cpSees: boolean): void {
    const known = this.cpWorkers.delete(link.peerId);
    if (cpSees && known) {
      this.cpHandle({ kind: 'worker_disconnected', workerId: link.peerId }, this.nowMs);
    }
  }

  private onDpMessage(link: DpLink, msg: DataPlaneEvent, nowMs: number): void {
    const decoded = decodeDataPlaneEvent(msg);
    if (!decoded.ok) throw new Error(`${link.peerId} sent an invalid ${decoded.field}: ${decoded.reason}`);
    const e = decoded.msg;
    const dataPlaneId = link.peerId;
    if (e.case === 'hello') this.cpDps.add(dataPlaneId);
    else if (!this.cpDps.has(dataPlaneId)) throw new Error(`data plane ${dataPlaneId} sent ${e.case} before hello`);
    this.cpHandle(dataPlaneEventToCp(dataPlaneId, e), nowMs);
  }

  private onDpBroken(link: DpLink, cpSees: boolean): void {
    const known = this.cpDps.delete(link.peerId);
    if (cpSees && known) {
      this.cpHandle({ kind: 'dp_disconnected', dataPlaneId: link.peerId }, this.nowMs);
    }
  }

  // ------------------------------------------------------------------ DP shell

  /** As data-plane/main.ts `runEffects`: carries out what a DP core call returned. */
  runEffects(dp: SimDataPlane, effects: DpEffect[], nowMs: number): void {
    const sandboxIds: string[] = [];
    let firstDemand = false;
    for (const fx of effects) {
      if (fx.kind === 'dispatch') this.startRequest(dp, fx.waiter, nowMs);
      else if (fx.kind === 'fail') this.ledger.finish(fx.waiter, fx.status, fx.code);
      else if (fx.kind === 'drained') sandboxIds.push(fx.sandboxId);
      else if (fx.kind === 'first_demand') firstDemand = true;
      // close_pool: no connection pools in the sim
    }
    if (sandboxIds.length > 0) {
      const value = { sandboxIds };
      this.dpSend(dp, encodeDataPlaneEvent({ case: 'drained', value }), nowMs);
    }
    const functions = firstDemand ? dp.core.firstDemandReport() : [];
    if (functions.length > 0) {
      const value = { functions, firstDemand: true };
      this.dpSend(dp, encodeDataPlaneEvent({ case: 'demand', value }), nowMs);
    }
  }

  dpSend(dp: SimDataPlane, ev: DataPlaneEvent, nowMs: number): void {
    this.dpNet.sendToCp(dp.link, ev, nowMs);
  }

  /** The front end sticks each function to one DP (hash of the name; here its index). */
  invoke(fn: string, holdMs: number, nowMs: number): void {
    const dp = this.dps[fnIndex(fn) % this.dps.length]!;
    if (dp.down) {
      this.ledger.reject(503, 'dp_down'); // the front end has no other DP for this hash
      return;
    }
    // The front end's readiness check keeps traffic off a DP without a routing table yet.
    if (!dp.core.synced) {
      this.ledger.reject(503, 'dp_not_ready');
      return;
    }
    const waiter = newWaiter(fn, nowMs);
    const r = dp.core.admit(fn, waiter, nowMs);
    if (r.kind === 'not_found') this.ledger.reject(404, 'function_not_found');
    else if (r.kind === 'not_ready') this.ledger.reject(503, 'not_ready');
    else if (r.kind === 'queue_full') this.ledger.reject(503, 'queue_full');
    else this.ledger.accept(waiter, fn, this.dps.indexOf(dp), holdMs, nowMs);
    this.runEffects(dp, r.effects, nowMs);
  }

  /** The request runs in its sandbox; it fails with 502 if the sandbox is gone by the end. */
  private startRequest(dp: SimDataPlane, waiter: Waiter, nowMs: number): void {
    const req = this.ledger.byWaiter.get(waiter)!;
    const ep = waiter.endpoint!;
    this.ledger.started(req, ep, nowMs);
    const incarnation = dp.incarnation;
    this.timers.at(nowMs + req.holdMs, (t) => {
      if (dp.incarnation !== incarnation) return; // the DP died: the request failed with it
      const alive = this.workers.get(ep.workerId)?.running.has(ep.id) === true;
      this.ledger.finish(waiter, alive ? 200 : 502, alive ? 'ok' : 'sandbox_gone');
      this.runEffects(dp, dp.core.release(waiter, t), t);
    });
  }

  // ------------------------------------------------------------------ time

  /** One step: timers, deliveries, periodic work, then faults. */
  step(): void {
    this.stepIndex += 1;
    const nowMs = this.stepIndex * this.options.stepMs;
    this.clock.advanceTo(nowMs);
    this.timers.runDue(nowMs);
    this.workerNet.deliver(nowMs);
    this.dpNet.deliver(nowMs);
    this.periodic(nowMs);
    // The end of a turn: the worker drivers flush their batches (as the daemon's setImmediate).
    for (let i = 0; i < this.deferred.length; i += 1) this.deferred[i]!();
    this.deferred.length = 0;
  }

  private periodic(nowMs: number): void {
    const every = (periodMs: number): boolean => nowMs % periodMs === 0;
    if (every(periods.dpExpiryMs)) {
      for (const dp of this.dps) {
        if (dp.down) continue;
        this.runEffects(dp, dp.core.expire(nowMs), nowMs);
      }
    }
    if (every(periods.dpDemandMs)) {
      for (const dp of this.dps) {
        if (dp.down) continue;
        const functions = dp.core.takeDemand(nowMs);
        if (functions.length === 0) continue;
        const value = { functions, firstDemand: false };
        this.dpSend(dp, encodeDataPlaneEvent({ case: 'demand', value }), nowMs);
      }
    }
    if (every(periods.heartbeatMs)) for (const w of this.workers.values()) w.tick(nowMs);
    if (every(periods.cpTickMs) && !this.cpDown) this.exec(this.cp.tick(nowMs), nowMs);
  }

  // ------------------------------------------------------------------ restarts

  /** The CP process dies: every stream breaks unseen; a new core starts from the store. */
  crashCp(nowMs: number): void {
    this.cpDown = true;
    this.workerNet.refuse = true;
    this.dpNet.refuse = true;
    for (const l of this.workerNet.links.values()) this.workerNet.breakLink(l, false, nowMs);
    for (const l of this.dpNet.links.values()) this.dpNet.breakLink(l, false, nowMs);
    this.cpWorkers.clear();
    this.cpDps.clear();
  }

  /** The standby takes over (or, in the single-CP layout, the CP restarts) with a higher term. */
  startCp(nowMs: number): void {
    if (!this.cpDown) return;
    this.cp = this.standby;
    this.standby = this.newCp();
    this.term += 1;
    this.cp.setTerm(this.term);
    this.cpDown = false;
    this.workerNet.refuse = false;
    this.dpNet.refuse = false;
    this.lastAdoptionRiskMs = nowMs;
    for (const r of this.records.values()) {
      this.cpHandle({ kind: 'function_upserted', record: r, reconstructed: true, idleHistory: this.idleHistories.get(r.spec.name) }, nowMs);
    }
    this.cp.loadPeers([...this.storedWorkers.values()], [...this.storedDps.values()], nowMs);
    this.exec(this.cp.tick(nowMs), nowMs);
  }
}

function dpHello(id: string): DataPlaneEvent {
  const value = { dataPlaneId: id, proxyAddress: `${id}:8080`, internalAddress: `${id}:8081` };
  return encodeDataPlaneEvent({ case: 'hello', value });
}

function fnIndex(name: string): number {
  let h = 0;
  for (let i = 0; i < name.length; i += 1) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return h;
}

/**
 * @module sim/leader
 * Leader changes (the swarm turns them on with `--leader-changes`):
 *  - leader kill: the leader's process dies; after the lease runs out the standby wins the
 *    election with a higher term, loads the store, and workers and DPs reconnect to it;
 *  - paused leader (SIGSTOP past its lease): the same takeover, but the old leader's core is not
 *    dead. When it resumes it first delivers what it had in flight, then keeps ticking for a while
 *    (until it learns it lost the lease) and sends what its ticks decide (workers lost, endpoints
 *    removed, drains and deletes), late, with its old term.
 * Where a late message can arrive: a peer has one stream at a time, and the streams to the old
 * leader broke at the pause, so a peer whose stream is to the new leader never receives the old
 * one's messages. It does when it opens a stream to the old leader again while that one still
 * believes it leads (a reconnect to the old address, a stale redirect): by then it has heard from
 * the new leader. So a late message reaches only a peer that has received a higher term, and
 * the peer must refuse it; a peer that has not (or restarted since) never gets it.
 * The invariant that matters is checked where peers apply messages (`fake-worker.ts`,
 * `fencing.ts`): nothing of a term lower than one a peer has received is ever acted on.
 */
import type { ControlPlaneCore } from '../control-plane/core/control-plane.js';
import type { CpEffect } from '../control-plane/core/types.js';
import type { RoutingBatch, WorkerCommandBatch } from '../gen/dirigent/v1/cluster_pb.js';
import { periods, type Cluster } from './cluster.js';
import { commandBatch, deliverRouting, routingBatch } from './fencing.js';

export interface LeaderChangeRates {
  killPerS: number;
  pausePerS: number;
  /** From the leader's death or pause until the standby has taken over (the lease TTL and more). */
  takeoverMs: readonly [number, number];
  /** How long a paused leader stays paused (past the takeover, so it comes back deposed). */
  pauseMs: readonly [number, number];
  /** How long a resumed old leader keeps acting before it notices it lost the lease. */
  zombieMs: readonly [number, number];
  /** Extra delay of each late message from the old leader. */
  lateMs: readonly [number, number];
}

export const noLeaderChanges: Readonly<LeaderChangeRates> = Object.freeze<LeaderChangeRates>({
  killPerS: 0, pausePerS: 0, takeoverMs: [0, 0], pauseMs: [0, 0], zombieMs: [0, 0], lateMs: [0, 0],
});

export function injectLeaderChanges(c: Cluster, nowMs: number): void {
  const r = c.options.leader;
  const p = (ratePerS: number): boolean => ratePerS > 0 && c.rng.next() < (ratePerS * c.options.stepMs) / 1000;
  if (c.cpDown) return;
  if (p(r.killPerS)) killLeader(c, nowMs);
  else if (p(r.pausePerS)) pauseLeader(c, nowMs);
}

function draw(c: Cluster, r: readonly [number, number]): number {
  return r[0] + c.rng.next() * (r[1] - r[0]);
}

export function killLeader(c: Cluster, nowMs: number): void {
  c.countFault('leader_kill');
  c.crashCp(nowMs);
  c.timers.at(nowMs + draw(c, c.options.leader.takeoverMs), (t) => c.startCp(t));
}

/** What the paused leader had on its streams: delivered when it resumes, not before. */
interface Held {
  workers: { id: string; batch: WorkerCommandBatch }[];
  dps: { id: string; batch: RoutingBatch }[];
}

export function pauseLeader(c: Cluster, nowMs: number): void {
  c.countFault('leader_pause');
  const r = c.options.leader;
  const old = c.cp;
  const held: Held = { workers: [], dps: [] };
  for (const l of c.workerNet.links.values()) for (const m of l.toPeer) held.workers.push({ id: l.peerId, batch: m.msg });
  for (const l of c.dpNet.links.values()) for (const m of l.toPeer) held.dps.push({ id: l.peerId, batch: m.msg });
  const dpIds = [...c.cpDps];
  const lanes: Lanes = new Map();
  // To the peers the leader is gone (its streams time out); the store and etcd see it lose the lease.
  c.crashCp(nowMs);
  const takeoverMs = draw(c, r.takeoverMs);
  c.timers.at(nowMs + takeoverMs, (t) => c.startCp(t));
  const resumeAtMs = nowMs + takeoverMs + draw(c, r.pauseMs);
  c.timers.at(resumeAtMs, (t) => {
    for (const h of held.workers) late(c, lanes, `w:${h.id}`, t, () => toWorker(c, h.id, h.batch));
    for (const h of held.dps) late(c, lanes, `dp:${h.id}`, t, () => toDp(c, h.id, h.batch));
    runDeposed(c, { core: old, dpIds, lanes }, t, t + draw(c, r.zombieMs));
  });
}

/**
 * Per old stream (peer), the time of the last late delivery: an old stream is still one ordered
 * stream, so its late messages arrive in the order they were sent.
 */
type Lanes = Map<string, number>;

interface Deposed {
  core: ControlPlaneCore;
  /** The DPs it had streams to when it was paused (its broadcasts go there). */
  dpIds: string[];
  lanes: Lanes;
}

/** The resumed old leader ticks on until `untilMs`, sending what it decides with its old term. */
function runDeposed(c: Cluster, d: Deposed, nowMs: number, untilMs: number): void {
  if (nowMs > untilMs || c.quiet) return;
  sendLate(c, d, d.core.tick(nowMs), nowMs);
  c.timers.at(nowMs + periods.cpTickMs, (t) => runDeposed(c, d, t, untilMs));
}

function sendLate(c: Cluster, d: Deposed, effects: CpEffect[], nowMs: number): void {
  for (const e of effects) {
    if (e.kind === 'worker_send') {
      const batch = commandBatch(d.core.term, e.command);
      late(c, d.lanes, `w:${e.workerId}`, nowMs, () => toWorker(c, e.workerId, batch));
    } else if (e.kind === 'dp_send' || e.kind === 'dp_broadcast') {
      const batch = routingBatch(d.core.term, e.update);
      const ids = e.kind === 'dp_send' ? [e.dataPlaneId] : d.dpIds;
      for (const id of ids) late(c, d.lanes, `dp:${id}`, nowMs, () => toDp(c, id, batch));
    }
    // Store writes of a deposed leader fail their revision check: they never happen.
  }
}

function late(c: Cluster, lanes: Lanes, lane: string, nowMs: number, deliver: () => void): void {
  c.countFault('late_message_sent');
  // Timers of equal time run in insertion order, so max() keeps the lane FIFO.
  const atMs = Math.max(nowMs + draw(c, c.options.leader.lateMs), lanes.get(lane) ?? 0);
  lanes.set(lane, atMs);
  c.timers.at(atMs, deliver);
}

function toWorker(c: Cluster, id: string, batch: WorkerCommandBatch): void {
  const w = c.workers.get(id);
  if (!w?.alive || w.termReceived <= batch.term) return; // no stream to the old leader
  c.countFault('late_message_delivered');
  const stale = w.staleBatches;
  w.onCommand(batch, c.nowMs);
  if (w.staleBatches > stale) c.countFault('stale_commands_ignored');
}

function toDp(c: Cluster, id: string, batch: RoutingBatch): void {
  const dp = c.dps.find((d) => d.id === id);
  if (!dp || dp.down || dp.termDelivered <= batch.term) return; // no stream to the old leader
  c.countFault('late_message_delivered');
  deliverRouting(c, dp, batch, c.nowMs, false);
}

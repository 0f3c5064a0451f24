/**
 * @module sim/faults
 * The fault injector (the VOPR's safety phase): each step, each kind of fault fires with
 * probability rate × step, against a target drawn from the seeded Rng. `beginQuiet` heals
 * everything for the liveness phase: partitions end, crashed processes restart, and the
 * per-message faults (drops, slow messages, slow or failing creations) stop.
 */
import { injectChurn, restartDp } from './churn.js';
import type { Cluster } from './cluster.js';
import { injectLeaderChanges } from './leader.js';

export function injectFaults(c: Cluster, nowMs: number): void {
  const f = c.options.faults;
  const p = (ratePerS: number): boolean =>
    ratePerS > 0 && c.rng.next() < (ratePerS * c.options.stepMs) / 1000;
  if (p(f.linkBreakPerS)) breakRandomLink(c, nowMs);
  if (p(f.partitionPerS)) partitionRandomLink(c, nowMs);
  if (p(f.workerCrashPerS)) crashRandomWorker(c, nowMs);
  if (p(f.sandboxCrashPerS)) crashRandomSandbox(c, nowMs);
  if (p(f.cpRestartPerS) && !c.cpDown) {
    c.countFault('cp_restart');
    c.crashCp(nowMs);
    c.timers.at(nowMs + draw(c, f.cpDownMs), (t) => c.startCp(t));
  }
  injectChurn(c, nowMs);
  injectLeaderChanges(c, nowMs);
}

function draw(c: Cluster, r: readonly [number, number]): number {
  return r[0] + c.rng.next() * (r[1] - r[0]);
}

function allLinks(c: Cluster) {
  return [
    ...[...c.workerNet.links.values()].map((link) => ({ net: c.workerNet as NetLike, link })),
    ...[...c.dpNet.links.values()].map((link) => ({ net: c.dpNet as NetLike, link })),
  ];
}

/** The two networks differ only in message types; fault code never touches messages. */
interface NetLike {
  breakLink(link: unknown, cpSees: boolean, nowMs: number): void;
  setDown(link: unknown, down: boolean, nowMs: number): void;
}

function breakRandomLink(c: Cluster, nowMs: number): void {
  const links = allLinks(c).filter((x) => x.link.connected);
  if (links.length === 0) return;
  const x = links[c.rng.int(links.length)]!;
  c.countFault('link_break');
  x.net.breakLink(x.link, true, nowMs);
}

function partitionRandomLink(c: Cluster, nowMs: number): void {
  const links = allLinks(c).filter((x) => !x.link.down);
  if (links.length === 0) return;
  const x = links[c.rng.int(links.length)]!;
  c.countFault('partition');
  x.net.setDown(x.link, true, nowMs);
  c.timers.at(nowMs + draw(c, c.options.faults.partitionMs), (t) => {
    if (x.link.down) x.net.setDown(x.link, false, t);
  });
}

function crashRandomWorker(c: Cluster, nowMs: number): void {
  const alive = [...c.workers.values()].filter((w) => w.alive);
  if (alive.length === 0) return;
  const w = alive[c.rng.int(alive.length)]!;
  c.countFault('worker_crash');
  crashWorker(c, w.id, nowMs);
  c.timers.at(nowMs + draw(c, c.options.faults.workerDownMs), (t) => restartWorker(c, w.id, t));
}

export function crashWorker(c: Cluster, id: string, nowMs: number): void {
  const w = c.workers.get(id)!;
  const link = c.workerNet.links.get(id)!;
  w.crash();
  link.peerAlive = false;
  // The OS closes the socket: the CP sees the stream end at once.
  c.workerNet.breakLink(link, true, nowMs);
}

function restartWorker(c: Cluster, id: string, nowMs: number): void {
  const w = c.workers.get(id)!;
  if (w.alive) return;
  w.restart();
  const link = c.workerNet.links.get(id)!;
  link.peerAlive = true;
  link.backoffMs = c.options.link.backoffMs[0];
  c.workerNet.scheduleReconnect(link, nowMs);
}

function crashRandomSandbox(c: Cluster, nowMs: number): void {
  const ws = [...c.workers.values()].filter((w) => w.alive && w.running.size > 0);
  if (ws.length === 0) return;
  const w = ws[c.rng.int(ws.length)]!;
  const ids = [...w.running.keys()];
  c.countFault('sandbox_crash');
  w.crashSandbox(ids[c.rng.int(ids.length)]!, nowMs);
}

/** Liveness phase: heal everything and stop injecting. */
export function beginQuiet(c: Cluster, nowMs: number): void {
  c.quiet = true;
  c.workerNet.quiet = true;
  c.dpNet.quiet = true;
  const cr = c.options.creation;
  cr.slowRate = 0;
  cr.failRate = 0;
  for (const x of allLinks(c)) if (x.link.down) x.net.setDown(x.link, false, nowMs);
  for (const w of c.workers.values()) if (!w.alive) restartWorker(c, w.id, nowMs);
  for (const dp of c.dps) restartDp(c, dp, nowMs);
  c.startCp(nowMs);
}

/**
 * @module sim/churn
 * Change under traffic, on top of the faults of `faults.ts` (the swarm turns it on with `--churn`):
 *  - spec updates that restart sandboxes (a new env: old sandboxes drain, new ones start);
 *  - knob-only updates (scaling max up or down: no restart);
 *  - deletes, each followed by a re-create of the same name with a new uid;
 *  - data-plane restarts: the DP process dies (its queued and in-flight requests fail, as on every
 *    FaaS platform), comes back empty after a while and resyncs from a snapshot.
 * Each fires with probability rate × step during the fault phase; API changes need a live CP
 * (the API answers 503 otherwise), so they wait while it is down.
 */
import type { FunctionRecord } from '../api/types.js';
import type { Cluster, SimDataPlane } from './cluster.js';

export interface ChurnRates {
  specUpdatePerS: number;
  knobUpdatePerS: number;
  deletePerS: number;
  recreateAfterMs: readonly [number, number];
  dpRestartPerS: number;
  dpDownMs: readonly [number, number];
}

export const noChurn: Readonly<ChurnRates> = Object.freeze<ChurnRates>({
  specUpdatePerS: 0, knobUpdatePerS: 0, deletePerS: 0, recreateAfterMs: [0, 0],
  dpRestartPerS: 0, dpDownMs: [0, 0],
});

/** While the CP is down, an API change is retried after this long. */
const apiRetryMs = 100;

export function injectChurn(c: Cluster, nowMs: number): void {
  const r = c.options.churn;
  const p = (ratePerS: number): boolean =>
    ratePerS > 0 && c.rng.next() < (ratePerS * c.options.stepMs) / 1000;
  if (p(r.specUpdatePerS)) withLiveFunction(c, (rec) => updateSpec(c, rec, nowMs));
  if (p(r.knobUpdatePerS)) withLiveFunction(c, (rec) => updateKnobs(c, rec, nowMs));
  if (p(r.deletePerS)) withLiveFunction(c, (rec) => deleteAndRecreate(c, rec, nowMs));
  if (p(r.dpRestartPerS)) {
    const up = c.dps.filter((d) => !d.down);
    if (up.length > 0) {
      const dp = up[c.rng.int(up.length)]!;
      crashDp(c, dp, nowMs);
      c.timers.at(nowMs + draw(c, r.dpDownMs), (t) => restartDp(c, dp, t));
    }
  }
}

function draw(c: Cluster, r: readonly [number, number]): number {
  return r[0] + c.rng.next() * (r[1] - r[0]);
}

function withLiveFunction(c: Cluster, act: (r: FunctionRecord) => void): void {
  if (c.cpDown) return;
  const live = [...c.records.values()];
  if (live.length > 0) act(live[c.rng.int(live.length)]!);
}

function updateSpec(c: Cluster, r: FunctionRecord, nowMs: number): void {
  c.countFault('fn_spec_update');
  const revision = String(c.faultCounts.get('fn_spec_update'));
  c.apiUpdate(r.spec.name, (cur) => ({ ...cur, env: { ...cur.env, REVISION: revision } }), nowMs);
}

function updateKnobs(c: Cluster, r: FunctionRecord, nowMs: number): void {
  const s = r.spec.scaling;
  const max = s.max > Math.max(1, s.min) && c.rng.next() < 0.5 ? s.max - 1 : s.max + 1;
  c.countFault('fn_knob_update');
  // A lower max takes a scale-down to show: the same settle window as an adoption.
  if (max < s.max) c.lastAdoptionRiskMs = nowMs;
  c.apiUpdate(r.spec.name, (cur) => ({ ...cur, scaling: { ...cur.scaling, max } }), nowMs);
}

function deleteAndRecreate(c: Cluster, r: FunctionRecord, nowMs: number): void {
  c.countFault('fn_delete');
  c.apiDelete(r.spec.name, nowMs);
  const recreate = (t: number): void => {
    if (c.records.has(r.spec.name)) return;
    if (c.cpDown) {
      c.timers.at(t + apiRetryMs, recreate);
      return;
    }
    c.countFault('fn_recreate');
    const uid = `${r.spec.name}-r${c.faultCounts.get('fn_recreate')}`;
    c.apiCreate(r.spec, uid, t);
  };
  c.timers.at(nowMs + draw(c, c.options.churn.recreateAfterMs), recreate);
}

/** The DP process dies: every request it holds fails; the CP sees its stream close. */
export function crashDp(c: Cluster, dp: SimDataPlane, nowMs: number): void {
  c.countFault('dp_restart');
  const index = c.dps.indexOf(dp);
  dp.down = true;
  dp.incarnation += 1;
  for (const [waiter, req] of [...c.ledger.byWaiter]) {
    if (req.dp === index) c.ledger.finish(waiter, 502, 'dp_died');
  }
  dp.link.peerAlive = false;
  c.dpNet.breakLink(dp.link, true, nowMs);
}

/** It comes back empty and reconnects; the CP answers its hello with a snapshot. */
export function restartDp(c: Cluster, dp: SimDataPlane, nowMs: number): void {
  if (!dp.down) return;
  dp.core = c.newDpCore(dp.id);
  dp.termDelivered = 0;
  dp.down = false;
  dp.link.peerAlive = true;
  dp.link.backoffMs = c.options.link.backoffMs[0];
  c.dpNet.scheduleReconnect(dp.link, nowMs);
}

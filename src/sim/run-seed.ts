/**
 * @module sim/run-seed
 * Runs one seed: fault phase, then the quiet phase, checking safety after every step and
 * liveness at the end. Returns a result instead of throwing, so the swarm can keep going and
 * the tests can assert; every failure names its seed, step and virtual time to replay it.
 */
import type { Logger } from '../shared/logger.js';
import { seededRng } from '../shared/rng.js';
import { checkSettled, checkStep } from './checkers.js';
import { Cluster } from './cluster.js';
import { beginQuiet, injectFaults } from './faults.js';
import { churnOptions, leaderChangeOptions, swarmOptions, type SimOptions } from './options.js';

export interface SimResult {
  seed: number;
  ok: boolean;
  failure: string;
  summary: string;
  cluster: Cluster;
}

export function optionsForSeed(seed: number, opts: { churn?: boolean; leaderChanges?: boolean } = {}): SimOptions {
  const rng = seededRng(seed ^ 0x5eed);
  const o = swarmOptions(seed, rng);
  if (opts.churn) {
    o.churn = churnOptions(rng);
    o.checkDrains = true;
  }
  if (opts.leaderChanges) o.leader = leaderChangeOptions(rng);
  return o;
}

/** `hook` runs after each step (scenarios use it to inject exact faults). */
export function runSeed(
  options: SimOptions,
  hook: (c: Cluster) => void = () => {},
  log?: Logger,
): SimResult {
  const c = new Cluster(options, log);
  const stepsFault = Math.ceil(options.faultPhaseMs / options.stepMs);
  const stepsTotal = Math.ceil((options.faultPhaseMs + options.quietMs) / options.stepMs);
  let failure = '';
  try {
    for (let i = 0; i < stepsTotal && !failure; i += 1) {
      c.step();
      if (i < stepsFault) injectFaults(c, c.nowMs);
      else if (i === stepsFault) beginQuiet(c, c.nowMs);
      hook(c);
      const bad = checkStep(c);
      if (bad) failure = bad;
    }
    if (!failure) failure = checkSettled(c) ?? '';
  } catch (e) {
    failure = `exception: ${(e as Error).stack ?? String(e)}`;
  }
  const where = failure ? ` at step ${c.stepIndex} (t=${c.nowMs} ms)` : '';
  const result = failure ? `FAIL${where}: ${failure}` : 'ok';
  return { seed: options.seed, ok: !failure, failure, summary: summarize(c, result), cluster: c };
}

function summarize(c: Cluster, result: string): string {
  const byStatus = new Map<string, number>();
  for (const [k, v] of c.ledger.counts) {
    const status = k.split(' ')[0]!;
    byStatus.set(status, (byStatus.get(status) ?? 0) + v);
  }
  const codes = [...byStatus.entries()].sort().map(([k, v]) => `${k}:${v}`);
  let created = 0;
  for (const w of c.workers.values()) created += w.created;
  const faults = [...c.faultCounts.entries()].sort().map(([k, v]) => `${k}:${v}`);
  const o = c.options;
  return [
    `seed=${o.seed}`,
    `workers=${o.workers.length} dps=${o.dataPlanes} fns=${o.functions.length}`,
    `requests ${codes.join(' ') || 'none'}`,
    `sandboxes_created=${created}`,
    `faults ${faults.join(' ') || 'none'} breaks=${c.workerNet.breaks + c.dpNet.breaks}`,
    `virtual_s=${(c.nowMs / 1000).toFixed(1)}`,
    result,
  ].join(' | ');
}

/**
 * @module loadgen/core/failover-cluster
 * What `bench failover` needs from `<stateDir>/cluster.json` (written by `dirigent up`): the
 * CPs' API URLs, the PIDs to kill, and the front end's URLs. Choosing the victim is pure.
 */
import { z } from 'zod';
import type { KillTarget } from './failover-report.js';

const pid = z.number().int().positive();

const clusterSchema = z.object({
  controlPlane: z.object({ pid, apiUrl: z.string().optional() }),
  controlPlanes: z.array(z.object({ pid, apiUrl: z.string() })).optional(),
  dataPlanes: z.array(z.object({ pid, proxyUrl: z.string().optional() })),
  workers: z.array(z.object({ pid, id: z.string().optional() })),
  frontend: z.object({ pid: pid.optional(), apiUrl: z.string(), proxyUrl: z.string() }).optional(),
});

export type FailoverCluster = z.infer<typeof clusterSchema>;

export function parseFailoverCluster(text: string): FailoverCluster | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { error: `not JSON: ${(e as Error).message}` };
  }
  const parsed = clusterSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { error: `${issue.path.join('.')}: ${issue.message}` };
  }
  return parsed.data;
}

/** Every CP's API URL (a lone CP: the one from `controlPlane`, else the given default). */
export function controlPlaneApis(c: FailoverCluster, fallbackApi: string): string[] {
  if (c.controlPlanes !== undefined && c.controlPlanes.length > 0) {
    return c.controlPlanes.map((cp) => cp.apiUrl);
  }
  return [c.controlPlane.apiUrl ?? fallbackApi];
}

export interface Victims {
  pids: number[];
  /** Human description: which component and why that one. */
  what: string;
  notes: string[];
}

/**
 * Requests per server address from HAProxy's `show stat` CSV (`# pxname,svname,...` header,
 * columns found by name): `stot`, the cumulative sessions, which in HTTP mode grows by one per
 * request forwarded. Rows without an address (FRONTEND, BACKEND) are skipped.
 */
export function parseHaproxyStat(text: string): Map<string, number> {
  const lines = text.split('\n');
  const header = (lines[0] ?? '').replace(/^# /, '').split(',');
  const addrAt = header.indexOf('addr');
  const stotAt = header.indexOf('stot');
  const out = new Map<string, number>();
  if (addrAt < 0 || stotAt < 0) return out;
  for (const line of lines.slice(1)) {
    const cells = line.split(',');
    const addr = cells[addrAt] ?? '';
    const stot = Number(cells[stotAt]);
    if (addr !== '' && Number.isInteger(stot)) out.set(addr, (out.get(addr) ?? 0) + stot);
  }
  return out;
}

/** Index of the DP the front end forwarded the most requests to between two stat snapshots. */
export function busiestDataPlane(c: FailoverCluster, before: ReadonlyMap<string, number>,
  after: ReadonlyMap<string, number>): number | null {
  let best: number | null = null;
  let bestCount = 0;
  c.dataPlanes.forEach((dp, i) => {
    const addr = dp.proxyUrl === undefined ? '' : dp.proxyUrl.replace(/^https?:\/\//, '');
    const delta = (after.get(addr) ?? 0) - (before.get(addr) ?? 0);
    if (delta > bestCount) {
      best = i;
      bestCount = delta;
    }
  });
  return best;
}

/**
 * The PIDs to SIGKILL. `leader` comes from the leader's own /health (null when no CP said
 * leader); `busiestDp` from the front end's stats (null when unknown: then the first DP). Workers: half of the worker processes, at least one; when `up` runs all emulated
 * workers in one process, that process (all workers), and the note says so.
 */
export function chooseVictims(target: KillTarget, c: FailoverCluster,
  leader: { pid: number; id: string } | null, busiestDp: number | null = null):
  Victims | { error: string } {
  if (target === 'cp-leader') {
    if (leader === null) return { error: 'no control plane answered /health as leader' };
    return { pids: [leader.pid], what: `control-plane leader ${leader.id} (pid ${leader.pid})`,
      notes: [] };
  }
  if (target === 'dp') {
    const index = busiestDp ?? 0;
    const dp = c.dataPlanes[index];
    if (dp === undefined) return { error: 'cluster.json lists no data plane' };
    const notes = c.dataPlanes.length < 2 ? []
      : busiestDp === null ? ['no front-end stats: killed the first DP']
        : ['killed the DP the front end forwarded the most of this run\'s requests to'];
    return { pids: [dp.pid], what: `data plane ${dp.proxyUrl ?? `#${index}`} (pid ${dp.pid})`,
      notes };
  }
  if (c.workers.length === 0) return { error: 'cluster.json lists no worker process' };
  if (c.workers.length === 1) {
    return { pids: [c.workers[0].pid], what: `the worker process (pid ${c.workers[0].pid})`,
      notes: ['all workers run in one process (emulated runtime): killing it kills ALL ' +
        'workers, not half'] };
  }
  const half = c.workers.slice(0, Math.max(1, Math.floor(c.workers.length / 2)));
  return { pids: half.map((w) => w.pid),
    what: `${half.length} of ${c.workers.length} worker processes ` +
      `(${half.map((w) => w.id ?? String(w.pid)).join(', ')})`, notes: [] };
}

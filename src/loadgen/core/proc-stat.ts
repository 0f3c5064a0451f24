/**
 * @module loadgen/core/proc-stat
 * CPU accounting from text the shell reads: `/proc/<pid>/stat` (utime + stime in clock ticks)
 * and `<stateDir>/cluster.json` written by `dirigent up` (component PIDs). Pure parsing and
 * arithmetic.
 */
import { z } from 'zod';

/** USER_HZ on Linux: /proc reports CPU time in 1/100 s ticks. */
const clockTicksPerSecond = 100;

/**
 * utime + stime of a `/proc/<pid>/stat` line, in ticks; null when malformed.
 * Field 2 (comm) is in parentheses and may itself contain spaces or ')', so fields are counted
 * from after the LAST ')'. There, field 3 (state) is index 0, utime (14) is 11, stime (15) is 12.
 * Example: "42 (node x) S 1 ... 250 75 ..." -> 325 ticks = 3.25 s.
 */
export function parseProcStatTicks(text: string): number | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const fields = text.slice(close + 2).trim().split(/\s+/);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isInteger(utime) || !Number.isInteger(stime)) return null;
  return utime + stime;
}

function ticksToSeconds(ticks: number): number {
  return ticks / clockTicksPerSecond;
}

const pid = z.number().int().positive();

const clusterSchema = z.object({
  controlPlane: z.object({ pid, apiUrl: z.string().optional() }),
  dataPlanes: z.array(z.object({ pid, proxyUrl: z.string().optional() })),
  workers: z.array(z.object({ pid, id: z.string().optional() })),
});

export type ClusterInfo = z.infer<typeof clusterSchema>;

export type ClusterParse =
  | { kind: 'ok'; cluster: ClusterInfo }
  | { kind: 'error'; message: string };

/** Parses cluster.json; unknown extra fields are ignored so the file can grow. */
export function parseClusterJson(text: string): ClusterParse {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { kind: 'error', message: `not JSON: ${(e as Error).message}` };
  }
  const parsed = clusterSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { kind: 'error', message: `${issue.path.join('.')}: ${issue.message}` };
  }
  return { kind: 'ok', cluster: parsed.data };
}

/** The PIDs of each component group. */
export function componentPids(c: ClusterInfo): Record<'controlPlane' | 'dataPlane' | 'workers',
  number[]> {
  return {
    controlPlane: [c.controlPlane.pid],
    dataPlane: c.dataPlanes.map((d) => d.pid),
    workers: c.workers.map((w) => w.pid),
  };
}

/**
 * CPU seconds a group used between two samples. A group is unknown (null) when it has no PIDs
 * or any of its PIDs could not be read at either end (it exited or restarted mid-run).
 */
export function groupCpuSeconds(
  pids: readonly number[],
  before: ReadonlyMap<number, number | null>,
  after: ReadonlyMap<number, number | null>,
): number | null {
  if (pids.length === 0) return null;
  let ticks = 0;
  for (const pid of pids) {
    const b = before.get(pid);
    const a = after.get(pid);
    if (b === null || b === undefined || a === null || a === undefined || a < b) return null;
    ticks += a - b;
  }
  return ticksToSeconds(ticks);
}

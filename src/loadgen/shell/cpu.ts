/**
 * @module loadgen/shell/cpu
 * CPU seconds per component over a measured window: /proc/<pid>/stat of the PIDs listed in
 * `<stateDir>/cluster.json` (written by `dirigent up`), sampled at the start and the end, plus
 * our own process through process.cpuUsage() (µs resolution instead of 10 ms ticks). The same
 * window's event-loop delay of each component comes along (shell/loop-delay).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  componentPids,
  groupCpuSeconds,
  parseClusterJson,
  parseProcStatTicks,
} from '../core/proc-stat.js';
import type { CpuSeconds } from '../core/stats.js';
import { startLoopDelaySampler, type LoopDelaySample } from './loop-delay.js';

export interface CpuSample {
  cpu: CpuSeconds;
  /** CPU seconds of the extra PIDs (e.g. the no-op server), null when unreadable. */
  extraSeconds: number | null;
  /** Why cluster CPU is unknown, when it is. */
  note: string;
  /** Event-loop delay per component kind over the same window. */
  loopDelay: LoopDelaySample;
}

export interface CpuSampler {
  finish(): Promise<CpuSample>;
}

export async function startCpuSampler(
  stateDir: string,
  extraPids: number[] = [],
): Promise<CpuSampler> {
  const read = await readGroups(stateDir);
  const { note } = read;
  // A DP's proxy processes (--proxy-threads) are its children: their CPU is the DP's.
  const groups = { ...read.groups, dataPlane: [...read.groups.dataPlane, ...(await childrenOf(read.groups.dataPlane))] };
  const pids = [...groups.controlPlane, ...groups.dataPlane, ...groups.workers, ...extraPids];
  const loopDelay = await startLoopDelaySampler(stateDir);
  const before = await readTicks(pids);
  const selfBefore = process.cpuUsage();
  return {
    async finish(): Promise<CpuSample> {
      const self = process.cpuUsage(selfBefore);
      const after = await readTicks(pids);
      return {
        cpu: {
          controlPlane: groupCpuSeconds(groups.controlPlane, before, after),
          dataPlane: groupCpuSeconds(groups.dataPlane, before, after),
          workers: groupCpuSeconds(groups.workers, before, after),
          loadgen: (self.user + self.system) / 1e6,
        },
        extraSeconds: groupCpuSeconds(extraPids, before, after),
        note,
        // After the CPU reading: waiting for the last window must not count as measured CPU.
        loopDelay: await loopDelay.finish(),
      };
    },
  };
}

/** Reads one PID's utime + stime in ticks; null when the process is gone. */
async function readPidTicks(pid: number): Promise<number | null> {
  try {
    return parseProcStatTicks(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** Direct children of these PIDs (forked by their main thread), from /proc; none when unreadable. */
async function childrenOf(pids: number[]): Promise<number[]> {
  const lists = await Promise.all(pids.map((pid) => readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')));
  return lists.flatMap((text) => text.split(/\s+/).filter((t) => /^\d+$/.test(t)).map(Number));
}

async function readTicks(pids: number[]): Promise<Map<number, number | null>> {
  const values = await Promise.all(pids.map(readPidTicks));
  return new Map(pids.map((pid, i) => [pid, values[i]]));
}

async function readGroups(stateDir: string) {
  const none: number[] = [];
  const empty = { controlPlane: none, dataPlane: none, workers: none };
  const path = join(stateDir, 'cluster.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return { groups: empty, note: `${path} not found: cluster CPU not measured` };
  }
  const parsed = parseClusterJson(text);
  if (parsed.kind === 'error') return { groups: empty, note: `${path}: ${parsed.message}` };
  const groups = componentPids(parsed.cluster);
  const all = [...groups.controlPlane, ...groups.dataPlane, ...groups.workers];
  const shared = [...new Set(all.filter((pid, i) => all.indexOf(pid) !== i))];
  // One process hosting several components: its CPU shows up in each of their groups.
  const note = shared.length === 0 ? ''
    : `components share PIDs ${shared.join(', ')}: their CPU is counted once per component`;
  return { groups, note };
}

/**
 * @module worker/runtime/process-group
 * Process-group helpers for the process runtime: signal a whole group, wait until the kernel has
 * forgotten every member, and read /proc to find groups and check who a process belongs to.
 *
 * Why groups: a sandbox is spawned as the leader of its own group (`detached: true` = setsid),
 * so children it forks stay in the group and one `kill(-pgid)` reaches all of them. Killing only
 * the leader returns before its children are dead and leaves the port busy (sandboxes.md, trap 7).
 * A member that calls setsid() itself escapes the group; only a cgroup would catch it.
 */
import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { assert } from '../../shared/assert.js';

/** Poll steps while waiting for a group to vanish: start small, since it is usually instant. */
const groupPollMsMin = 1;
const groupPollMsMax = 20;
/** Past this, a group that still exists is checked for zombies (see killProcessGroupAndWait). */
const zombieScanAfterMs = 5;

/** Sends SIGKILL to every member of the group. False when the group no longer exists. */
export function killProcessGroup(pgid: number): boolean {
  assert(Number.isInteger(pgid) && pgid > 1, `refusing to signal process group ${pgid}`);
  try {
    process.kill(-pgid, 'SIGKILL');
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ESRCH') return false;
    throw err;
  }
}

/** True while any process (zombies included: they hold their pid) is in the group. */
function processGroupExists(pgid: number): boolean {
  assert(Number.isInteger(pgid) && pgid > 1, `bad process group ${pgid}`);
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    // EPERM: the group exists but is not ours to signal; it still exists.
    return errnoCode(err) !== 'ESRCH';
  }
}

/**
 * Kills the group again on every poll (a member may have forked meanwhile) until no member is
 * alive. Resolves true when done, false when `timeoutMs` passed first.
 *
 * A killed grandchild is reparented to PID 1 and stays a zombie until PID 1 reaps it, which on
 * this machine type takes up to ~2 s. A zombie has already closed its sockets and freed its
 * memory, so it counts as gone; telling zombies apart needs a /proc scan, done only when the
 * cheap check (kill(-pgid, 0) says ESRCH) has not succeeded within `zombieScanAfterMs`.
 */
export async function killProcessGroupAndWait(pgid: number, timeoutMs: number): Promise<boolean> {
  assert(timeoutMs > 0, 'timeoutMs must be positive');
  const t0Ms = performance.now();
  let pollMs = groupPollMsMin;
  while (killProcessGroup(pgid)) {
    if (!processGroupExists(pgid)) return true;
    const elapsedMs = performance.now() - t0Ms;
    if (elapsedMs >= zombieScanAfterMs && (await processGroupAllZombies(pgid))) return true;
    const leftMs = timeoutMs - (performance.now() - t0Ms);
    if (leftMs <= 0) return false;
    await sleep(Math.min(pollMs, leftMs));
    pollMs = Math.min(pollMs * 2, groupPollMsMax);
  }
  return true;
}

/** True when every process of the group is a zombie (dead, waiting to be reaped). */
async function processGroupAllZombies(pgid: number): Promise<boolean> {
  const stats = await readAllProcessStats();
  return stats.every((stat) => stat.pgid !== pgid || stat.state === 'Z');
}

/** One pass over /proc: process group id -> member pids. Used at start-up, not per request. */
export async function listProcessGroups(): Promise<Map<number, number[]>> {
  const groups = new Map<number, number[]>();
  for (const { pid, pgid } of await readAllProcessStats()) {
    const members = groups.get(pgid);
    if (members) members.push(pid);
    else groups.set(pgid, [pid]);
  }
  return groups;
}

export interface ProcessStat {
  pid: number;
  pgid: number;
  /** R, S, D, Z, T, ... as in proc(5). */
  state: string;
}

/** The stat of every process; processes that vanish during the scan are left out. */
async function readAllProcessStats(): Promise<ProcessStat[]> {
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);
  // In parallel: each read is a thread-pool round trip, sequential reads cost ~0.2 ms each.
  const stats = await Promise.all(pids.map(readProcessStat));
  return stats.filter((stat): stat is ProcessStat => stat !== undefined);
}

/** Fields of /proc/<pid>/stat, or undefined if the process is gone. */
async function readProcessStat(pid: number): Promise<ProcessStat | undefined> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and parens, so cut at the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const pgid = Number(fields[2]);
  return Number.isInteger(pgid) ? { pid, pgid, state: fields[0] } : undefined;
}

/** True when /proc/<pid>/environ holds exactly `entry` ("KEY=value"). False if unreadable. */
export async function processEnvironHas(pid: number, entry: string): Promise<boolean> {
  let environ: Buffer;
  try {
    environ = await readFile(`/proc/${pid}/environ`);
  } catch {
    return false;
  }
  return environ.toString('utf8').split('\0').includes(entry);
}

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

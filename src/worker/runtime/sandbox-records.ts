/**
 * @module worker/runtime/sandbox-records
 * On-disk state of the process runtime and the orphan reaper that reads it.
 *
 *   <stateDir>/sandboxes/<sandboxId>.json   pid and pgid of a live sandbox (one small file each)
 *   <stateDir>/scratch/<sandboxId>/         cwd (when the function names none) and HOME
 *   <stateDir>/logs/<sandboxId>.log         stdout + stderr, truncated when the sandbox is created,
 *                                           removed by delete(), kept after a crash or failed start
 *
 * A record is written when a sandbox is created and removed when it is deleted, so after a worker
 * is SIGKILLed the records name what may still run. `--pdeathsig` kills each sandbox's leader with
 * the worker, but not the leader's own children; the reaper kills whole groups. A pid may have
 * been reused since, so a group is killed only if one member still carries our marker variable.
 * One runtime owns a state dir at a time.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../shared/logger.js';
import { isValidSandboxId } from './runtime.js';
import { killProcessGroupAndWait, listProcessGroups, processEnvironHas } from './process-group.js';

/** The variable every sandbox process carries; the reaper's proof that a pid is still ours. */
export const sandboxIdEnvName = 'DIRIGENT_SANDBOX_ID';
/** How long the reaper waits for one orphaned group to die before giving up on it. */
const orphanKillWaitMs = 2_000;
/** Records read per start-up; more than this many sandboxes on one worker is not plausible. */
const orphanRecordsMax = 100_000;

export interface SandboxRecord {
  sandboxId: string;
  function: string;
  pid: number;
  pgid: number;
  port: number;
  createdAtMs: number;
}

export interface SandboxPaths {
  record: string;
  scratchDir: string;
  log: string;
}

export function sandboxPaths(stateDir: string, sandboxId: string): SandboxPaths {
  return {
    record: join(stateDir, 'sandboxes', `${sandboxId}.json`),
    scratchDir: join(stateDir, 'scratch', sandboxId),
    log: join(stateDir, 'logs', `${sandboxId}.log`),
  };
}

/** Creates the three directories once, before the first sandbox. */
export async function ensureStateDirs(stateDir: string): Promise<void> {
  for (const dir of ['sandboxes', 'scratch', 'logs']) {
    await mkdir(join(stateDir, dir), { recursive: true });
  }
}

export async function writeSandboxRecord(stateDir: string, record: SandboxRecord): Promise<void> {
  await writeFile(sandboxPaths(stateDir, record.sandboxId).record, JSON.stringify(record));
}

/** Removes the record, the scratch dir and, unless kept for a post-mortem, the log. */
export async function removeSandboxState(
  stateDir: string,
  sandboxId: string,
  opts: { keepLog: boolean },
): Promise<void> {
  const paths = sandboxPaths(stateDir, sandboxId);
  await rm(paths.record, { force: true });
  await rm(paths.scratchDir, { recursive: true, force: true });
  if (!opts.keepLog) await rm(paths.log, { force: true });
}

export interface ReapResult {
  /** Groups that still ran and were killed. */
  reaped: number;
  /** Records whose processes were already gone (or whose pid now belongs to someone else). */
  stale: number;
}

/**
 * Kills the process groups of sandboxes left by a previous run of a runtime on `stateDir`, then
 * removes their records. Call before the first create(); `createProcessRuntime` does.
 */
export async function reapOrphans(opts: { stateDir: string; logger: Logger }): Promise<ReapResult> {
  const records = await reapOrphansReadRecords(opts.stateDir, opts.logger);
  const result: ReapResult = { reaped: 0, stale: 0 };
  if (records.length === 0) return result;
  const groups = await listProcessGroups();
  for (const record of records) {
    const members = groups.get(record.pgid) ?? [];
    const marker = `${sandboxIdEnvName}=${record.sandboxId}`;
    let ours = false;
    for (const pid of members) {
      if (await processEnvironHas(pid, marker)) {
        ours = true;
        break;
      }
    }
    if (ours) {
      const gone = await killProcessGroupAndWait(record.pgid, orphanKillWaitMs);
      result.reaped += 1;
      opts.logger.warn('sandbox.orphan_reaped', { ...record, members: members.length, gone });
    } else {
      result.stale += 1;
    }
    await removeSandboxState(opts.stateDir, record.sandboxId, { keepLog: true });
  }
  return result;
}

async function reapOrphansReadRecords(stateDir: string, logger: Logger): Promise<SandboxRecord[]> {
  const dir = join(stateDir, 'sandboxes');
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const records: SandboxRecord[] = [];
  for (const name of names.slice(0, orphanRecordsMax)) {
    const path = join(dir, name);
    const record = parseSandboxRecord(await readFile(path, 'utf8').catch(() => ''));
    if (record && `${record.sandboxId}.json` === name) records.push(record);
    else {
      logger.warn('sandbox.record_discarded', { path });
      await rm(path, { force: true });
    }
  }
  return records;
}

/** A record from disk, or undefined when it is torn or malformed (a crash mid-write). */
function parseSandboxRecord(text: string): SandboxRecord | undefined {
  let value: Partial<SandboxRecord>;
  try {
    value = JSON.parse(text) as Partial<SandboxRecord>;
  } catch {
    return undefined;
  }
  const isPid = (n: unknown): n is number => Number.isInteger(n) && (n as number) > 1;
  if (typeof value.sandboxId !== 'string' || !isValidSandboxId(value.sandboxId)) return undefined;
  if (!isPid(value.pid) || !isPid(value.pgid)) return undefined;
  return value as SandboxRecord;
}

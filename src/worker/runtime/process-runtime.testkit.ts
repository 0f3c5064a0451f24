/**
 * @module worker/runtime/process-runtime.testkit
 * Shared by the process runtime's test files: fixture specs, runtimes on temp state dirs and
 * private port slices, and /proc readers that check what is really running. Tests only.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FunctionSpec } from '../../api/types.js';
import { scalingDefaults } from '../../config/defaults.js';
import { systemClock } from '../../shared/clock.js';
import { memoryLogger, type RecordedLog } from '../../shared/logger.js';
import { ephemeralOverlap, readHostPortRanges } from './ephemeral-ports.js';
import { testIsolation } from './isolation-setup.js';
import {
  createProcessRuntime,
  type ProcessRuntime,
  type ProcessRuntimeOptions,
} from './process-runtime.js';

export const fixturesDir = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));
/** Ports per runtime; a burst of 10 plus retries fits. */
const portSliceSize = 40;

/**
 * Hands each runtime its own slice of [base, top], so tests never share a port. Test files run
 * in parallel processes, so each file must pass a range no other file uses. The range must lie
 * outside the kernel's ephemeral range (see ephemeral-ports.ts); a range inside it throws.
 */
export function portSlices(base: number, top: number): { next: () => [number, number] } {
  const host = readHostPortRanges();
  const clash = host && ephemeralOverlap([base, top], host.ephemeral, host.reserved);
  if (clash) {
    // An outgoing connection of any parallel test could take such a port between the runtime's
    // free-port check and the sandbox's bind (seen in CI as 'bind: Address already in use').
    throw new Error(`test ports ${base}-${top} overlap the kernel's ephemeral range ${host!.ephemeral.join('-')}; pick ports below it`);
  }
  const slices = Math.floor((top - base + 1) / portSliceSize);
  let sliceNext = 0;
  return {
    next: () => {
      const first = base + (sliceNext++ % slices) * portSliceSize;
      return [first, first + portSliceSize - 1];
    },
  };
}

/** A function running `node test/fixtures/<fixture>` (found through PATH, as in production). */
export function fixtureSpec(
  name: string,
  fixture: string,
  env: Record<string, string> = {},
): FunctionSpec {
  return {
    name,
    image: '',
    command: ['node', join(fixturesDir, fixture)],
    workingDir: '',
    port: 0,
    env,
    egress: false, auth: 'none',
    resources: { cpuMillis: 1000, memoryMiB: 256 },
    concurrency: 1,
    timeoutMs: 60_000,
    scaling: { ...scalingDefaults },
  };
}

export interface Harness {
  runtime: ProcessRuntime;
  stateDir: string;
  logs: RecordedLog[];
  cleanup: () => Promise<void>;
}

export interface HarnessOptions {
  portRange: [number, number];
  readinessTimeoutMs?: number;
  limits?: ProcessRuntimeOptions['limits'];
  isolation?: ProcessRuntimeOptions['isolation'];
  sandboxPidsMax?: number;
  sandboxStartupCpuMillis?: number;
  sandboxTmpMiB?: number;
  uids?: ProcessRuntimeOptions['uids'];
  /** An existing state dir (e.g. holding a previous run's records); a temp dir otherwise. */
  stateDir?: string;
}

export async function makeRuntime(opts: HarnessOptions): Promise<Harness> {
  const stateDir = opts.stateDir ?? (await mkdtemp(join(tmpdir(), 'dirigent-process-runtime-')));
  const logs: RecordedLog[] = [];
  const runtime = createProcessRuntime({
    host: '127.0.0.1',
    portRange: opts.portRange,
    stateDir,
    readinessTimeoutMs: opts.readinessTimeoutMs ?? 10_000,
    readinessBackoffMs: [2, 50],
    logger: memoryLogger(logs),
    clock: systemClock,
    limits: opts.limits,
    isolation: opts.isolation ?? (await testIsolation()),
    sandboxPidsMax: opts.sandboxPidsMax,
    sandboxStartupCpuMillis: opts.sandboxStartupCpuMillis,
    sandboxTmpMiB: opts.sandboxTmpMiB,
    uids: opts.uids,
  });
  const cleanup = async (): Promise<void> => {
    await runtime.close();
    await rm(stateDir, { recursive: true, force: true });
  };
  return { runtime, stateDir, logs, cleanup };
}

export async function withRuntime(
  opts: HarnessOptions,
  body: (h: Harness) => Promise<void>,
): Promise<void> {
  const h = await makeRuntime(opts);
  try {
    await body(h);
  } finally {
    await h.cleanup();
  }
}

export async function processIds(): Promise<number[]> {
  return (await readdir('/proc')).filter((n) => /^\d+$/.test(n)).map(Number);
}

/** [state, pgid] from /proc/<pid>/stat, or undefined when the pid is gone. */
export async function procStat(pid: number): Promise<[string, number] | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (stat === '') return undefined;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [fields[0], Number(fields[2])];
}

/** Exists and is not a zombie. */
export async function processAlive(pid: number): Promise<boolean> {
  const stat = await procStat(pid);
  return stat !== undefined && stat[0] !== 'Z';
}

/** Live (non-zombie) pids whose process group is `pgid`, ascending. */
export async function groupMembers(pgid: number): Promise<number[]> {
  const members: number[] = [];
  for (const pid of await processIds()) {
    const stat = await procStat(pid);
    if (stat !== undefined && stat[0] !== 'Z' && stat[1] === pgid) members.push(pid);
  }
  return members.sort((a, b) => a - b);
}

export async function pidsWithEnv(entry: string): Promise<number[]> {
  const pids: number[] = [];
  for (const pid of await processIds()) {
    const environ = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
    if (environ.split('\0').includes(entry)) pids.push(pid);
  }
  return pids;
}

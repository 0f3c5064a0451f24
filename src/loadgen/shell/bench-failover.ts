/**
 * @module loadgen/shell/bench-failover
 * `bench failover`: open-loop warm traffic on a few min-1 functions plus a steady rate of cold
 * starts on fresh functions, with every CP's /health polled throughout; at `killAtS` one
 * component is SIGKILLed by PID (from cluster.json or the leader's /health). `dirigent up`
 * restarts it, and that is part of what is measured. Failures caused by the kill are the
 * result, not a bench error; only a bench malfunction throws.
 */
import { readFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import type { Dispatcher } from 'undici';
import { Header } from '../../api/types.js';
import {
  busiestDataPlane,
  chooseVictims,
  controlPlaneApis,
  parseFailoverCluster,
  parseHaproxyStat,
  type FailoverCluster,
} from '../core/failover-cluster.js';
import { failoverSummary, type FailoverSummary, type KillTarget } from '../core/failover-report.js';
import { failoverPlan, type HealthPoll, type RequestRecord } from '../core/failover.js';
import {
  benchFunctionName,
  coldFunctionBody,
  runPrefix,
  warmFunctionBody,
  type FunctionRuntime,
} from '../core/functions.js';
import type { Outcome, OutcomeSink } from '../core/recorder.js';
import { createSenderPool, prewarmPool, send } from './http-sender.js';
import { BenchSetupError, deleteQuietly, registerOrThrow } from './lifecycle.js';
import { benchToken, createManagementClient, waitReady, type ManagementClient } from './management.js';
import { loopDelayFields, startLoopDelaySampler } from './loop-delay.js';
import { withTimeout } from './open-run.js';
import type { CommandIo } from './output.js';
import { runOpenLoop } from './pacer.js';

export const failoverBenchDefaults = Object.freeze({
  rateRps: 200,
  coldRateRps: 5,
  durationS: 15,
  warmFunctions: 8,
  timeoutMs: 10_000,
  registerConcurrency: 16,
  healthPollMs: 100,
  healthTimeoutMs: 300,
  frontendStatsTimeoutMs: 300,
  drainSlackMs: 2_000,
});

export interface FailoverBenchOptions {
  target: KillTarget;
  apiUrl: string;
  proxyUrl: string;
  stateDir: string;
  rateRps: number;
  coldRateRps: number;
  durationS: number;
  killAtS: number;
  warmFunctions: number;
  bucketMs: number;
  stableMs: number;
  connections: number;
  timeoutMs: number;
  runtime: FunctionRuntime;
  keep: boolean;
  entropy: number;
  io: CommandIo;
}

async function readCluster(stateDir: string): Promise<FailoverCluster> {
  const path = join(stateDir, 'cluster.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new BenchSetupError(`${path}: ${(e as Error).message} (bench failover needs the PIDs ` +
      'that `dirigent up` writes there; pass --state-dir)');
  }
  const c = parseFailoverCluster(text);
  if ('error' in c) throw new BenchSetupError(`${path}: ${c.error}`);
  return c;
}

export async function runFailoverBench(o: FailoverBenchOptions): Promise<FailoverSummary> {
  const cluster = await readCluster(o.stateDir);
  const apiUrl = cluster.frontend?.apiUrl ?? o.apiUrl;
  const proxyUrl = cluster.frontend?.proxyUrl ?? o.proxyUrl;
  const notes = [`traffic to ${proxyUrl}, management via ${apiUrl}`];
  const plan = failoverPlan(o.rateRps, o.coldRateRps, o.durationS, o.warmFunctions);
  const prefix = runPrefix('failover', o.entropy);
  const warm = Array.from({ length: o.warmFunctions }, (_, i) => benchFunctionName(prefix, `w${i}`));
  const cold = Array.from({ length: plan.coldFunctions }, (_, i) => benchFunctionName(prefix, i));
  const mgmt = createManagementClient(apiUrl, failoverBenchDefaults.registerConcurrency, benchToken(o.stateDir));
  const setup = { registerConcurrency: failoverBenchDefaults.registerConcurrency, io: o.io };
  try {
    await registerOrThrow(setup, mgmt, [
      ...warm.map((n) => warmFunctionBody(n, o.runtime, { concurrency: 0, maxScale: 1 })),
      ...cold.map((n) => coldFunctionBody(n, o.runtime))]);
    try {
      await waitWarm(mgmt, warm);
      return await measure(o, cluster, plan, { warm, cold, proxyUrl, notes });
    } finally {
      if (!o.keep) await deleteQuietly(setup, mgmt, [...warm, ...cold]);
    }
  } finally {
    await mgmt.close();
  }
}

async function waitWarm(mgmt: ManagementClient, names: string[]): Promise<void> {
  const ready = await Promise.all(names.map((n) => waitReady(mgmt, n, 1)));
  const missing = names.filter((_, i) => !ready[i]);
  if (missing.length > 0) {
    throw new BenchSetupError(`${missing.length} warm functions have no ready sandbox; first: ` +
      `${missing[0]}`);
  }
}

interface Targets { warm: string[]; cold: string[]; proxyUrl: string; notes: string[] }

async function measure(o: FailoverBenchOptions, cluster: FailoverCluster,
  plan: ReturnType<typeof failoverPlan>, t: Targets): Promise<FailoverSummary> {
  const pool = createSenderPool({ origin: t.proxyUrl, connections: o.connections,
    timeoutMs: o.timeoutMs });
  const polls: HealthPoll[] = [];
  const poller = startHealthPolls(controlPlaneApis(cluster, o.apiUrl), polls);
  try {
    await prewarmPool(pool, o.connections);
    const records: RequestRecord[] = [];
    const options = buildOptions(plan, t);
    const statsBefore = o.target === 'dp' ? await frontendStats(o.stateDir) : null;
    const loopDelay = await startLoopDelaySampler(o.stateDir);
    const t0 = performance.now();
    poller.setOrigin(t0);
    const sink = recordingSink(records, plan, t0);
    const kill = scheduleKill(o, cluster, { polls, statsBefore }, t0);
    // Awaited after the run; a failed kill must not surface as an unhandled rejection first.
    kill.catch(() => undefined);
    await runOpenLoop(plan.scheduleMs, (i, nowMs) => send(pool, options[i], i, nowMs, sink, true));
    const drained = await withTimeout(sink.whenAll(plan.scheduleMs.length),
      o.timeoutMs + failoverBenchDefaults.drainSlackMs);
    const killed = await kill;
    const delay = await loopDelay.finish();
    if (!drained) t.notes.push(`${plan.scheduleMs.length - records.length} requests never finished`);
    const summary = failoverSummary({ target: o.target, killed: killed.what, killPids: killed.pids,
      killMs: killed.atMs, rateRps: o.rateRps, coldRateRps: o.coldRateRps,
      durationS: o.durationS, bucketMs: o.bucketMs, stableMs: o.stableMs, records, polls,
      notes: [...t.notes, ...killed.notes] });
    return { ...summary, ...loopDelayFields(delay) };
  } finally {
    await poller.stop();
    await pool.close();
  }
}

function buildOptions(plan: ReturnType<typeof failoverPlan>, t: Targets):
  Dispatcher.DispatchOptions[] {
  return plan.kind.map((kind, i) => ({
    path: '/',
    method: 'GET',
    headers: ['host', kind === 'warm' ? t.warm[plan.fn[i]] : t.cold[plan.fn[i]],
      Header.emulatedDurationMs, '0'],
  }));
}

/** Copies each outcome (valid only during the call) into a record, times relative to t0. */
function recordingSink(records: RequestRecord[], plan: ReturnType<typeof failoverPlan>, t0: number):
  OutcomeSink & { whenAll(n: number): Promise<void> } {
  let wake: (() => void) | null = null;
  let want = -1;
  return {
    onOutcome(x: Outcome): void {
      const ok = x.status >= 200 && x.status < 300;
      records.push({ kind: plan.kind[x.tag], fn: plan.fn[x.tag], sentMs: x.startMs - t0, doneMs: x.endMs - t0,
        status: x.status, error: x.error, body: ok ? '' : x.bodyText() });
      if (records.length === want && wake !== null) wake();
    },
    whenAll(n: number): Promise<void> {
      if (records.length >= n) return Promise.resolve();
      want = n;
      return new Promise((resolve) => (wake = resolve));
    },
  };
}

interface KillResult { pids: number[]; what: string; notes: string[]; atMs: number }

/** SIGKILLs the victim at killAtS; the victim is chosen at that moment (PIDs change on restart). */
function scheduleKill(o: FailoverBenchOptions, cluster: FailoverCluster,
  seen: { polls: HealthPoll[]; statsBefore: Map<string, number> | null }, t0: number):
  Promise<KillResult> {
  return new Promise((resolve, reject) => {
    notBefore(t0 + o.killAtS * 1000, () => {
      void Promise.all([readCluster(o.stateDir).catch(() => cluster),
        seen.statsBefore === null ? null : frontendStats(o.stateDir)]).then(([now, stats]) => {
        const leader = [...seen.polls].reverse().find((p) => p.role === 'leader' && p.pid > 0);
        const busiest = seen.statsBefore === null || stats === null ? null
          : busiestDataPlane(now, seen.statsBefore, stats);
        const v = chooseVictims(o.target, now, leader ?? null, busiest);
        if ('error' in v) return reject(new Error(`bench failover: ${v.error}`));
        const atMs = performance.now() - t0;
        for (const pid of v.pids) process.kill(pid, 'SIGKILL');
        o.io.err(`killed ${v.what} at ${(atMs / 1000).toFixed(3)} s`);
        resolve({ ...v, atMs });
      }).catch(reject);
    });
  });
}

/**
 * Runs `run` once performance.now() has reached `atMs`. A timer alone may fire up to a
 * millisecond early by that clock (libuv's loop time is in whole milliseconds, taken before the
 * timer was armed): the kill of `--kill-at 0.3` came at 0.299 s. It then waits out the rest.
 */
function notBefore(atMs: number, run: () => void): void {
  const waitMs = atMs - performance.now();
  if (waitMs <= 0) run();
  else setTimeout(() => notBefore(atMs, run), Math.ceil(waitMs));
}

/**
 * Requests per DP address from the front end's HAProxy stats socket (`up` puts it at
 * <stateDir>/frontend/haproxy.sock); null when there is none or it does not answer in time.
 */
function frontendStats(stateDir: string): Promise<Map<string, number> | null> {
  return new Promise((resolve) => {
    const socket = createConnection(join(stateDir, 'frontend', 'haproxy.sock'));
    let text = '';
    const done = (v: Map<string, number> | null): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(null), failoverBenchDefaults.frontendStatsTimeoutMs);
    socket.on('data', (d) => (text += d.toString()));
    socket.on('end', () => done(parseHaproxyStat(text)));
    socket.on('error', () => done(null));
    socket.write('show stat\n');
  });
}

interface HealthPoller { setOrigin(t0: number): void; stop(): Promise<void> }

/** One polling loop per CP: GET /health every healthPollMs, a short timeout counts as down. */
function startHealthPolls(apis: string[], polls: HealthPoll[]): HealthPoller {
  let origin = performance.now();
  let running = true;
  const loop = async (api: string): Promise<void> => {
    while (running) {
      const startedMs = performance.now();
      const p = await pollOnce(api);
      polls.push({ ...p, atMs: startedMs - origin });
      const waitMs = failoverBenchDefaults.healthPollMs - (performance.now() - startedMs);
      if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
    }
  };
  const loops = apis.map(loop);
  return {
    setOrigin: (t0) => {
      for (const p of polls) p.atMs += origin - t0;
      origin = t0;
    },
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Validated at the boundary: anything but a well-formed leader/standby answer is "down". */
async function pollOnce(api: string): Promise<Omit<HealthPoll, 'atMs'>> {
  const down = { target: api, role: 'down' as const, term: 0, id: '', pid: 0 };
  try {
    const r = await fetch(`${api}/health`,
      { signal: AbortSignal.timeout(failoverBenchDefaults.healthTimeoutMs) });
    if (r.status !== 200) return down;
    const b = (await r.json()) as { role?: unknown; term?: unknown; id?: unknown; pid?: unknown };
    if (b.role !== 'leader' && b.role !== 'standby') return down;
    return { target: api, role: b.role, term: typeof b.term === 'number' ? b.term : 0,
      id: typeof b.id === 'string' ? b.id : api,
      pid: typeof b.pid === 'number' && Number.isInteger(b.pid) && b.pid > 0 ? b.pid : 0 };
  } catch {
    return down;
  }
}

/**
 * @module cli/up
 * `dirigent up`: a whole local cluster in the foreground — one control plane, one data plane and
 * N workers as child processes on 127.0.0.1 — with logs under the state directory. Writes
 * `<stateDir>/cluster.json` (PIDs and addresses, read by `dirigent bench` for CPU accounting)
 * and stops every child by PID on Ctrl-C or SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, writeFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Option, type Command } from 'commander';
import { controlPlaneDefaults, dataPlaneDefaults, ports } from '../config/defaults.js';
import { lbPolicyNames } from '../policy/load-balancing/lb.js';
import { placementPolicyNames } from '../policy/placement/placement.js';
import { parentPidEnv } from './components.js';

interface UpOptions {
  runtime: string;
  workers: string;
  stateDir: string;
  apiPort: string;
  rpcPort: string;
  proxyPort: string;
  internalPort: string;
  workerPort: string;
  placement: string;
  loadBalancing: string;
  logLevel: string;
  workerCpuMillis?: string;
  workerMemoryMib?: string;
  fresh?: boolean;
}

interface Child {
  name: string;
  proc: ChildProcess;
  log: string;
}

/** How long `up` waits for each component to answer its health check. */
const startupTimeoutMs = 30_000;
/**
 * Heartbeats of many emulated workers in one process: up to 1,000 workers beat every second;
 * beyond that the period grows with the count (10,000 workers: every 10 s) so heartbeats stay
 * near 1,000 messages per second. Stream loss is still detected at once; the CP's silence limit
 * is heartbeatTimeoutFactor periods.
 */
const heartbeatsPerSecondMax = 1_000;
const heartbeatPeriodMsMin = 1_000;
const heartbeatTimeoutFactor = 3;

function heartbeatPeriodMs(workers: number): number {
  return Math.max(heartbeatPeriodMsMin, Math.ceil((workers / heartbeatsPerSecondMax) * 1000));
}

/** How long children get to stop after SIGTERM before SIGKILL. */
const stopGraceMs = 8_000;

const mainJs = fileURLToPath(new URL('./main.js', import.meta.url));

export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description('run a local cluster (control plane, data plane, workers) in the foreground')
    .option('--runtime <name>', 'sandbox runtime: process | emulated', 'process')
    .option('--workers <n>', 'number of workers (emulated ones share one process)', '1')
    .option('--state-dir <dir>', 'state directory (SQLite store, logs, cluster.json)', '.dirigent')
    .option('--api-port <port>', 'management API port', String(ports.cpApi))
    .option('--rpc-port <port>', 'control-plane gRPC port', String(ports.cpRpc))
    .option('--proxy-port <port>', 'invocation port', String(ports.dpProxy))
    .option('--internal-port <port>', 'data-plane health/metrics port', String(ports.dpInternal))
    .option('--worker-port <port>', 'first worker health port', String(ports.worker))
    .addOption(new Option('--placement <policy>', 'placement policy').choices(placementPolicyNames).default(controlPlaneDefaults.placement))
    .addOption(new Option('--load-balancing <policy>', 'load-balancing policy').choices(lbPolicyNames).default(dataPlaneDefaults.loadBalancing))
    .option('--log-level <level>', 'component log level (logs go to <state-dir>/logs)', 'info')
    .option('--worker-cpu-millis <m>', 'CPU capacity each worker advertises (default: cores x 1000)')
    .option('--worker-memory-mib <n>', 'memory capacity each worker advertises (default: total memory)')
    .option('--fresh', 'delete the state directory first (forget registered functions)')
    .addHelpText('after', '\nExample:\n  dirigent up\n  dirigent up --runtime emulated --workers 100\n')
    .action(async (opts: UpOptions) => {
      await runUp(opts);
    });
}

async function runUp(o: UpOptions): Promise<void> {
  const stateDir = resolve(o.stateDir);
  const workers = Number(o.workers);
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`--workers must be a positive integer, got ${o.workers}`);
  if (o.fresh) rmSync(stateDir, { recursive: true, force: true });
  mkdirSync(join(stateDir, 'logs'), { recursive: true });
  const children: Child[] = [];
  let stopping = false;
  const stopAll = async (code: number): Promise<never> => {
    stopping = true;
    await stopChildren(children);
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));
  const rpc = `127.0.0.1:${o.rpcPort}`;
  const start = (name: string, args: string[]): Child => {
    const log = join(stateDir, 'logs', `${name}.log`);
    const fd = openSync(log, 'a');
    const proc = spawn(process.execPath, [mainJs, ...args, '--log-level', o.logLevel], {
      stdio: ['ignore', fd, fd],
      // Children stop themselves if `up` dies without stopping them (SIGKILL, OOM).
      env: { ...process.env, [parentPidEnv]: String(process.pid) },
    });
    const child = { name, proc, log };
    proc.on('exit', (code, signal) => {
      if (stopping) return;
      process.stderr.write(`dirigent up: ${name} exited (${signal ?? `code ${code}`}); see ${log}\n`);
    });
    children.push(child);
    return child;
  };
  try {
    const beatMs = heartbeatPeriodMs(workers);
    start('control-plane', ['control-plane', '--state-dir', stateDir, '--api-port', o.apiPort, '--rpc-port', o.rpcPort, '--placement', o.placement, '--heartbeat-timeout-ms', String(beatMs * heartbeatTimeoutFactor)]);
    await waitHealthy(`http://127.0.0.1:${o.apiPort}/health`, children[0]!);
    start('data-plane', ['data-plane', '--control-plane', rpc, '--proxy-port', o.proxyPort, '--internal-port', o.internalPort, '--load-balancing', o.loadBalancing]);
    startWorkers(o, workers, stateDir, rpc, start);
    await waitHealthy(`http://127.0.0.1:${o.internalPort}/health`, children[1]!);
    await waitWorkers(`http://127.0.0.1:${o.apiPort}/v1/cluster`, workers);
  } catch (err) {
    process.stderr.write(`dirigent up: ${(err as Error).message}\n`);
    await stopAll(1);
  }
  writeClusterFile(stateDir, o, children);
  printBanner(o, stateDir, workers);
}

function startWorkers(o: UpOptions, n: number, stateDir: string, rpc: string, start: (name: string, args: string[]) => Child): void {
  const base = ['worker', '--control-plane', rpc, '--runtime', o.runtime, '--state-dir', stateDir, '--heartbeat-period-ms', String(heartbeatPeriodMs(n))];
  if (o.workerCpuMillis) base.push('--cpu-millis', o.workerCpuMillis);
  if (o.workerMemoryMib) base.push('--memory-mib', o.workerMemoryMib);
  if (o.runtime === 'emulated') {
    start('worker', [...base, '--id', 'worker', '--port', o.workerPort, '--count', String(n)]);
    return;
  }
  for (let i = 0; i < n; i += 1) {
    start(`worker-${i + 1}`, [...base, '--id', `worker-${i + 1}`, '--port', String(Number(o.workerPort) + i)]);
  }
}

async function waitHealthy(url: string, child: Child): Promise<void> {
  const deadline = Date.now() + startupTimeoutMs;
  while (Date.now() < deadline) {
    if (child.proc.exitCode !== null) throw new Error(`${child.name} exited during start-up; see ${child.log}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      if (r.ok) return;
    } catch {
      // not up yet
    }
    await sleep(50);
  }
  throw new Error(`${child.name} not healthy at ${url} after ${startupTimeoutMs} ms; see ${child.log}`);
}

async function waitWorkers(url: string, n: number): Promise<void> {
  const deadline = Date.now() + startupTimeoutMs;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      const body = (await r.json()) as { workers: { connected: boolean }[] };
      if (body.workers.filter((w) => w.connected).length >= n) return;
    } catch {
      // not up yet
    }
    await sleep(100);
  }
  throw new Error(`fewer than ${n} workers registered after ${startupTimeoutMs} ms; see the worker logs`);
}

async function stopChildren(children: Child[]): Promise<void> {
  const alive = children.filter((c) => c.proc.exitCode === null && c.proc.signalCode === null);
  // Workers first so they delete their sandboxes while the CP still listens.
  for (const c of [...alive].reverse()) c.proc.kill('SIGTERM');
  await Promise.race([
    Promise.all(alive.map((c) => new Promise((r) => (c.proc.exitCode !== null ? r(null) : c.proc.once('exit', r))))),
    sleep(stopGraceMs),
  ]);
  for (const c of alive) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
}

function writeClusterFile(stateDir: string, o: UpOptions, children: Child[]): void {
  const byName = (prefix: string) => children.filter((c) => c.name.startsWith(prefix));
  const cluster = {
    controlPlane: { pid: byName('control-plane')[0]!.proc.pid, apiUrl: `http://127.0.0.1:${o.apiPort}` },
    dataPlanes: byName('data-plane').map((c) => ({ pid: c.proc.pid, proxyUrl: `http://127.0.0.1:${o.proxyPort}` })),
    workers: byName('worker').map((c) => ({ pid: c.proc.pid, id: c.name })),
  };
  writeFileSync(join(stateDir, 'cluster.json'), JSON.stringify(cluster, null, 2));
}

function printBanner(o: UpOptions, stateDir: string, workers: number): void {
  const cmd = o.runtime === 'process'
    ? "fn deploy hello --command 'node examples/hello/server.js'"
    : 'fn deploy hello --image emulated';
  process.stdout.write(`
Dirigent is up (${o.runtime} runtime, ${workers} worker${workers > 1 ? 's' : ''}).
  management API   http://127.0.0.1:${o.apiPort}   (GET /v1/functions, /v1/cluster, /metrics)
  invocations      http://127.0.0.1:${o.proxyPort}   (Host: <function> or /function/<function>/)
  internal gRPC    127.0.0.1:${o.rpcPort}
  state and logs   ${stateDir}

Try it from another terminal (in the repository; \`npm link\` puts \`dirigent\` on your PATH):
  ./bin/dirigent.js ${cmd}
  ./bin/dirigent.js fn invoke hello
  curl -H 'Host: hello' http://127.0.0.1:${o.proxyPort}/

Ctrl-C stops the cluster.
`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

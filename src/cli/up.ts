/**
 * @module cli/up
 * `dirigent up`: a whole local cluster in the foreground as supervised child processes on
 * 127.0.0.1, with logs under the state directory. The default layout is one control plane
 * (SQLite), one data plane and N workers; `--store etcd --control-planes 3 --data-planes 2` runs
 * the HA layout (a local etcd, CP replicas, DP replicas and the HAProxy front end; cli/up-layout).
 * A component that dies is restarted with backoff (cli/supervisor). Writes
 * `<stateDir>/cluster.json` (PIDs and addresses, read by `dirigent bench` for CPU accounting) and
 * stops every child by PID on Ctrl-C or SIGTERM.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Option, type Command } from 'commander';
import { autoRpcThreadCoresMin, controlPlaneDefaults, dataPlaneDefaults, initialOldSpaceMiBMax, ports, proxyThreadsMax, upDefaults } from '../config/defaults.js';
import { frontendDefaults } from '../frontend/command.js';
import { diesWithParent, findBinary } from '../frontend/binary.js';
import { lbPolicyNames } from '../policy/load-balancing/lb.js';
import { placementPolicyNames } from '../policy/placement/placement.js';
import { pinoLogger, type LogLevel } from '../shared/pino-logger.js';
import type { Logger } from '../shared/logger.js';
import { parentPidEnv } from '../shared/parent-watch.js';
import { Agent, setGlobalDispatcher } from 'undici';
import { certFiles, createCerts } from './certs.js';
import { Supervisor, type Supervised } from './supervisor.js';
import { adminTokenPath, clusterTokenPath, heldFdFirst, nodeHeapArgs, planUp, redisDataDir, redisPortDefault, upHost, type PlannedComponent, type UpLayout, type UpLayoutInput } from './up-layout.js';
import { holdListener, type HeldListener } from './held-listener.js';
import { firstPortTaken, portTakenMessage } from './up-ports.js';
import { readOrCreateTokenFile } from '../shared/secrets.js';
import { waitHealthy, waitWorkers } from './up-wait.js';
import { printBanner } from './up-banner.js';

export interface UpOptions {
  runtime: string;
  isolation: string;
  workers: string;
  stateDir: string;
  apiPort: string;
  rpcPort: string;
  proxyPort: string;
  internalPort: string;
  workerPort: string;
  placement: string;
  loadBalancing: string;
  queueFloor: 'on' | 'off';
  rpcThread: 'auto' | 'thread' | 'loop';
  proxyThreads: string;
  logLevel: string;
  workerCpuMillis?: string;
  workerMemoryMib?: string;
  fresh?: boolean;
  store: 'sqlite' | 'etcd';
  controlPlanes: string;
  dataPlanes: string;
  frontendPort: string;
  frontendApiPort: string;
  etcdPort: string;
  asyncStore: 'sqlite' | 'redis';
  redisPort: string;
  tls?: boolean;
  cpuProfDir?: string;
  initialOldSpaceMib: string;
}

/**
 * Heartbeats of many emulated workers in one process: up to 1,000 workers beat every second;
 * beyond that the period grows with the count (10,000 workers: every 10 s) so heartbeats stay
 * at most near 1,000 messages per second (fewer under load: a worker that sent a sandbox event
 * within the period skips its heartbeat). Stream loss is still detected at once; the CP's
 * silence limit is heartbeatTimeoutFactor periods.
 */
const heartbeatsPerSecondMax = 1_000;
const heartbeatPeriodMsMin = 1_000;
const heartbeatTimeoutFactor = 3;
/** Validity of the certificates `up --tls` makes. */
const certsUpDays = 365;
/** Replicas `up` runs on one machine at most (ports are spaced by 100). */
const replicasMax = 9;

function heartbeatPeriodMs(workers: number): number {
  return Math.max(heartbeatPeriodMsMin, Math.ceil((workers / heartbeatsPerSecondMax) * 1000));
}

const mainJs = fileURLToPath(new URL('./main.js', import.meta.url));

export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description('run a local cluster (control plane, data plane, workers) in the foreground')
    .option('--runtime <names>', 'sandbox runtimes: process, oci, containerd (comma-separated), or emulated', 'process')
    .addOption(new Option('--isolation <mode>', 'process sandboxes: bwrap (needs bubblewrap, nftables, root) | none | auto (bwrap when usable)').choices(['bwrap', 'none', 'auto']).default('bwrap'))
    .option('--workers <n>', 'number of workers (emulated ones share one process)', '1')
    .option('--state-dir <dir>', 'state directory (SQLite store, logs, cluster.json)', '.dirigent')
    .option('--api-port <port>', 'management API port (CP i: +100*i)', String(ports.cpApi))
    .option('--rpc-port <port>', 'control-plane gRPC port (CP i: +100*i)', String(ports.cpRpc))
    .option('--proxy-port <port>', 'invocation port (DP j: +100*j)', String(ports.dpProxy))
    .option('--internal-port <port>', 'data-plane health/metrics port (DP j: +100*j)', String(ports.dpInternal))
    .option('--worker-port <port>', 'first worker health port', String(ports.worker))
    .addOption(new Option('--placement <policy>', 'placement policy').choices(placementPolicyNames).default(controlPlaneDefaults.placement))
    .addOption(new Option('--load-balancing <policy>', 'load-balancing policy').choices(lbPolicyNames).default(dataPlaneDefaults.loadBalancing))
    .addOption(new Option('--rpc-thread <auto|thread|loop>', `where each CP serves its worker and DP streams: thread (sockets, TLS, HTTP/2 and gRPC framing on a worker thread, off the decision loop), loop, auto (thread from ${autoRpcThreadCoresMin} cores up)`).choices(['auto', 'thread', 'loop']).default(controlPlaneDefaults.rpcThread))
    .addOption(new Option('--queue-floor <on|off>', 'autoscaler: never fewer sandboxes than requests in flight or queued (off: plain KPA, as the reference)').choices(['on', 'off']).default(controlPlaneDefaults.queueFloor))
    .option('--proxy-threads <n>', 'processes serving each data plane\'s invocation port (N-1 proxy processes share its socket, slots and queues; 0 = the core count from 4 cores up, else 1)', String(dataPlaneDefaults.proxyThreads))
    .addOption(new Option('--store <kind>', 'control-plane store: sqlite (one CP) | etcd (a local etcd, CP replicas)').choices(['sqlite', 'etcd']).default('sqlite'))
    .option('--control-planes <n>', 'control-plane replicas (more than one needs --store etcd)', '1')
    .option('--data-planes <n>', 'data-plane replicas (more than one adds the front end)', '1')
    .option('--frontend-port <port>', 'front-end invocation port (HA layout)', String(frontendDefaults.invocationPort))
    .option('--frontend-api-port <port>', 'front-end management API port (HA layout)', String(frontendDefaults.apiPort))
    .option('--etcd-port <port>', 'local etcd client port (peer port: +1)', '2379')
    .addOption(new Option('--async-store <kind>', 'where DPs keep async invocations: sqlite (per DP) | redis (a local redis-server, shared)').choices(['sqlite', 'redis']).default('sqlite'))
    .option('--redis-port <port>', 'local Redis port with --async-store redis', String(redisPortDefault))
    .option('--log-level <level>', 'component log level (logs go to <state-dir>/logs)', 'info')
    .option('--worker-cpu-millis <m>', 'CPU capacity each worker advertises (default: cores x 1000; emulated: 64,000, a 64-core node)')
    .option('--worker-memory-mib <n>', 'memory capacity each worker advertises (default: total memory; emulated: 262,144, 256 GiB)')
    .option('--initial-old-space-mib <n>', 'V8\'s first old-generation limit for each Node component (node --initial-old-space-size): fewer mark-compacts under load; 0 = V8\'s own', String(upDefaults.initialOldSpaceMiB))
    .option('--cpu-prof-dir <dir>', 'profile every Node component (node --cpu-prof); profiles are written here when `up` stops them')
    .option('--fresh', 'delete the state directory first (forget registered functions)')
    .option('--tls', 'TLS everywhere: certificates from `certs create` in <state-dir>/tls (made when absent)')
    .addHelpText('after', '\nExample:\n  dirigent up\n  dirigent up --runtime emulated --workers 100\n  dirigent up --store etcd --control-planes 3 --data-planes 2\n')
    .action(async (opts: UpOptions) => {
      await runUp(opts);
    });
}

function intOption(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in [${min}, ${max}], got ${text}`);
  return n;
}

export function layoutInput(o: UpOptions, stateDir: string): UpLayoutInput {
  const workers = intOption('workers', o.workers, 1, 1_000_000);
  const beatMs = heartbeatPeriodMs(workers);
  const port = (name: string, text: string): number => intOption(name, text, 1, 65_535);
  return {
    runtime: o.runtime, isolation: o.isolation, workers, stateDir,
    apiPort: port('api-port', o.apiPort), rpcPort: port('rpc-port', o.rpcPort), proxyPort: port('proxy-port', o.proxyPort),
    internalPort: port('internal-port', o.internalPort), workerPort: port('worker-port', o.workerPort),
    placement: o.placement, loadBalancing: o.loadBalancing, queueFloor: o.queueFloor, rpcThread: o.rpcThread,
    proxyThreads: intOption('proxy-threads', o.proxyThreads, 0, proxyThreadsMax),
    ...(o.workerCpuMillis ? { workerCpuMillis: o.workerCpuMillis } : {}),
    ...(o.workerMemoryMib ? { workerMemoryMib: o.workerMemoryMib } : {}),
    store: o.store,
    controlPlanes: intOption('control-planes', o.controlPlanes, 1, replicasMax),
    dataPlanes: intOption('data-planes', o.dataPlanes, 1, replicasMax),
    frontendPort: port('frontend-port', o.frontendPort), frontendApiPort: port('frontend-api-port', o.frontendApiPort),
    etcdPort: port('etcd-port', o.etcdPort),
    ...(o.asyncStore === 'redis' ? { asyncStore: 'redis' as const, redisPort: port('redis-port', o.redisPort) } : {}),
    heartbeatPeriodMs: beatMs, heartbeatTimeoutMs: beatMs * heartbeatTimeoutFactor,
    ...(o.tls ? { tls: { caFile: join(stateDir, 'tls', certFiles.ca), certFile: join(stateDir, 'tls', certFiles.cert), keyFile: join(stateDir, 'tls', certFiles.key) } } : {}),
  };
}

async function runUp(o: UpOptions): Promise<void> {
  const stateDir = resolve(o.stateDir);
  let layout: UpLayout;
  let heapMiB = 0;
  let etcdBin = '';
  let redisBin = '';
  try {
    layout = planUp(layoutInput(o, stateDir));
    heapMiB = intOption('initial-old-space-mib', o.initialOldSpaceMib, 0, initialOldSpaceMiBMax);
    if (layout.etcdUrl) etcdBin = findBinary('etcd', 'etcd-server');
    if (layout.redisUrl) redisBin = findBinary('redis-server', 'redis-server');
    if (layout.ha) findBinary('haproxy', 'haproxy');
  } catch (err) {
    process.stderr.write(`dirigent up: ${(err as Error).message}\n`);
    process.exit(2);
  }
  // Before anything starts or --fresh deletes a state directory another cluster may be using.
  const taken = await firstPortTaken(layout.stages.flat(), upHost);
  if (taken) {
    process.stderr.write(`dirigent up: ${portTakenMessage(taken, upHost)}\n`);
    process.exit(1);
  }
  if (o.fresh) rmSync(stateDir, { recursive: true, force: true });
  mkdirSync(join(stateDir, 'logs'), { recursive: true });
  if (layout.redisUrl) mkdirSync(redisDataDir(stateDir), { recursive: true });
  // Made before any component starts, so every CP replica, DP and worker reads the same ones.
  const adminToken = readOrCreateTokenFile(adminTokenPath(stateDir)).token;
  readOrCreateTokenFile(clusterTokenPath(stateDir));
  if (o.tls) trustUpCa(stateDir);
  const log = pinoLogger('up', o.logLevel as LogLevel);
  const sup = new Supervisor(log, () => writeClusterFile(stateDir, layout, sup.children));
  // Held ports (cli/held-listener): up's copies stay referenced and open until its children stop.
  const held = holdPorts(layout.stages.flat(), log);
  const stopAll = async (code: number): Promise<never> => {
    await sup.stopAll();
    for (const h of held.listeners) h.close();
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));
  const nodeArgs = [
    ...nodeHeapArgs(heapMiB),
    ...(o.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${resolve(o.cpuProfDir)}`] : []),
  ];
  const start = (c: PlannedComponent): Supervised => {
    const h = held.byName.get(c.name) ?? { args: [], fds: [] };
    return sup.start({
      name: c.name,
      ...(c.kind === 'etcd' || c.kind === 'redis' ? diesWithParent(c.kind === 'etcd' ? etcdBin : redisBin, c.args) : { command: process.execPath, args: [...nodeArgs, mainJs, ...c.args, ...h.args, '--log-level', o.logLevel] }),
      log: join(stateDir, 'logs', `${c.name}.log`),
      // Children stop themselves if `up` dies without stopping them (SIGKILL, OOM).
      env: { ...process.env, [parentPidEnv]: String(process.pid) },
      fds: h.fds,
    });
  };
  try {
    for (const stage of layout.stages) {
      const started = stage.map(start);
      await Promise.all(started.map((s, k) => (stage[k]!.healthUrl ? waitHealthy(stage[k]!.healthUrl!, s.spec.name, s.spec.log, () => s.restarts) : Promise.resolve())));
    }
    // Through the front end in HA: only the leader knows the workers.
    await waitWorkers(`${layout.apiUrl}/v1/cluster`, Number(o.workers), adminToken);
  } catch (err) {
    process.stderr.write(`dirigent up: ${(err as Error).message}\n`);
    await stopAll(1);
  }
  writeClusterFile(stateDir, layout, sup.children);
  printBanner(o, layout, stateDir);
}

/**
 * Binds the ports components get from `up` (cli/held-listener), so that each survives its
 * component's restarts; per component, the flags naming the descriptors and the descriptors.
 * A port that cannot be held is logged and left to the component.
 */
function holdPorts(components: PlannedComponent[], log: Logger): { byName: Map<string, { args: string[]; fds: number[] }>; listeners: HeldListener[] } {
  const byName = new Map<string, { args: string[]; fds: number[] }>();
  const listeners: HeldListener[] = [];
  for (const c of components) {
    const mine = { args: [] as string[], fds: [] as number[] };
    for (const p of c.held ?? []) {
      const h = holdListener(upHost, p.port);
      if (h instanceof Error) {
        log.warn('up.port_not_held', { name: c.name, port: p.port, error: h.message });
        continue;
      }
      mine.args.push(p.fdFlag, String(heldFdFirst + mine.fds.length));
      mine.fds.push(h.fd);
      listeners.push(h);
    }
    byName.set(c.name, mine);
  }
  return { byName, listeners };
}

/**
 * `up --tls`: certificates in <stateDir>/tls (made once, kept across runs so a CLI holding the
 * CA keeps working), and up's own health checks trust that CA.
 */
function trustUpCa(stateDir: string): void {
  const dir = join(stateDir, 'tls');
  if (!existsSync(join(dir, certFiles.ca))) createCerts({ dir, hosts: [], days: certsUpDays, force: false, nowMs: Date.now() });
  setGlobalDispatcher(new Agent({ connect: { ca: readFileSync(join(dir, certFiles.ca)) } }));
}

function writeClusterFile(stateDir: string, layout: UpLayout, children: Supervised[]): void {
  const of = (kind: string): Supervised[] => children.filter((c) => c.spec.name.startsWith(kind));
  const cps = of('control-plane');
  // Where each component's /metrics is (event-loop delay for `dirigent bench`).
  const metricsUrls = new Map(layout.stages.flat().map((p) => [p.name, p.metricsUrl]));
  const metricsUrl = (c: Supervised) => ({ metricsUrl: metricsUrls.get(c.spec.name) });
  const cluster = {
    controlPlane: { pid: cps[0]?.proc.pid, apiUrl: layout.apiUrl, ...(cps[0] ? metricsUrl(cps[0]) : {}) },
    controlPlanes: cps.map((c, k) => ({ pid: c.proc.pid, apiUrl: `${layout.scheme}://${layout.controlPlaneApis[k]}`, ...metricsUrl(c) })),
    dataPlanes: of('data-plane').map((c, k) => ({ pid: c.proc.pid, proxyUrl: `${layout.scheme}://${layout.dataPlaneProxies[k]}`, ...metricsUrl(c) })),
    workers: of('worker').map((c) => ({ pid: c.proc.pid, id: c.spec.name, ...metricsUrl(c) })),
    ...(layout.ha ? { frontend: { pid: of('frontend')[0]?.proc.pid, apiUrl: layout.apiUrl, proxyUrl: layout.proxyUrl } } : {}),
  };
  writeFileSync(join(stateDir, 'cluster.json'), JSON.stringify(cluster, null, 2));
}

/**
 * @module cli/up-layout
 * Which processes `dirigent up` runs, with which command lines, in which order: pure, so the
 * layouts are unit-tested without starting anything.
 *
 *   single (default): control plane (SQLite) -> data plane + workers
 *   HA (--store etcd, or several CPs or DPs): etcd -> CPs -> DPs + workers -> front end (HAProxy)
 *   --async-store redis adds a local redis-server (append-only file, fsync on every write) to the
 *   first stage; every DP keeps its async invocations there (default: SQLite per DP, nothing started).
 *
 * Replica i of a kind listens on the base port + 100*i (DESIGN.md §2).
 */
import { join } from 'node:path';
import { workerDefaults } from '../config/defaults.js';

export const replicaPortStride = 100;

export interface UpLayoutInput {
  runtime: string;
  /** Worker --isolation; absent = the worker's default. */
  isolation?: string;
  workers: number;
  stateDir: string;
  apiPort: number;
  rpcPort: number;
  proxyPort: number;
  internalPort: number;
  workerPort: number;
  placement: string;
  loadBalancing: string;
  /** Passed to every CP unless it is the default. */
  queueFloor?: 'on' | 'off';
  /** Where each CP serves its worker and DP streams (absent: the CP's default, auto). */
  rpcThread?: 'auto' | 'thread' | 'loop';
  /** Processes per data plane serving its invocation port (absent: the DP's default). */
  proxyThreads?: number;
  workerCpuMillis?: string;
  workerMemoryMib?: string;
  store: 'sqlite' | 'etcd';
  controlPlanes: number;
  dataPlanes: number;
  frontendPort: number;
  frontendApiPort: number;
  etcdPort: number;
  heartbeatPeriodMs: number;
  heartbeatTimeoutMs: number;
  /** Where DPs keep async invocations; 'redis' starts a local redis-server on redisPort. */
  asyncStore?: 'sqlite' | 'redis';
  redisPort?: number;
  /** `up --tls`: the files of `certs create` (every layout; the HA front end serves them too). */
  tls?: { caFile: string; certFile: string; keyFile: string };
}

export type ComponentKind = 'etcd' | 'redis' | 'control-plane' | 'data-plane' | 'worker' | 'frontend';

export interface PlannedComponent {
  name: string;
  kind: ComponentKind;
  /** Arguments of `dirigent` (or of `etcd` for kind etcd). */
  args: string[];
  /** Answers 200 once the component is up. */
  healthUrl?: string;
  /** Its Prometheus /metrics (event-loop delay for the benches; cluster.json lists it). */
  metricsUrl?: string;
  /** Ports it listens on (on 127.0.0.1), each with the `up` flag that moves it. */
  listens: Listen[];
  /**
   * Ports `up` binds itself and hands over as inherited descriptors (cli/held-listener), each
   * named to the component by its flag: the API and invocation ports of the single-node layout.
   * Connections made while the component restarts then wait for the new process instead of being
   * refused. A port `up` cannot hold is bound by the component itself, as without this.
   */
  held?: HeldPort[];
}

export interface HeldPort {
  port: number;
  /** The component's flag taking the descriptor's number. */
  fdFlag: string;
}

/** The first inherited descriptor after stdin, stdout and stderr. */
export const heldFdFirst = 3;

export interface Listen {
  port: number;
  flag: string;
}

export interface UpLayout {
  ha: boolean;
  /** Start-up stages: each waits for the health of the previous one. */
  stages: PlannedComponent[][];
  /** Where the management API and invocations are for users (the front end in HA). */
  apiUrl: string;
  proxyUrl: string;
  /** Of every API and invocation URL: https with --tls. */
  scheme: 'http' | 'https';
  controlPlaneApis: string[];
  controlPlaneRpcs: string[];
  dataPlaneProxies: string[];
  etcdUrl?: string;
  /** redis://host:port of the local Redis with `--async-store redis`. */
  redisUrl?: string;
}

/** The Redis port `up --async-store redis` uses unless told. */
export const redisPortDefault = 6379;

/** Every component `up` starts listens here. */
export const upHost = '127.0.0.1';
const host = upHost;

export function planUp(i: UpLayoutInput): UpLayout {
  const ha = i.store === 'etcd' || i.controlPlanes > 1 || i.dataPlanes > 1;
  if (i.store === 'sqlite' && i.controlPlanes > 1) throw new Error('several control planes need a shared store: add --store etcd');
  const scheme: UpLayout['scheme'] = i.tls ? 'https' : 'http';
  const nth = (base: number, k: number): number => base + replicaPortStride * k;
  const cpApis = range(i.controlPlanes).map((k) => `${host}:${nth(i.apiPort, k)}`);
  const cpRpcs = range(i.controlPlanes).map((k) => `${host}:${nth(i.rpcPort, k)}`);
  const dpProxies = range(i.dataPlanes).map((k) => `${host}:${nth(i.proxyPort, k)}`);
  const etcdUrl = i.store === 'etcd' ? `http://${host}:${i.etcdPort}` : undefined;
  const cps = range(i.controlPlanes).map((k) => controlPlane(i, k, cpApis[k]!, nth(i.rpcPort, k), etcdUrl));
  const redisUrl = i.asyncStore === 'redis' ? `redis://${host}:${i.redisPort ?? redisPortDefault}` : undefined;
  const dps = range(i.dataPlanes).map((k) => dataPlane(i, k, cpRpcs.join(','), nth(i.proxyPort, k), nth(i.internalPort, k), redisUrl));
  // Without a front end, up holds the ports users reach (see PlannedComponent.held). Behind one,
  // it does not: a refused connection is how the front end fails over to another replica at once,
  // where a held port would keep the request waiting for the dead one's restart.
  if (!ha) {
    for (const cp of cps) cp.held = [{ port: i.apiPort, fdFlag: '--api-fd' }];
    for (const dp of dps) dp.held = [{ port: i.proxyPort, fdFlag: '--proxy-fd' }];
  }
  const stages: PlannedComponent[][] = [];
  if (etcdUrl) stages.push([etcd(i, etcdUrl)]);
  stages.push(cps, [...dps, ...workers(i, cpRpcs.join(','))]);
  // Redis has no HTTP health URL: it starts with the first stage, whose health wait covers its start-up.
  if (redisUrl) stages[0]!.push(redis(i, i.redisPort ?? redisPortDefault));
  if (ha) stages.push([frontend(i, cpApis, dpProxies)]);
  return {
    ha,
    stages,
    apiUrl: ha ? `${scheme}://${host}:${i.frontendApiPort}` : `${scheme}://${cpApis[0]}`,
    proxyUrl: ha ? `${scheme}://${host}:${i.frontendPort}` : `${scheme}://${dpProxies[0]}`,
    scheme,
    controlPlaneApis: cpApis,
    controlPlaneRpcs: cpRpcs,
    dataPlaneProxies: dpProxies,
    ...(etcdUrl ? { etcdUrl } : {}),
    ...(redisUrl ? { redisUrl } : {}),
  };
}

/** Durable as the async API promises: a 202 means the write is fsynced. */
function redis(i: UpLayoutInput, port: number): PlannedComponent {
  return {
    name: 'redis',
    kind: 'redis',
    args: ['--port', String(port), '--bind', host, '--dir', redisDataDir(i.stateDir), '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''],
    listens: [{ port, flag: '--redis-port' }],
  };
}

export function redisDataDir(stateDir: string): string {
  return join(stateDir, 'redis');
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, k) => k);
}

function etcd(i: UpLayoutInput, clientUrl: string): PlannedComponent {
  const peerUrl = `http://${host}:${i.etcdPort + 1}`;
  return {
    name: 'etcd',
    kind: 'etcd',
    args: ['--name', 'dirigent', '--data-dir', join(i.stateDir, 'etcd'), '--listen-client-urls', clientUrl, '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl, '--initial-cluster', `dirigent=${peerUrl}`],
    healthUrl: `${clientUrl}/health`,
    listens: [{ port: i.etcdPort, flag: '--etcd-port' }, { port: i.etcdPort + 1, flag: '--etcd-port' }],
  };
}

function controlPlane(i: UpLayoutInput, k: number, api: string, rpcPort: number, etcdUrl: string | undefined): PlannedComponent {
  const single = etcdUrl === undefined;
  const args = ['control-plane', '--state-dir', single ? i.stateDir : join(i.stateDir, `cp-${k}`), '--api-port', api.split(':')[1]!, '--rpc-port', String(rpcPort),
    '--placement', i.placement, '--heartbeat-timeout-ms', String(i.heartbeatTimeoutMs),
    '--admin-token-file', adminTokenPath(i.stateDir), '--cluster-token-file', clusterTokenPath(i.stateDir)];
  if (i.queueFloor === 'off') args.push('--queue-floor', 'off');
  if (i.rpcThread !== undefined && i.rpcThread !== 'auto') args.push('--rpc-thread', i.rpcThread);
  if (!single) args.push('--store', etcdUrl.replace(/^http:/, 'etcd:'), '--id', `cp-${k}`);
  args.push(...tlsArgs(i, 'server'));
  const base = `${i.tls ? 'https' : 'http'}://${api}`;
  const apiPort = Number(api.split(':')[1]);
  return { name: single ? 'control-plane' : `control-plane-${k}`, kind: 'control-plane', args, healthUrl: `${base}/health`, metricsUrl: `${base}/metrics`,
    listens: [{ port: apiPort, flag: '--api-port' }, { port: rpcPort, flag: '--rpc-port' }] };
}

function dataPlane(i: UpLayoutInput, k: number, cps: string, proxyPort: number, internalPort: number, redisUrl: string | undefined): PlannedComponent {
  const single = i.dataPlanes === 1;
  const args = ['data-plane', '--control-plane', cps, '--proxy-port', String(proxyPort), '--internal-port', String(internalPort), '--load-balancing', i.loadBalancing,
    '--cluster-token-file', clusterTokenPath(i.stateDir)];
  if (!single) args.push('--id', `dp-${k}`);
  if (i.proxyThreads !== undefined) args.push('--proxy-threads', String(i.proxyThreads));
  if (redisUrl) args.push('--async-store', redisUrl);
  // A local cluster: X-Callback-Url may name a service on this machine (a developer's, or the bench's).
  args.push('--async-callback-allow-private', 'true');
  args.push(...tlsArgs(i, 'server'));
  return { name: single ? 'data-plane' : `data-plane-${k}`, kind: 'data-plane', args, healthUrl: `http://${host}:${internalPort}/health`,
    metricsUrl: `http://${host}:${internalPort}/metrics`, listens: [{ port: proxyPort, flag: '--proxy-port' }, { port: internalPort, flag: '--internal-port' }] };
}

function workers(i: UpLayoutInput, cps: string): PlannedComponent[] {
  const base = ['worker', '--control-plane', cps, '--runtime', i.runtime, '--state-dir', i.stateDir, '--heartbeat-period-ms', String(i.heartbeatPeriodMs),
    '--cluster-token-file', clusterTokenPath(i.stateDir), ...tlsArgs(i, 'client')];
  if (i.workerCpuMillis) base.push('--cpu-millis', i.workerCpuMillis);
  if (i.workerMemoryMib) base.push('--memory-mib', i.workerMemoryMib);
  if (i.isolation !== undefined && i.runtime !== 'emulated') base.push('--isolation', i.isolation);
  if (i.runtime === 'emulated') {
    // Many emulated workers share one process: one component to supervise.
    return [{ name: 'worker', kind: 'worker', args: [...base, '--id', 'worker', '--port', String(i.workerPort), '--count', String(i.workers)],
      metricsUrl: `http://${host}:${i.workerPort}/metrics`, listens: [{ port: i.workerPort, flag: '--worker-port' }] }];
  }
  // Workers on one host must not share sandbox uids (the uid is a sandbox's wall) nor race
  // for the same ports: each gets its own slice of the default ranges.
  const uids = slices(workerDefaults.sandboxUidRange, i.workers);
  const ports = slices(workerDefaults.sandboxPortRange, i.workers);
  return range(i.workers).map((k) => ({
    name: `worker-${k + 1}`,
    kind: 'worker' as const,
    args: [...base, '--id', `worker-${k + 1}`, '--port', String(i.workerPort + k),
      '--sandbox-uid-range', uids[k]!.join(','), '--sandbox-port-range', ports[k]!.join(',')],
    metricsUrl: `http://${host}:${i.workerPort + k}/metrics`,
    listens: [{ port: i.workerPort + k, flag: '--worker-port' }],
  }));
}

/** CPs, DPs and the front end serve the certificate and trust the CA; workers only trust the CA. */
function tlsArgs(i: UpLayoutInput, role: 'server' | 'client'): string[] {
  if (!i.tls) return [];
  const ca = ['--tls-ca-file', i.tls.caFile];
  return role === 'client' ? ca : ['--tls-cert-file', i.tls.certFile, '--tls-key-file', i.tls.keyFile, ...ca];
}

function frontend(i: UpLayoutInput, cpApis: string[], dpProxies: string[]): PlannedComponent {
  const args = ['frontend', '--state-dir', i.stateDir, '--invocation-port', String(i.frontendPort), '--api-port', String(i.frontendApiPort),
    '--control-planes', cpApis.join(','), '--data-planes', dpProxies.join(',')];
  // One CP is always the leader; /health/leader is what tells replicas apart.
  if (cpApis.length === 1) args.push('--api-health-path', '/health');
  // With --tls HAProxy serves the certificate too, and checks the CPs' and DPs' against the CA.
  args.push(...tlsArgs(i, 'server'));
  return { name: 'frontend', kind: 'frontend', args, healthUrl: `${i.tls ? 'https' : 'http'}://${host}:${i.frontendApiPort}/health`,
    listens: [{ port: i.frontendPort, flag: '--frontend-port' }, { port: i.frontendApiPort, flag: '--frontend-api-port' }] };
}

/** The Node flags `up` starts a CP, DP or worker with: V8's first old-generation limit (upDefaults). */
export function nodeHeapArgs(initialOldSpaceMiB: number): string[] {
  return initialOldSpaceMiB > 0 ? [`--initial-old-space-size=${initialOldSpaceMiB}`] : [];
}

/** The admin token `up` makes (every CP replica shares it; the CLI reads it from here). */
export function adminTokenPath(stateDir: string): string {
  return join(stateDir, 'admin.token');
}

/** The token workers and DPs join the control plane with. */
export function clusterTokenPath(stateDir: string): string {
  return join(stateDir, 'cluster.token');
}

/** [first, last] cut into n contiguous inclusive slices of equal size. */
export function slices(range: readonly [number, number], n: number): [number, number][] {
  const size = Math.floor((range[1] - range[0] + 1) / n);
  if (size < 2) throw new Error(`${n} workers are too many to share [${range[0]}, ${range[1]}]`);
  return Array.from({ length: n }, (_, k): [number, number] => [range[0] + k * size, range[0] + (k + 1) * size - 1]);
}

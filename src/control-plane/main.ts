/**
 * @module control-plane/main
 * Wires the control-plane core to its shells: the store, the election, the gRPC stream server,
 * the management API, the monitor ticker and metrics. Owns every timer of the CP.
 *
 * A CP starts as a standby: its API forwards to the leader and its RPC port redirects streams
 * there. Once elected it takes the term, fences the store with it, loads the records and serves.
 * A leader that loses its lease closes every stream and exits with `deposedExitCode`, so its
 * supervisor restarts it as a standby with empty memory (simpler and safer than un-learning
 * the state it built as leader).
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { FunctionSpec, FunctionStatus } from '../api/types.js';
import { ConfigError, type ControlPlaneConfig } from '../config/compile.js';
import { apiDefaults } from '../config/defaults.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { registerLeanHttpGauge } from '../shared/http1/lean-metrics.js';
import type { Logger } from '../shared/logger.js';
import { seededRng } from '../shared/rng.js';
import { isLoopbackHost } from '../shared/loopback.js';
import { metricsText } from '../shared/metrics-select.js';
import { readOrCreateTokenFile } from '../shared/secrets.js';
import { caOf, clusterTokenDigestOf, serverTlsOf } from '../shared/tls-files.js';
import { ControlPlaneCore } from './core/control-plane.js';
import type { ApiResult } from './core/types.js';
import { startApiServer, type ApiBackend, type ApiServer } from './shell/api-server.js';
import { Tenancy } from './shell/api-auth.js';
import { clusterView, type ClusterViewOptions } from './shell/cluster-view.js';
import { SoloElection, type CpMember, type Election } from './shell/election.js';
import { HttpError } from './shell/http-util.js';
import { createMetrics } from './shell/metrics.js';
import { RpcServer, rpcOnThread, type RpcHooks } from './shell/rpc-server.js';
import { CpRuntime } from './shell/runtime.js';
import { parseEtcdUrl } from './store/store-url.js';
import { SqliteStore } from './store/sqlite-store.js';
import { nextSqliteTerm } from './store/sqlite-term.js';
import type { Store } from './store/store.js';

export interface RunningControlPlane {
  apiPort: number;
  rpcPort: number;
  core: ControlPlaneCore;
  close(): Promise<void>;
}

/** Creations failing this many times in a row fail the function's queued requests. */
const failFastAfterFailures = 3;
/** Exit status of a leader that lost its lease (EX_TEMPFAIL): its supervisor restarts it. */
export const deposedExitCode = 75;

export async function startControlPlane(cfg: ControlPlaneConfig, log: Logger, store?: Store): Promise<RunningControlPlane> {
  checkAuthListen(cfg);
  const adminToken = cfg.auth === 'token' ? await bootstrapToken(cfg, log) : null;
  const clock = systemClock;
  const links = linkFiles(cfg, log);
  const seed = cfg.seed !== 0 ? cfg.seed : Math.floor(Math.random() * 2 ** 31);
  const core = newCore(cfg, seed, log);
  const metrics = createMetrics(core);
  const role: Role = { leading: false, term: 0, id: cpId(cfg) };
  // Addresses are known once the ports are bound; the election reads them when it campaigns.
  const self: CpMember = { id: role.id, rpcAddress: '', apiAddress: '', pid: process.pid };
  const { db, election, fence } = await openBackends(cfg, self, clock, log, store);
  const runtime = new CpRuntime(core, db, clock, metrics, log);
  runtime.mayAct = () => election.holdsLease();
  const tenancy = newTenancy(cfg, adminToken, db, runtime, clock);
  const rpcHooks: RpcHooks = {
    core,
    handle: (e) => runtime.handle(e),
    standbyLeader: () => (role.leading ? null : (otherLeader(election, role)?.rpcAddress ?? '')),
    clusterTokenSha256Hex: links.clusterTokenSha256Hex,
    pingLimits: { burstMax: cfg.rpcPingBurstMax, refillMs: cfg.rpcPingRefillMs },
  };
  const onThread = rpcOnThread(cfg.rpcThread);
  const rpc = new RpcServer(rpcHooks, log, { onThread });
  runtime.rpc = rpc;
  const timers: { ticker: NodeJS.Timeout | null } = { ticker: null };
  const takeOver = (): Promise<void> => lead(election, db, fence, runtime, tenancy, clock, log).then((term) => {
    role.term = term;
    role.leading = true;
    timers.ticker = setInterval(() => runtime.tick(), cfg.monitorPeriodMs);
  });
  // The lone CP leads before it listens: no caller ever meets it standing by.
  const solo = election instanceof SoloElection;
  if (solo) {
    core.peersNotYetReachable();
    await takeOver();
  }
  const ports = { api: cfg.apiPort, rpc: await rpc.listen(cfg.host, cfg.rpcPort, links.tls) };
  // It loaded its records before it listened: restored workers' grace starts now that they can connect.
  if (solo) runtime.core.peersReachable(clock.nowMs());
  const cluster = async (view: ClusterViewOptions) => ({ ...clusterView(core, cfg, ports, clock.nowMs(), role.id, view), controlPlanes: await election.members() });
  const backend = withRole(apiBackend(runtime, clock, cluster, metrics.registry), role, election);
  let api: ApiServer;
  try {
    api = await startApiServer({ host: cfg.host, port: cfg.apiPort, fd: cfg.apiFd, bodyBytesMax: apiDefaults.bodyBytesMax, backend, tenancy, log, tls: links.tls, leaderCaPem: links.caPem });
  } catch (err) {
    await rpc.close();
    metrics.close();
    throw err;
  }
  ports.api = api.port;
  const leanStats = api.lean;
  registerLeanHttpGauge(metrics.registry, 'dirigent_cp_api_lean_http',
    "The management API's lean HTTP/1.1 path: requests it served, and connections it handed to Node's server by reason",
    () => leanStats);
  self.rpcAddress = `${advertised(cfg)}:${ports.rpc}`;
  self.apiAddress = `${advertised(cfg)}:${ports.api}`;
  log.info('control_plane.started', { id: self.id, api: self.apiAddress, rpc: self.rpcAddress, rpcOn: onThread ? 'thread' : 'loop', placement: cfg.placement, seed, store: cfg.store || 'sqlite' });
  election.onLost((reason) => deposed(role, rpc, log, reason));
  if (!solo) takeOver().catch((err: unknown) => deposed(role, rpc, log, `taking over failed: ${String(err)}`));

  return {
    apiPort: ports.api,
    rpcPort: ports.rpc,
    core,
    async close() {
      if (timers.ticker) clearInterval(timers.ticker);
      runtime.close();
      await api.close();
      await rpc.close();
      await election.close();
      await db.close();
      // Group commit at work: commits against writes over the CP's life (BENCHMARKS.md, issue 12).
      if (db instanceof SqliteStore) log.info('store.closed', db.stats());
      metrics.close();
    },
  };
}

/** The files the links need, read before anything listens: TLS material and the cluster token. */
function linkFiles(cfg: ControlPlaneConfig, log: Logger): { tls: ReturnType<typeof serverTlsOf>; caPem: Buffer | null; clusterTokenSha256Hex: string } {
  const tls = serverTlsOf('control plane', cfg.tlsCertFile, cfg.tlsKeyFile);
  const caPem = caOf(cfg.tlsCaFile);
  const tokenFile = cfg.clusterTokenFile !== '' ? cfg.clusterTokenFile : join(cfg.stateDir, 'cluster.token');
  const { sha256Hex, created } = clusterTokenDigestOf(tokenFile);
  if (created) log.info('cluster_token.created', { file: tokenFile });
  return { tls, caPem, clusterTokenSha256Hex: sha256Hex };
}

interface Role {
  leading: boolean;
  term: number;
  id: string;
}

/** Lost the lease: stop acting at once (no stream stays open) and exit for the supervisor. */
function deposed(role: Role, rpc: RpcServer, log: Logger, reason: string): void {
  role.leading = false;
  void rpc.close(); // streams served on a thread end with the process, below
  log.error('control_plane.deposed', { id: role.id, term: role.term, reason, exitCode: deposedExitCode });
  process.exit(deposedExitCode);
}

/** Health and leader forwarding on top of the leader's API backend. */
function withRole(backend: ApiBackend, role: Role, election: Election): ApiBackend {
  return {
    ...backend,
    health: () => ({ role: role.leading ? 'leader' : 'standby', term: role.term, pid: process.pid, id: role.id }),
    leaderApi: () => (role.leading ? null : (otherLeader(election, role)?.apiAddress ?? '')),
  };
}

/**
 * The leader to send callers to while this CP does not lead. Never this CP itself: while it is
 * still taking over (loading records), forwarding to itself would loop; callers retry instead.
 */
function otherLeader(election: Election, role: Role): CpMember | null {
  const leader = election.leader();
  return leader && leader.id !== role.id ? leader : null;
}

function newCore(cfg: ControlPlaneConfig, seed: number, log: Logger): ControlPlaneCore {
  return new ControlPlaneCore(
    {
      placement: toPlacementPolicy(cfg.placement),
      heartbeatTimeoutMs: cfg.heartbeatTimeoutMs,
      creationTimeoutMs: cfg.creationTimeoutMs,
      drainTimeoutMs: cfg.drainTimeoutMs,
      creatingPerFunctionMax: cfg.creatingPerFunctionMax,
      retryBackoffMs: cfg.retryBackoffMs,
      failFastAfter: failFastAfterFailures,
      peerForgetAfterMs: cfg.peerForgetAfterMs,
      unschedulableFailAfterMs: cfg.unschedulableFailAfterMs,
      queueFloor: cfg.queueFloor === 'on',
      registryQueuePerNameMax: cfg.registryQueuePerNameMax,
    },
    seededRng(seed),
    log,
  );
}

function cpId(cfg: ControlPlaneConfig): string {
  return cfg.id !== '' ? cfg.id : `cp-${advertised(cfg)}-${cfg.rpcPort}`;
}

/** The host other processes dial: a wildcard listen address is not dialable. */
function advertised(cfg: ControlPlaneConfig): string {
  if (cfg.advertiseHost !== '') return cfg.advertiseHost;
  return cfg.host === '0.0.0.0' || cfg.host === '::' ? hostname() : cfg.host;
}

/** Waits for leadership, then takes over: term, fenced store, records from the store. */
async function lead(election: Election, db: Store, fence: (term: number) => void, runtime: CpRuntime, tenancy: Tenancy, clock: Clock, log: Logger): Promise<number> {
  const term = await election.campaign();
  runtime.core.setTerm(term);
  fence(term);
  const loaded = await db.load();
  const idle = new Map(loaded.idleHistories.map((h) => [h.function, h]));
  for (const record of loaded.functions) runtime.handle({ kind: 'function_upserted', record, reconstructed: true, idleHistory: idle.get(record.spec.name) });
  runtime.core.loadPeers(loaded.workers, loaded.dataPlanes, clock.nowMs());
  tenancy.load(loaded.tokens, loaded.namespaces);
  log.info('control_plane.restored', { term, functions: loaded.functions.length, workers: loaded.workers.length, dataPlanes: loaded.dataPlanes.length,
    tokens: loaded.tokens.length, namespaces: loaded.namespaces.length, idleHistories: loaded.idleHistories.length });
  if (loaded.idleHistoriesDropped > 0) {
    log.warn('store.idle_histories_dropped', { count: loaded.idleHistoriesDropped, reason: 'malformed (counts out of range, or bins that are not one per minute of the window)' });
  }
  return term;
}

/** Auth off is for one machine only: anyone who reaches an open API could deploy code. */
function checkAuthListen(cfg: ControlPlaneConfig): void {
  if (cfg.auth === 'none' && !isLoopbackHost(cfg.host)) {
    throw new ConfigError(`control plane: auth none is allowed only on a loopback host (127.0.0.1, ::1, localhost), but host is ${cfg.host}; drop --auth none or listen on --host 127.0.0.1`);
  }
}

/** How often and how long to retry reading an admin token file another CP is writing right now. */
const tokenFileTries = 20;
const tokenFileRetryMs = 50;

/** The bootstrap admin token: `adminTokenFile`, else <stateDir>/admin.token, created when missing. */
async function bootstrapToken(cfg: ControlPlaneConfig, log: Logger): Promise<string> {
  const path = cfg.adminTokenFile !== '' ? cfg.adminTokenFile : join(cfg.stateDir, 'admin.token');
  for (let attempt = 1; ; attempt += 1) {
    try {
      const { token, created } = readOrCreateTokenFile(path);
      if (created) log.info('admin_token.created', { path });
      return token;
    } catch (err) {
      // CPs sharing a state dir may race to create it: the loser reads what the winner wrote.
      if (attempt >= tokenFileTries) throw new ConfigError(`control plane: admin token file ${path}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, tokenFileRetryMs));
    }
  }
}

function newTenancy(cfg: ControlPlaneConfig, adminToken: string | null, db: Store, runtime: CpRuntime, clock: Clock): Tenancy {
  const defaults = { functions: cfg.namespaceFunctionsMax, sandboxes: cfg.namespaceSandboxesMax, cpuMillis: cfg.namespaceCpuMillisMax, memoryMiB: cfg.namespaceMemoryMiBMax };
  return new Tenancy(cfg.auth === 'none' ? 'none' : 'token', adminToken, defaults, {
    store: db,
    setInvokeTokens: (tokens) => runtime.setInvokeTokens(tokens),
    loadInvokeTokens: (tokens) => runtime.loadInvokeTokens(tokens),
    setNamespaceQuotas: (records, d) => runtime.setNamespaceQuotas(records, d),
    namespaceUsage: (ns) => runtime.namespaceUsage(ns),
    wallMs: () => clock.wallMs(),
  });
}

/**
 * The store and the election its URL implies: SQLite and solo, or etcd for both. `fence` makes
 * the store's writes conditional on this leader's term (etcd); etcd's client is loaded only for an
 * etcd store, so a SQLite CP (re)starts without it.
 */
async function openBackends(cfg: ControlPlaneConfig, self: CpMember, clock: Clock, log: Logger, store?: Store): Promise<{ db: Store; election: Election; fence: (term: number) => void }> {
  const endpoints = parseEtcdUrl(cfg.store);
  if (endpoints) {
    const [{ Etcd3 }, { EtcdElection, leaderKey }, { EtcdStore, etcdClientOptions }] = await Promise.all([
      import('etcd3'), import('./shell/election-etcd.js'), import('./store/etcd-store.js'),
    ]);
    const client = new Etcd3(etcdClientOptions(endpoints));
    const ns = client.namespace(cfg.storePrefix);
    const election = new EtcdElection(ns, { self, leaseTtlS: cfg.leaseTtlS, pollMs: cfg.electionPollMs }, clock, log);
    const db = store ?? new EtcdStore(ns, client);
    return { db, election, fence: (term) => { if (db instanceof EtcdStore) db.fence(leaderKey, String(term)); } };
  }
  const path = cfg.store.startsWith('sqlite:') ? cfg.store.slice('sqlite:'.length) : join(cfg.stateDir, 'control-plane.db');
  const election = new SoloElection(self, () => nextSqliteTerm(path));
  return { db: store ?? new SqliteStore(path), election, fence: () => {} };
}
/** The management API's view of the CP: registry operations go through the core, in order. */
function apiBackend(runtime: CpRuntime, clock: Clock, cluster: (view: ClusterViewOptions) => unknown, registry: ReturnType<typeof createMetrics>['registry']): ApiBackend {
  const core = runtime.core;
  const item = (name: string) => {
    const r = core.record(name);
    return r ? { function: r.spec, status: wallTimes(core.status(name), clock) } : null;
  };
  return {
    async createFunction(spec: FunctionSpec) {
      const result = orThrow(await runtime.submit({ kind: 'api_create', spec }));
      return result === 'exists' ? 'exists' : 'created';
    },
    async updateFunction(name, patch) {
      // The patch runs inside the core when the operation's turn comes; it must not throw there.
      let thrown: unknown = null;
      const safe = (current: FunctionSpec): FunctionSpec => {
        try {
          return patch(current);
        } catch (err) {
          thrown = err;
          return current;
        }
      };
      const result = orThrow(await runtime.submit({ kind: 'api_update', name, patch: safe }));
      if (thrown) throw thrown;
      return result !== 'not_found';
    },
    async deleteFunction(name) {
      return orThrow(await runtime.submit({ kind: 'api_delete', name })) !== 'not_found';
    },
    getFunction: item,
    functionKeys: () => core.records().map((r) => r.spec.name),
    listFunctions() {
      return core.records().map((r) => item(r.spec.name)!);
    },
    cluster,
    dataPlaneAddresses() {
      return [...core.dataPlanes.values()].filter((d) => d.connected).map((d) => d.proxyAddress);
    },
    async metrics(selection) {
      return { contentType: registry.contentType, body: await metricsText(registry, selection) };
    },
  };
}

/** The core counts in monotonic time; people read epoch milliseconds. */
function wallTimes(status: FunctionStatus | null, clock: Clock): FunctionStatus | null {
  if (!status || status.unschedulableSinceMs === undefined) return status;
  const sinceWallMs = Math.round(clock.wallMs() - (clock.nowMs() - status.unschedulableSinceMs));
  return { ...status, unschedulableSinceMs: sinceWallMs };
}

function orThrow(result: ApiResult): ApiResult {
  if (result === 'queue_full') throw new HttpError(503, 'queue_full', 'too many operations queued on this function; retry');
  if (result === 'store_failed') throw new HttpError(503, 'store_failure', 'the store did not accept the change; retry');
  return result;
}

const placementPolicies = ['kubernetes', 'random', 'round-robin'] as const;

function toPlacementPolicy(name: string): (typeof placementPolicies)[number] {
  const found = placementPolicies.find((p) => p === name);
  if (!found) throw new ConfigError(`control plane: placement must be one of ${placementPolicies.join(', ')}, got ${name}`);
  return found;
}

/**
 * @module cli/components
 * `dirigent control-plane | data-plane | worker`: each runs one component in the foreground.
 * Every flag is also read from the environment (`DIRIGENT_<FLAG_IN_UPPER_SNAKE>`) and from a
 * JSON config file (`--config`); precedence: flag > env > file > defaults (config/defaults.ts).
 */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import {
  compileControlPlane,
  compileDataPlane,
  compileWorker,
  ConfigError,
  controlPlaneKnobs,
  dataPlaneKnobs,
  knobHelp,
  workerKnobs,
  type Knob,
} from '../config/compile.js';
import { autoRpcThreadCoresMin, controlPlaneDefaults, dataPlaneDefaults, workerDefaults } from '../config/defaults.js';
import { exitLoudlyOnUncaught } from '../shared/fatal.js';
import { watchParent } from '../shared/parent-watch.js';
import { pinoLogger } from '../shared/pino-logger.js';
import { CliError, ExitCode } from './context.js';

type Raw = Record<string, unknown>;

/** Flag name (kebab) -> config key (camel, as in config/defaults.ts), help. */
interface FlagSpec {
  flag: string;
  key: string;
  help: string;
}

const common: FlagSpec[] = [
  { flag: 'config', key: 'config', help: 'JSON file with options (keys as in config/defaults.ts; flags and env win)' },
  { flag: 'log-level', key: 'logLevel', help: 'log level (default info)' },
  { flag: 'host', key: 'host', help: 'address to listen on (default 127.0.0.1)' },
];

const cpFlags: FlagSpec[] = [
  { flag: 'rpc-port', key: 'rpcPort', help: `internal gRPC port (default ${controlPlaneDefaults.rpcPort})` },
  { flag: 'api-port', key: 'apiPort', help: `management API port (default ${controlPlaneDefaults.apiPort})` },
  { flag: 'api-fd', key: 'apiFd', help: 'listen for the API on this inherited socket, already bound, instead of binding --api-port (`up` passes one and keeps it across restarts) (default -1: none)' },
  { flag: 'state-dir', key: 'stateDir', help: `directory for the SQLite store (default ${controlPlaneDefaults.stateDir})` },
  { flag: 'placement', key: 'placement', help: `placement policy (default ${controlPlaneDefaults.placement})` },
  { flag: 'heartbeat-timeout-ms', key: 'heartbeatTimeoutMs', help: `worker silence before it is declared lost (default ${controlPlaneDefaults.heartbeatTimeoutMs})` },
  { flag: 'rpc-ping-burst-max', key: 'rpcPingBurstMax', help: `HTTP/2 pings a gRPC connection may send at once; past the budget it ends with GOAWAY too_many_pings (default ${controlPlaneDefaults.rpcPingBurstMax})` },
  { flag: 'rpc-ping-refill-ms', key: 'rpcPingRefillMs', help: `one more ping allowed per this long (default ${controlPlaneDefaults.rpcPingRefillMs})` },
  { flag: 'rpc-thread', key: 'rpcThread', help: `where worker and DP streams are served: thread (sockets, TLS, HTTP/2 and gRPC framing on a worker thread), loop (on the decision loop), auto (thread from ${autoRpcThreadCoresMin} cores up; default ${controlPlaneDefaults.rpcThread})` },
  { flag: 'monitor-period-ms', key: 'monitorPeriodMs', help: `autoscaler/health tick (default ${controlPlaneDefaults.monitorPeriodMs})` },
  { flag: 'drain-timeout-ms', key: 'drainTimeoutMs', help: `longest wait for in-flight requests before deletion (default ${controlPlaneDefaults.drainTimeoutMs})` },
  { flag: 'seed', key: 'seed', help: 'seed for placement tie-breaks (default: random)' },
  { flag: 'peer-forget-after-ms', key: 'peerForgetAfterMs', help: `forget workers and data planes gone this long (default ${controlPlaneDefaults.peerForgetAfterMs})` },
  { flag: 'store', key: 'store', help: 'sqlite:<path> (default: control-plane.db under --state-dir) or etcd://host:port[,host:port...] (HA: replicas elect a leader)' },
  { flag: 'store-prefix', key: 'storePrefix', help: `etcd key prefix (default ${controlPlaneDefaults.storePrefix})` },
  { flag: 'id', key: 'id', help: 'this CP replica\'s identity (default cp-<host>-<rpc port>)' },
  { flag: 'lease-ttl-s', key: 'leaseTtlS', help: `etcd leader lease; a leader silent this long is replaced (default ${controlPlaneDefaults.leaseTtlS})` },
  { flag: 'election-poll-ms', key: 'electionPollMs', help: `how often a standby checks for a vacant leadership (default ${controlPlaneDefaults.electionPollMs})` },
  { flag: 'advertise-host', key: 'advertiseHost', help: 'host other processes dial to reach this CP (default --host)' },
  { flag: 'queue-floor', key: 'queueFloor', help: `on: never fewer sandboxes than requests in flight or queued (a queue behind busy sandboxes scales at once); off: plain KPA, as the reference (default ${controlPlaneDefaults.queueFloor})` },
  { flag: 'unschedulable-fail-after-ms', key: 'unschedulableFailAfterMs', help: `fail queued requests of a function no worker can run after this long (default ${controlPlaneDefaults.unschedulableFailAfterMs})` },
  { flag: 'auth', key: 'auth', help: 'token: every management call needs a bearer token (default) | none: no auth, loopback addresses only' },
  { flag: 'admin-token-file', key: 'adminTokenFile', help: 'bootstrap admin token, created when missing (default <state-dir>/admin.token)' },
  { flag: 'cluster-token-file', key: 'clusterTokenFile', help: 'token workers and data planes must join with, created when missing (default <state-dir>/cluster.token)' },
  { flag: 'tls-cert-file', key: 'tlsCertFile', help: 'PEM certificate (chain) for the API and the gRPC port: serve TLS (see dirigent certs create)' },
  { flag: 'tls-key-file', key: 'tlsKeyFile', help: 'PEM private key of --tls-cert-file' },
  { flag: 'tls-ca-file', key: 'tlsCaFile', help: 'CA certificate the other control planes chain to: a standby forwards to the leader over HTTPS' },
  { flag: 'namespace-functions-max', key: 'namespaceFunctionsMax', help: `default quota: functions per namespace, 0 = none (default ${controlPlaneDefaults.namespaceFunctionsMax})` },
  { flag: 'namespace-sandboxes-max', key: 'namespaceSandboxesMax', help: `default quota: live sandboxes per namespace, 0 = none (default ${controlPlaneDefaults.namespaceSandboxesMax})` },
  { flag: 'namespace-cpu-millis-max', key: 'namespaceCpuMillisMax', help: 'default quota: CPU of live sandboxes per namespace, 0 = none (default 0)' },
  { flag: 'namespace-memory-mib-max', key: 'namespaceMemoryMiBMax', help: 'default quota: memory of live sandboxes per namespace, 0 = none (default 0)' },
];

const dpFlags: FlagSpec[] = [
  { flag: 'id', key: 'id', help: 'data-plane identity (default dp-<host>-<port>)' },
  { flag: 'proxy-port', key: 'proxyPort', help: `invocation port (default ${dataPlaneDefaults.proxyPort})` },
  { flag: 'proxy-fd', key: 'proxyFd', help: 'listen for invocations on this inherited socket, already bound, instead of binding --proxy-port (`up` passes one and keeps it across restarts) (default -1: none)' },
  { flag: 'internal-port', key: 'internalPort', help: `health and metrics port (default ${dataPlaneDefaults.internalPort})` },
  { flag: 'internal-host', key: 'internalHost', help: `address of the health and metrics port, plain HTTP without auth (default ${dataPlaneDefaults.internalHost}, also when --host is another)` },
  { flag: 'control-plane', key: 'controlPlane', help: `CP gRPC address, or several comma-separated (replicas: any one leads to the leader) (default ${dataPlaneDefaults.controlPlane})` },
  { flag: 'load-balancing', key: 'loadBalancing', help: `load-balancing policy (default ${dataPlaneDefaults.loadBalancing})` },
  { flag: 'queue-depth-max', key: 'queueDepthMax', help: `requests queued per function before 503 (default ${dataPlaneDefaults.queueDepthMax})` },
  { flag: 'queue-wait-ms-max', key: 'queueWaitMsMax', help: `longest wait for a sandbox before 504 (default ${dataPlaneDefaults.queueWaitMsMax})` },
  { flag: 'request-body-bytes-max', key: 'requestBodyBytesMax', help: `largest request body before 413 (default ${dataPlaneDefaults.requestBodyBytesMax})` },
  { flag: 'demand-report-period-ms', key: 'demandReportPeriodMs', help: `demand report period (default ${dataPlaneDefaults.demandReportPeriodMs})` },
  { flag: 'upstream-retries-max', key: 'upstreamRetriesMax', help: `a request whose sandbox refuses the connection (or resets it before answering a bodiless idempotent request) is tried again at most this many more times (default ${dataPlaneDefaults.upstreamRetriesMax})` },
  { flag: 'proxy-threads', key: 'proxyThreads', help: 'processes serving the invocation port: 1 = this one only; N adds N-1 proxy processes sharing its socket, slots and queues; 0 = the core count from 4 cores up, else 1 (default 0)' },
  { flag: 'http-parser', key: 'httpParser', help: 'plain HTTP/1.1 on the invocation port: lean = the proxy reads the simple requests of the hot path itself and hands others to Node\'s server; node = Node\'s server reads every request (default lean)' },
  { flag: 'urgent-report-ms-min', key: 'urgentReportMsMin', help: `a queue behind busy sandboxes is reported at once, at most this often per function (default ${dataPlaneDefaults.urgentReportMsMin})` },
  { flag: 'invocation-headers-timeout-ms', key: 'invocationHeadersTimeoutMs', help: `time for a request head to arrive (default ${dataPlaneDefaults.invocationHeadersTimeoutMs})` },
  { flag: 'invocation-request-timeout-ms', key: 'invocationRequestTimeoutMs', help: `time for a whole request to arrive (default ${dataPlaneDefaults.invocationRequestTimeoutMs})` },
  { flag: 'invocation-keep-alive-timeout-ms', key: 'invocationKeepAliveTimeoutMs', help: `idle keep-alive connection limit (default ${dataPlaneDefaults.invocationKeepAliveTimeoutMs})` },
  { flag: 'invocation-connections-max', key: 'invocationConnectionsMax', help: `open client connections (default ${dataPlaneDefaults.invocationConnectionsMax})` },
  { flag: 'invocation-ping-burst-max', key: 'invocationPingBurstMax', help: `HTTP/2 pings a client may send at once; past the budget its connection ends with GOAWAY too_many_pings (default ${dataPlaneDefaults.invocationPingBurstMax})` },
  { flag: 'invocation-ping-refill-ms', key: 'invocationPingRefillMs', help: `one more ping allowed per this long (default ${dataPlaneDefaults.invocationPingRefillMs})` },
  { flag: 'invocation-sync-hold-ms-max', key: 'invocationSyncHoldMsMax', help: `connections arriving before the first routing snapshot wait for it, unread, until this long after start; then they get 503 not_ready (default ${dataPlaneDefaults.invocationSyncHoldMsMax}; 0 = no wait)` },
  { flag: 'auth', key: 'auth', help: 'token: functions with auth "token" need a bearer token (default) | none: serve every function to anyone, loopback addresses only' },
  { flag: 'cluster-token-file', key: 'clusterTokenFile', help: `token to join the control plane with (default ${dataPlaneDefaults.clusterTokenFile})` },
  { flag: 'tls-cert-file', key: 'tlsCertFile', help: 'PEM certificate (chain) for the invocation port: serve HTTPS' },
  { flag: 'tls-key-file', key: 'tlsKeyFile', help: 'PEM private key of --tls-cert-file' },
  { flag: 'tls-ca-file', key: 'tlsCaFile', help: 'CA certificate of the control plane: reach it over TLS' },
  { flag: 'state-dir', key: 'stateDir', help: 'state directory of this DP (async store) (default .dirigent/dp-<proxy port>)' },
  { flag: 'async-store', key: 'asyncStore', help: "async invocation store: '' = SQLite in the state dir, or redis://host:port" },
  { flag: 'async-body-bytes-max', key: 'asyncBodyBytesMax', help: `largest async request body before 413 (default ${dataPlaneDefaults.asyncBodyBytesMax})` },
  { flag: 'async-queue-per-function-max', key: 'asyncQueuePerFunctionMax', help: `unfinished async invocations per function before 429 (default ${dataPlaneDefaults.asyncQueuePerFunctionMax})` },
  { flag: 'async-queue-total-max', key: 'asyncQueueTotalMax', help: `unfinished async invocations in total before 429 (default ${dataPlaneDefaults.asyncQueueTotalMax})` },
  { flag: 'async-concurrency-share', key: 'asyncConcurrencyShare', help: `fraction of a function's slots async executions may hold (default ${dataPlaneDefaults.asyncConcurrencyShare})` },
  { flag: 'async-attempts-max', key: 'asyncAttemptsMax', help: `attempts per async invocation (default ${dataPlaneDefaults.asyncAttemptsMax})` },
  { flag: 'async-event-age-ms-max', key: 'asyncEventAgeMsMax', help: `oldest async invocation still run (default ${dataPlaneDefaults.asyncEventAgeMsMax})` },
  { flag: 'async-retention-ms', key: 'asyncRetentionMs', help: `how long results and dead letters are kept (default ${dataPlaneDefaults.asyncRetentionMs})` },
  { flag: 'async-gc-period-ms', key: 'asyncGcPeriodMs', help: `how often expired results and dead letters are dropped (default ${dataPlaneDefaults.asyncGcPeriodMs})` },
  { flag: 'async-claim-lease-ms', key: 'asyncClaimLeaseMs', help: `lease of a claimed async invocation (default ${dataPlaneDefaults.asyncClaimLeaseMs})` },
  { flag: 'async-result-bytes-max', key: 'asyncResultBytesMax', help: `largest async result kept (default ${dataPlaneDefaults.asyncResultBytesMax})` },
  { flag: 'async-callback-allow-private', key: 'asyncCallbackAllowPrivate', help: 'callbacks may go to loopback/private addresses (default false)' },
  { flag: 'async-mode', key: 'asyncMode', help: "off | all: every request on the proxy port is async (reference compatibility) (default off)" },
  { flag: 'async-results-port', key: 'asyncResultsPort', help: `reference-compatible results port (default ${dataPlaneDefaults.asyncResultsPort})` },
];

const workerFlags: FlagSpec[] = [
  { flag: 'id', key: 'id', help: 'worker identity; keep it stable across restarts (default worker-<hostname>-<port>)' },
  { flag: 'port', key: 'port', help: `health and metrics port (default ${workerDefaults.port})` },
  { flag: 'internal-host', key: 'internalHost', help: `address of the health and metrics port, plain HTTP without auth (default ${workerDefaults.internalHost}, also when --host is another)` },
  { flag: 'control-plane', key: 'controlPlane', help: `CP gRPC address, or several comma-separated (replicas: any one leads to the leader) (default ${workerDefaults.controlPlane})` },
  { flag: 'runtime', key: 'runtime', help: `sandbox runtimes, comma-separated: process, oci, containerd; or emulated (default ${workerDefaults.runtime})` },
  { flag: 'isolation', key: 'isolation', help: `process sandboxes: bwrap (namespaces, own uid, cgroup limits, packet filter; needs bubblewrap and nftables, root) | none (unisolated: trusted code only) | auto (bwrap when usable, else none) (default ${workerDefaults.isolation})` },
  { flag: 'sandbox-uid-range', key: 'sandboxUidRange', help: `host uids for sandboxes, first,last; each worker on a host needs its own (default ${workerDefaults.sandboxUidRange.join(',')})` },
  { flag: 'sandbox-port-range', key: 'sandboxPortRange', help: `host ports for sandboxes, first,last (default ${workerDefaults.sandboxPortRange.join(',')})` },
  { flag: 'sandbox-pids-max', key: 'sandboxPidsMax', help: `processes and threads one sandbox may hold (default ${workerDefaults.sandboxPidsMax})` },
  { flag: 'sandbox-startup-cpu-millis', key: 'sandboxStartupCpuMillis', help: `CPU quota of a process sandbox until it is ready, when its own is smaller; 0 = off (default ${workerDefaults.sandboxStartupCpuMillis})` },
  { flag: 'sandbox-tmp-mib', key: 'sandboxTmpMiB', help: `size of each sandbox's private /tmp (default ${workerDefaults.sandboxTmpMiB})` },
  { flag: 'egress-deny-cidrs', key: 'egressDenyCidrs', help: `destinations refused even to functions with egress, besides this host (default ${workerDefaults.egressDenyCidrs})` },
  { flag: 'oci-runtime-binary', key: 'ociRuntimeBinary', help: `OCI runtime the oci runtime drives (default ${workerDefaults.ociRuntimeBinary})` },
  { flag: 'insecure-registries', key: 'insecureRegistries', help: 'registries (host:port, comma-separated) reached over plain HTTP; loopback ones always are' },
  { flag: 'containerd-socket', key: 'containerdSocket', help: 'containerd socket for the containerd runtime (default: start a private containerd)' },
  { flag: 'count', key: 'count', help: 'emulated workers in this process, each with its own stream (default 1)' },
  { flag: 'state-dir', key: 'stateDir', help: 'directory for sandbox logs and pid files (default .dirigent)' },
  { flag: 'cpu-millis', key: 'cpuMillis', help: 'advertised CPU capacity (default: cores x 1000)' },
  { flag: 'memory-mib', key: 'memoryMiB', help: 'advertised memory capacity (default: total memory)' },
  { flag: 'heartbeat-period-ms', key: 'heartbeatPeriodMs', help: `heartbeat period (default ${workerDefaults.heartbeatPeriodMs})` },
  { flag: 'emulated-create-ms', key: 'emulatedCreateMs', help: `emulated sandbox creation time (default ${workerDefaults.emulatedCreateMs})` },
  { flag: 'readiness-timeout-ms', key: 'readinessTimeoutMs', help: `process sandbox readiness limit (default ${workerDefaults.readinessTimeoutMs})` },
  { flag: 'replay-events-max', key: 'replayEventsMax', help: `sandbox events kept while the CP stream is down (default ${workerDefaults.replayEventsMax})` },
  { flag: 'cluster-token-file', key: 'clusterTokenFile', help: 'token to join the control plane with (default <state-dir>/cluster.token)' },
  { flag: 'tls-ca-file', key: 'tlsCaFile', help: 'CA certificate of the control plane: reach it over TLS' },
];

export function registerComponentCommands(program: Command): void {
  addComponent(program, 'control-plane', 'run the control plane (registry, autoscaler, placer, health monitor)', cpFlags, controlPlaneKnobs, async (raw) => {
    const { startControlPlane } = await import('../control-plane/main.js');
    const cfg = compileControlPlane(raw);
    const log = pinoLogger('control-plane', cfg.logLevel);
    exitLoudlyOnUncaught(log);
    const cp = await startControlPlane(cfg, log);
    return () => cp.close();
  });
  addComponent(program, 'data-plane', 'run a data plane (invocation proxy with queues and load balancing)', dpFlags, dataPlaneKnobs, async (raw) => {
    const { startDataPlane } = await import('../data-plane/main.js');
    const cfg = compileDataPlane(raw);
    const log = pinoLogger('data-plane', cfg.logLevel);
    exitLoudlyOnUncaught(log);
    const dp = await startDataPlane(cfg, log);
    return () => dp.close();
  });
  addComponent(program, 'worker', 'run a worker daemon (creates sandboxes through a runtime)', workerFlags, workerKnobs, async (raw) => {
    const { startWorker } = await import('../worker/main.js');
    const cfg = compileWorker(raw);
    const log = pinoLogger('worker', cfg.logLevel);
    exitLoudlyOnUncaught(log);
    const w = await startWorker(cfg, log);
    return () => w.close();
  });
}

function addComponent(
  program: Command,
  name: string,
  description: string,
  flags: FlagSpec[],
  knobs: Record<string, Knob>,
  run: (raw: Raw) => Promise<() => Promise<void>>,
): void {
  const cmd = program.command(name).description(description);
  const all = [...common, ...flags];
  for (const f of all) cmd.addOption(flagOption(f, knobs));
  cmd.action(async (opts: Record<string, string | undefined>) => {
    const close = await asUsageError(name.replace('-', ' '), () => run(gather(all, opts)));
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`${name}: ${signal}, stopping\n`);
      const force = setTimeout(() => process.exit(1), 10_000);
      force.unref();
      close().then(() => process.exit(0), (e) => {
        process.stderr.write(`${name}: stop failed: ${String(e)}\n`);
        process.exit(1);
      });
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    watchParent(() => stop('parent exited'));
  });
}

/** `--queue-depth-max <value>`, also read from DIRIGENT_QUEUE_DEPTH_MAX (commander: flag > env). */
function flagOption(f: FlagSpec, knobs: Record<string, Knob>): Option {
  const accepts = knobHelp(knobs, f.key);
  const help = accepts === '' ? f.help : `${f.help}; ${accepts}`;
  return new Option(`--${f.flag} <value>`, help).env(`DIRIGENT_${envName(f.flag)}`);
}

/** A bad config is the user's command line: one line and exit code 2, never a stack. */
async function asUsageError<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, ExitCode.usage);
    const listen = listenFailure(err);
    if (listen) throw new CliError(`${what}: ${listen}`, ExitCode.failed);
    throw err;
  }
}

/** A port that cannot be bound is the machine's state, not a bug: one line, exit 1. */
function listenFailure(err: unknown): string | null {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e === null || typeof e !== 'object' || e.syscall !== 'listen') return null;
  const reason = e.code === 'EADDRINUSE' ? 'address already in use' : e.code === 'EACCES' ? 'permission denied' : String(e.code);
  return `cannot listen on ${e.address ?? '?'}:${e.port ?? '?'}: ${reason}`;
}


/**
 * flag > env > config file > defaults. Commander already applied flag > env (no commander
 * defaults are set, so an absent option stays undefined and the compiled defaults apply).
 */
function gather(flags: FlagSpec[], opts: Record<string, string | undefined>): Raw {
  const raw: Raw = {};
  const file = opts['config'];
  if (file) Object.assign(raw, readConfigFile(file));
  for (const f of flags) {
    if (f.key === 'config') continue;
    const value = opts[camel(f.flag)];
    if (value !== undefined) raw[f.key] = value;
  }
  return raw;
}

function readConfigFile(path: string): Raw {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`--config ${path}: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`--config ${path}: must hold one JSON object of options`);
  }
  return parsed as Raw;
}

/** Commander's attribute name for a flag: `memory-mib` -> `memoryMib`. */
function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

function envName(flag: string): string {
  return flag.toUpperCase().replace(/-/g, '_');
}

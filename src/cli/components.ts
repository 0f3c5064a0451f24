/**
 * @module cli/components
 * `dirigent control-plane | data-plane | worker`: each runs one component in the foreground.
 * Every flag is also read from the environment (`DIRIGENT_<FLAG_IN_UPPER_SNAKE>`) and from a
 * JSON config file (`--config`); precedence: flag > env > file > defaults (config/defaults.ts).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { compile, portRange, type ControlPlaneConfig, type DataPlaneConfig, type WorkerConfig } from '../config/compile.js';
import { controlPlaneDefaults, dataPlaneDefaults, workerDefaults } from '../config/defaults.js';
import { pinoLogger, type LogLevel } from '../shared/pino-logger.js';

type Raw = Record<string, unknown>;

/** Flag name (kebab) → option key (camel), value parser. */
interface FlagSpec {
  flag: string;
  key: string;
  help: string;
}

const common: FlagSpec[] = [
  { flag: 'config', key: 'config', help: 'JSON file with options (keys as in config/defaults.ts)' },
  { flag: 'log-level', key: 'logLevel', help: 'debug | info | warn | error | silent (default info)' },
  { flag: 'host', key: 'host', help: 'address to listen on (default 127.0.0.1)' },
];

const cpFlags: FlagSpec[] = [
  { flag: 'rpc-port', key: 'rpcPort', help: `internal gRPC port (default ${controlPlaneDefaults.rpcPort})` },
  { flag: 'api-port', key: 'apiPort', help: `management API port (default ${controlPlaneDefaults.apiPort})` },
  { flag: 'state-dir', key: 'stateDir', help: `directory for the SQLite store (default ${controlPlaneDefaults.stateDir})` },
  { flag: 'placement', key: 'placement', help: 'kubernetes | random | round-robin (default kubernetes)' },
  { flag: 'heartbeat-timeout-ms', key: 'heartbeatTimeoutMs', help: `worker silence before it is declared lost (default ${controlPlaneDefaults.heartbeatTimeoutMs})` },
  { flag: 'monitor-period-ms', key: 'monitorPeriodMs', help: `autoscaler/health tick (default ${controlPlaneDefaults.monitorPeriodMs})` },
  { flag: 'drain-timeout-ms', key: 'drainTimeoutMs', help: `longest wait for in-flight requests before deletion (default ${controlPlaneDefaults.drainTimeoutMs})` },
  { flag: 'seed', key: 'seed', help: 'seed for placement tie-breaks (default: random)' },
];

const dpFlags: FlagSpec[] = [
  { flag: 'id', key: 'id', help: 'data-plane identity (default dp-<host>-<port>)' },
  { flag: 'proxy-port', key: 'proxyPort', help: `invocation port (default ${dataPlaneDefaults.proxyPort})` },
  { flag: 'internal-port', key: 'internalPort', help: `health and metrics port (default ${dataPlaneDefaults.internalPort})` },
  { flag: 'control-plane', key: 'controlPlane', help: `CP gRPC address (default ${dataPlaneDefaults.controlPlane})` },
  { flag: 'load-balancing', key: 'loadBalancing', help: 'least-loaded | knative | round-robin | random | consistent-hash' },
  { flag: 'queue-depth-max', key: 'queueDepthMax', help: `requests queued per function before 503 (default ${dataPlaneDefaults.queueDepthMax})` },
  { flag: 'queue-wait-ms-max', key: 'queueWaitMsMax', help: `longest wait for a sandbox before 504 (default ${dataPlaneDefaults.queueWaitMsMax})` },
  { flag: 'request-body-bytes-max', key: 'requestBodyBytesMax', help: `largest request body before 413 (default ${dataPlaneDefaults.requestBodyBytesMax})` },
  { flag: 'demand-report-period-ms', key: 'demandReportPeriodMs', help: `demand report period (default ${dataPlaneDefaults.demandReportPeriodMs})` },
];

const workerFlags: FlagSpec[] = [
  { flag: 'id', key: 'id', help: 'worker identity; keep it stable across restarts (default worker-<hostname>-<port>)' },
  { flag: 'port', key: 'port', help: `health port (default ${workerDefaults.port})` },
  { flag: 'control-plane', key: 'controlPlane', help: `CP gRPC address (default ${workerDefaults.controlPlane})` },
  { flag: 'runtime', key: 'runtime', help: 'process | emulated (default process)' },
  { flag: 'count', key: 'count', help: 'emulated workers in this process, each with its own stream (default 1)' },
  { flag: 'state-dir', key: 'stateDir', help: 'directory for sandbox logs and pid files (default .dirigent)' },
  { flag: 'cpu-millis', key: 'cpuMillis', help: 'advertised CPU capacity (default: cores x 1000)' },
  { flag: 'memory-mib', key: 'memoryMiB', help: 'advertised memory capacity (default: total memory)' },
  { flag: 'heartbeat-period-ms', key: 'heartbeatPeriodMs', help: `heartbeat period (default ${workerDefaults.heartbeatPeriodMs})` },
  { flag: 'emulated-create-ms', key: 'emulatedCreateMs', help: `emulated sandbox creation time (default ${workerDefaults.emulatedCreateMs})` },
  { flag: 'readiness-timeout-ms', key: 'readinessTimeoutMs', help: `process sandbox readiness limit (default ${workerDefaults.readinessTimeoutMs})` },
  { flag: 'replay-events-max', key: 'replayEventsMax', help: `sandbox events kept while the CP stream is down (default ${workerDefaults.replayEventsMax})` },
];

export function registerComponentCommands(program: Command): void {
  addComponent(program, 'control-plane', 'run the control plane (registry, autoscaler, placer, health monitor)', cpFlags, async (raw) => {
    const { startControlPlane } = await import('../control-plane/main.js');
    const cfg = compile('control plane', { ...controlPlaneDefaults, logLevel: 'info' }, raw, { rpcPort: portRange, apiPort: portRange }) as ControlPlaneConfig;
    const cp = await startControlPlane(cfg, pinoLogger('control-plane', cfg.logLevel as LogLevel));
    return () => cp.close();
  });
  addComponent(program, 'data-plane', 'run a data plane (invocation proxy with queues and load balancing)', dpFlags, async (raw) => {
    const { startDataPlane } = await import('../data-plane/main.js');
    const cfg = compile('data plane', { ...dataPlaneDefaults, id: '', logLevel: 'info' }, raw, { proxyPort: portRange, internalPort: portRange }) as DataPlaneConfig;
    const dp = await startDataPlane(cfg, pinoLogger('data-plane', cfg.logLevel as LogLevel));
    return () => dp.close();
  });
  addComponent(program, 'worker', 'run a worker daemon (creates sandboxes through a runtime)', workerFlags, async (raw) => {
    const { startWorker } = await import('../worker/main.js');
    const cfg = compile('worker', { ...workerDefaults, id: '', stateDir: '.dirigent', logLevel: 'info', count: 1 }, raw, { port: portRange }) as WorkerConfig;
    const w = await startWorker(cfg, pinoLogger('worker', cfg.logLevel as LogLevel));
    return () => w.close();
  });
}

function addComponent(
  program: Command,
  name: string,
  description: string,
  flags: FlagSpec[],
  run: (raw: Raw) => Promise<() => Promise<void>>,
): void {
  const cmd = program.command(name).description(description);
  for (const f of [...common, ...flags]) cmd.option(`--${f.flag} <value>`, `${f.help}; env DIRIGENT_${envName(f.flag)}`);
  cmd.action(async (opts: Record<string, string | undefined>) => {
    const raw = gather([...common, ...flags], opts);
    const close = await run(raw);
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

/** Set by `dirigent up` on its children: the PID whose exit means "stop now". */
export const parentPidEnv = 'DIRIGENT_PARENT_PID';
const parentCheckPeriodMs = 500;

/**
 * A component started by `dirigent up` stops when `up` is gone (its parent PID changes), so a
 * SIGKILLed `up` leaves nothing running.
 */
function watchParent(stop: () => void): void {
  const parent = Number(process.env[parentPidEnv] ?? 0);
  if (!parent) return;
  const timer = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(timer);
      stop();
    }
  }, parentCheckPeriodMs);
  timer.unref();
}

/** flag > env > config file. Keys not given stay undefined, so defaults apply. */
function gather(flags: FlagSpec[], opts: Record<string, string | undefined>): Raw {
  const raw: Raw = {};
  const file = opts['config'] ?? process.env['DIRIGENT_CONFIG'];
  if (file) Object.assign(raw, JSON.parse(readFileSync(file, 'utf8')) as Raw);
  for (const f of flags) {
    if (f.key === 'config') continue;
    const env = process.env[`DIRIGENT_${envName(f.flag)}`];
    if (env !== undefined) raw[f.key] = env;
    const camel = f.flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
    if (opts[camel] !== undefined) raw[f.key] = opts[camel];
  }
  return raw;
}

function envName(flag: string): string {
  return flag.toUpperCase().replace(/-/g, '_');
}

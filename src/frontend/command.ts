/**
 * @module frontend/command
 * `dirigent frontend`: runs HAProxy in front of the data planes (invocations hashed by Host) and
 * the control planes (API to the leader), and keeps its data-plane slots in step with the
 * leader's `GET /v1/cluster` through the runtime API, so joins and leaves drop no connection.
 * With `--tls-cert-file`/`--tls-key-file` both ports serve TLS; with `--tls-ca-file` HAProxy
 * reaches the DPs and CPs over TLS and verifies their chain (`up --tls` passes all three).
 */
import { existsSync, readFileSync } from 'node:fs';
import { watchParent } from '../shared/parent-watch.js';
import type { Command } from 'commander';
import { Agent, request, type Dispatcher } from 'undici';
import { pinoLogger, type LogLevel } from '../shared/pino-logger.js';
import type { Logger } from '../shared/logger.js';
import { CliError, ExitCode } from '../cli/context.js';
import { tlsAgent } from '../cli/http.js';
import { authHeader, cliAuth } from '../cli/token-source.js';
import { parseHostPort, planSlots, type HostPort, type SlotTable } from './config.js';
import { dataPlanesFromCluster, resolveHostPort, wantedDataPlanes } from './discovery.js';
import { haproxyFiles, startHaproxy, type Haproxy } from './haproxy.js';

export const frontendDefaults = Object.freeze({
  invocationPort: 8079,
  apiPort: 9092,
  bindHost: '127.0.0.1',
  controlPlanes: '127.0.0.1:9091',
  /** Data planes the front end can hold without a reload. */
  slots: 16,
  apiHealthPath: '/health/leader',
  discoverPeriodMs: 1_000,
});
const discoverTimeoutMs = 1_000;
/** Env var set by `dirigent up` on its children (see cli/components). */

interface FrontendOptions {
  stateDir: string;
  bindHost: string;
  invocationPort: string;
  apiPort: string;
  dataPlanes?: string;
  controlPlanes: string;
  slots: string;
  apiHealthPath: string;
  discoverPeriodMs: string;
  logLevel: string;
  tokenFile?: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tlsCaFile?: string;
}

export function registerFrontendCommand(program: Command): void {
  const d = frontendDefaults;
  program
    .command('frontend')
    .description('run HAProxy in front of the data planes (invocations) and control planes (API)')
    .option('--state-dir <dir>', 'directory for haproxy.cfg, its pid file and stats socket', '.dirigent')
    .option('--bind-host <host>', 'address the front end listens on', d.bindHost)
    .option('--invocation-port <port>', 'invocation port (hashed by Host onto data planes)', String(d.invocationPort))
    .option('--api-port <port>', 'management API port (routed to the leader CP)', String(d.apiPort))
    .option('--data-planes <list>', 'data-plane invocation addresses host:port, comma-separated (more are found through the CP)')
    .option('--control-planes <list>', 'control-plane API addresses host:port, comma-separated', d.controlPlanes)
    .option('--slots <n>', 'data planes the front end can hold', String(d.slots))
    .option('--api-health-path <path>', 'CP path that answers 200 only on the leader', d.apiHealthPath)
    .option('--discover-period-ms <ms>', 'how often to read the data planes from GET /v1/cluster (0: never)', String(d.discoverPeriodMs))
    .option('--token-file <path>', 'bearer token for GET /v1/cluster (default: DIRIGENT_TOKEN, else <state-dir>/admin.token)')
    .option('--tls-cert-file <path>', 'serve both ports over TLS with this certificate chain (PEM; with --tls-key-file)')
    .option('--tls-key-file <path>', 'the key of --tls-cert-file (PEM)')
    .option('--tls-ca-file <path>', 'reach data planes and control planes over TLS, trusting this CA (PEM)')
    .option('--log-level <level>', 'log level', 'info')
    .action(async (o: FrontendOptions) => {
      await runFrontend(o);
    });
}

function intFlag(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new CliError(`--${name} must be an integer in [${min}, ${max}], got ${text}`, ExitCode.usage);
  return n;
}

function listFlag(name: string, text: string | undefined): HostPort[] {
  if (!text) return [];
  return text.split(',').filter((s) => s.trim() !== '').map((s) => {
    const hp = parseHostPort(s);
    if (!hp) throw new CliError(`--${name}: ${s} is not host:port`, ExitCode.usage);
    return hp;
  });
}

async function runFrontend(o: FrontendOptions): Promise<void> {
  const log = pinoLogger('frontend', o.logLevel as LogLevel);
  const slots = intFlag('slots', o.slots, 1, 4096);
  const apiPort = intFlag('api-port', o.apiPort, 1, 65_535);
  const periodMs = intFlag('discover-period-ms', o.discoverPeriodMs, 0, 3_600_000);
  const staticDps: string[] = [];
  for (const hp of listFlag('data-planes', o.dataPlanes)) {
    const ip = await resolveHostPort(`${hp.host}:${hp.port}`);
    if (!ip) throw new CliError(`--data-planes: cannot resolve ${hp.host}`, ExitCode.usage);
    staticDps.push(ip);
  }
  if (staticDps.length > slots) throw new CliError(`--data-planes lists ${staticDps.length} > --slots ${slots}`, ExitCode.usage);
  if ((o.tlsCertFile === undefined) !== (o.tlsKeyFile === undefined)) {
    throw new CliError('--tls-cert-file and --tls-key-file go together: give both to serve TLS, or neither', ExitCode.usage);
  }
  const tlsFiles = { certFile: o.tlsCertFile ?? null, keyFile: o.tlsKeyFile ?? null, caFile: o.tlsCaFile ?? null };
  const haproxy = await asCliError(() => startHaproxy(haproxyFiles(o.stateDir), {
    bindHost: o.bindHost,
    invocationPort: intFlag('invocation-port', o.invocationPort, 1, 65_535),
    apiPort,
    dataPlanes: staticDps.map((k) => parseHostPort(k)!),
    controlPlanes: listFlag('control-planes', o.controlPlanes),
    slots,
    apiHealthPath: o.apiHealthPath,
  }, tlsFiles, log));
  const table: SlotTable = Array.from({ length: slots }, (_, i) => staticDps[i] ?? null);
  const apiHost = o.bindHost === '0.0.0.0' ? '127.0.0.1' : o.bindHost;
  // Discovery asks the leader through this front end's own API port, over TLS when it serves TLS.
  const scheme = tlsFiles.certFile === null ? 'http' : 'https';
  const agent = tlsFiles.caFile === null ? new Agent() : tlsAgent(readFileSync(tlsFiles.caFile));
  const timer = periodMs > 0
    ? startDiscovery(`${scheme}://${apiHost}:${apiPort}/v1/cluster?sandboxIds=false`, agent, periodMs, staticDps, table, haproxy, log, discoveryAuth(o.stateDir, o.tokenFile))
    : null;
  let stopping = false;
  const stop = (why: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('frontend.stopping', { why });
    if (timer) clearInterval(timer);
    haproxy.stop().then(() => process.exit(0), () => process.exit(1));
  };
  haproxy.proc.on('exit', (code, signal) => {
    if (stopping) return;
    log.error('haproxy.exited', { exitCode: code, signal });
    process.exit(1);
  });
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  watchParent(() => stop('parent exited'));
}

/** A missing binary or a refused config is one line for the user, not a stack. */
async function asCliError<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new CliError((err as Error).message, ExitCode.failed);
  }
}

/**
 * GET /v1/cluster needs a token: DIRIGENT_TOKEN, else the admin token `up` wrote to the state
 * directory; read at each round, so a token file a CP makes later is found too.
 */
function discoveryAuth(stateDir: string, tokenFile: string | undefined): () => Record<string, string> {
  const env = { ...process.env, DIRIGENT_STATE_DIR: process.env.DIRIGENT_STATE_DIR ?? stateDir };
  return () => {
    if (tokenFile === undefined || process.env.DIRIGENT_TOKEN) return authHeader(cliAuth(env, process.cwd()));
    return existsSync(tokenFile) ? authHeader({ token: readFileSync(tokenFile, 'utf8').trim(), source: tokenFile }) : {};
  };
}

function startDiscovery(url: string, agent: Dispatcher, periodMs: number, staticDps: string[], table: SlotTable, haproxy: Haproxy, log: Logger,
  auth: () => Record<string, string>): NodeJS.Timeout {
  let busy = false;
  let previous: string[] = [];
  return setInterval(() => {
    if (busy) return;
    busy = true;
    void discoverOnce(url, agent, auth(), staticDps, previous, table, haproxy, log)
      .then((wanted) => { previous = wanted; })
      .catch((err: unknown) => log.warn('frontend.discovery_failed', { error: String(err) }))
      .finally(() => { busy = false; });
  }, periodMs);
}

/** One round: read the leader's data planes, move the slot table, tell HAProxy. */
async function discoverOnce(url: string, agent: Dispatcher, headers: Record<string, string>, staticDps: string[], previous: string[], table: SlotTable, haproxy: Haproxy,
  log: Logger): Promise<string[]> {
  const r = await request(url, { dispatcher: agent, signal: AbortSignal.timeout(discoverTimeoutMs), headers });
  let listed: string[] | null = null;
  if (r.statusCode >= 200 && r.statusCode < 300) listed = dataPlanesFromCluster(await r.body.json());
  else await r.body.dump();
  const resolved: string[] = [];
  for (const key of listed ?? []) {
    const ip = await resolveHostPort(key);
    if (ip) resolved.push(ip);
  }
  const discovered = listed === null ? null : resolved;
  const wanted = wantedDataPlanes(staticDps, discovered, previous);
  const plan = planSlots(table, wanted);
  if (plan.commands.length > 0) {
    const answer = await haproxy.runtime(plan.commands);
    table.splice(0, table.length, ...plan.slots);
    log.info('frontend.data_planes_changed', { dataPlanes: wanted, commands: plan.commands.length, answer: answer.trim() });
  }
  if (plan.unplaced.length > 0) log.warn('frontend.slots_exhausted', { unplaced: plan.unplaced, slots: table.length });
  return wanted.filter((k) => !staticDps.includes(k));
}


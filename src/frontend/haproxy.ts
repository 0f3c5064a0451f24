/**
 * @module frontend/haproxy
 * The HAProxy process shell: writes the generated configuration under the state directory,
 * checks it, runs `haproxy -db` as a child (stopped by PID, also a stale one a SIGKILLed front end
 * left behind), and talks to it over the stats socket's runtime API.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import type { Logger } from '../shared/logger.js';
import { diesWithParent, findBinary } from './binary.js';
import { haproxyConfig, type FrontendLayout, type FrontendTls } from './config.js';

/** Bound on waiting for HAProxy's stats socket after spawning it. */
const startupTimeoutMs = 10_000;
const runtimeCommandTimeoutMs = 2_000;
/** Soft stop (finish requests in flight) before a hard kill. */
const stopGraceMs = 3_000;
const pollMs = 50;

export interface HaproxyFiles {
  dir: string;
  config: string;
  socket: string;
  pidFile: string;
  /** The certificate chain and key in one file, as HAProxy's `crt` takes them (mode 600). */
  tlsPem: string;
}

/** The front end's TLS flags: cert and key to serve TLS, a CA to reach the backends over TLS. */
export interface FrontendTlsFiles {
  certFile: string | null;
  keyFile: string | null;
  caFile: string | null;
}

export function haproxyFiles(stateDir: string): HaproxyFiles {
  // Absolute: HAProxy reads a relative socket path as host:port.
  const dir = join(resolve(stateDir), 'frontend');
  return { dir, config: join(dir, 'haproxy.cfg'), socket: join(dir, 'haproxy.sock'), pidFile: join(dir, 'haproxy.pid'), tlsPem: join(dir, 'tls.pem') };
}

export interface Haproxy {
  readonly proc: ChildProcess;
  /** Runs runtime API commands (joined with `;`) and returns HAProxy's answer. */
  runtime(commands: string[]): Promise<string>;
  stop(): Promise<void>;
}

export async function startHaproxy(
  files: HaproxyFiles,
  layout: Omit<FrontendLayout, 'statsSocketPath' | 'tls'>,
  tlsFiles: FrontendTlsFiles,
  log: Logger,
): Promise<Haproxy> {
  mkdirSync(files.dir, { recursive: true });
  // Bad TLS flags are named first, whether or not HAProxy is installed.
  const tls = writeTlsFiles(files, tlsFiles);
  const bin = findBinary('haproxy', 'haproxy');
  await stopStale(files.pidFile, log);
  rmSync(files.socket, { force: true });
  writeFileSync(files.config, haproxyConfig({ ...layout, statsSocketPath: files.socket, tls }));
  const check = spawnSync(bin, ['-c', '-f', files.config], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`haproxy rejected ${files.config}: ${check.stderr.trim() || check.stdout.trim()}`);
  // HAProxy stops with the front end even when that is SIGKILLed (and a restarted front end
  // stops a leftover one by its pid file, below).
  const cmd = diesWithParent(bin, ['-db', '-f', files.config]);
  const proc = spawn(cmd.command, cmd.args, { stdio: ['ignore', 'inherit', 'inherit'] });
  // HAProxy writes no pid file in the foreground (-db); setpriv execs it, so this is its pid.
  writeFileSync(files.pidFile, `${proc.pid}\n`);
  log.info('haproxy.started', { pid: proc.pid, config: files.config });
  const runtime = (commands: string[]): Promise<string> => runtimeCommand(files.socket, commands);
  await waitSocket(proc, runtime);
  return { proc, runtime, stop: () => stopProcess(proc) };
}

async function waitSocket(proc: ChildProcess, runtime: (c: string[]) => Promise<string>): Promise<void> {
  const deadline = Date.now() + startupTimeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`haproxy exited during start-up (${proc.signalCode ?? `code ${proc.exitCode}`})`);
    try {
      if ((await runtime(['show info'])).includes('Pid:')) return;
    } catch {
      // socket not there yet
    }
    await sleep(pollMs);
  }
  throw new Error(`haproxy's stats socket did not answer within ${startupTimeoutMs} ms`);
}

function runtimeCommand(socket: string, commands: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const conn = createConnection(socket);
    conn.setTimeout(runtimeCommandTimeoutMs, () => conn.destroy(new Error('haproxy runtime API timed out')));
    conn.on('connect', () => conn.end(`${commands.join(';')}\n`));
    conn.on('data', (b: Buffer) => chunks.push(b));
    conn.on('error', reject);
    conn.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/** A HAProxy left by a front end that was SIGKILLed still holds the ports: stop it by its PID. */
async function stopStale(pidFile: string, log: Logger): Promise<void> {
  let pid = 0;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isHaproxy(pid)) return;
  log.warn('haproxy.stale_stopped', { pid });
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + stopGraceMs;
  while (Date.now() < deadline && isHaproxy(pid)) await sleep(pollMs);
  if (isHaproxy(pid)) process.kill(pid, 'SIGKILL');
}

function isHaproxy(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.includes('(haproxy)') && !/\) Z /.test(stat);
  } catch {
    return false;
  }
}

async function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGUSR1'); // soft stop: stop listening, finish what is in flight
  const hard = setTimeout(() => proc.kill('SIGKILL'), stopGraceMs);
  await exited;
  clearTimeout(hard);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Joins the certificate and key into the one PEM HAProxy reads; a file that cannot be read is named. */
function writeTlsFiles(files: HaproxyFiles, t: FrontendTlsFiles): FrontendTls {
  const read = (flag: string, path: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`--${flag} ${path}: ${(err as Error).message}`);
    }
  };
  let bindPemFile: string | null = null;
  if (t.certFile !== null && t.keyFile !== null) {
    const pem = `${read('tls-cert-file', t.certFile).trimEnd()}\n${read('tls-key-file', t.keyFile).trimEnd()}\n`;
    rmSync(files.tlsPem, { force: true });
    writeFileSync(files.tlsPem, pem, { mode: 0o600 });
    bindPemFile = files.tlsPem;
  } else rmSync(files.tlsPem, { force: true });
  if (t.caFile !== null) read('tls-ca-file', t.caFile);
  return { bindPemFile, backendCaFile: t.caFile === null ? null : resolve(t.caFile) };
}

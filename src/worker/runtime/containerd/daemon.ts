/**
 * @module worker/runtime/containerd/daemon
 * A private containerd for one worker: root, state and sockets under `<stateDir>/containerd/`,
 * every plugin we do not use disabled (CRI above all: it would fight over the host's CNI), started
 * with the runtime and stopped by PID on close. It dies with the worker (setpriv --pdeathsig);
 * its shims outlive it by design, which is why the runtime deletes its containers first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from '../../../shared/logger.js';

/** Where setpriv lives on Debian; when present, the daemon dies with the worker. */
const setprivPath = '/usr/bin/setpriv';
/** containerd was up in ~193 ms here; a slow disk or a cold page cache gets a lot more. */
export const daemonStartTimeoutMs = 20_000;
/** After SIGTERM, containerd gets this long to flush its database before SIGKILL. */
const daemonStopGraceMs = 5_000;
/** sun_path is 108 bytes on Linux, including the terminating NUL. */
const unixSocketPathBytesMax = 107;
/** Bytes of the daemon log quoted when it fails to start. */
const logTailBytesMax = 600;

/** Plugins a Dirigent worker never uses; disabling them speeds start-up and avoids side effects. */
const disabledPlugins = [
  'io.containerd.grpc.v1.cri',
  'io.containerd.snapshotter.v1.aufs',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.tracing.processor.v1.otlp',
  'io.containerd.internal.v1.tracing',
];

export interface DaemonPaths {
  dir: string;
  config: string;
  socket: string;
  log: string;
}

export function daemonPaths(stateDir: string): DaemonPaths {
  const dir = join(resolve(stateDir), 'containerd');
  return { dir, config: join(dir, 'config.toml'), socket: join(dir, 'containerd.sock'), log: join(dir, 'containerd.log') };
}

/** containerd's config (version 2 schema), everything under `dir`. Pure. */
export function daemonConfigToml(dir: string): string {
  const q = (s: string): string => JSON.stringify(s); // a TOML basic string is JSON-compatible here
  return [
    'version = 2',
    `root = ${q(join(dir, 'root'))}`,
    `state = ${q(join(dir, 'state'))}`,
    `disabled_plugins = [${disabledPlugins.map(q).join(', ')}]`,
    '',
    '[grpc]',
    `  address = ${q(join(dir, 'containerd.sock'))}`,
    '',
    '[ttrpc]',
    `  address = ${q(join(dir, 'containerd.sock.ttrpc'))}`,
    '',
    '[debug]',
    `  address = ${q(join(dir, 'debug.sock'))}`,
    '  level = "warn"',
    '',
  ].join('\n');
}

export interface PrivateDaemon {
  socket: string;
  pid: number;
  /** Resolves with how the daemon ended (an unexpected end fails every later call). */
  exited: Promise<string>;
  stop(): Promise<void>;
}

/** Starts containerd and resolves once its socket exists; rejects with its last log line. */
export async function startPrivateDaemon(stateDir: string, log: Logger): Promise<PrivateDaemon> {
  const paths = daemonPaths(stateDir);
  const longest = `${paths.socket}.ttrpc`;
  if (Buffer.byteLength(longest) > unixSocketPathBytesMax) {
    throw new Error(`state dir too long for containerd's sockets (${longest})`);
  }
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await writeFile(paths.config, daemonConfigToml(paths.dir));
  const logFile = await open(paths.log, 'a', 0o600);
  const argv = [...(existsSync(setprivPath) ? [setprivPath, '--pdeathsig', 'SIGKILL', '--'] : []), 'containerd', '--config', paths.config];
  let child: ChildProcess;
  try {
    child = spawn(argv[0], argv.slice(1), {
      stdio: ['ignore', logFile.fd, logFile.fd],
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
    });
  } finally {
    await logFile.close();
  }
  const exited = new Promise<string>((resolve) => {
    child.on('error', (err) => resolve(`spawn: ${err.message}`));
    child.once('exit', (code, signal) => resolve(signal !== null ? `signal ${signal}` : `exit code ${code}`));
  });
  const pid = child.pid ?? 0;
  log.info('containerd.starting', { pid, config: paths.config });
  return { socket: paths.socket, pid, exited, stop: () => stopDaemon(child, exited, log) };
}

/** Reads why a daemon that exited during start did so (its last log line). */
export async function daemonLogTail(stateDir: string): Promise<string> {
  const text = await readFile(daemonPaths(stateDir).log, 'utf8').catch(() => '');
  const lines = text.trim().split('\n');
  return (lines.at(-1) ?? '').slice(-logTailBytesMax);
}

async function stopDaemon(child: ChildProcess, exited: Promise<string>, log: Logger): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const grace = setTimeout(() => child.kill('SIGKILL'), daemonStopGraceMs);
    const how = await exited;
    clearTimeout(grace);
    log.info('containerd.stopped', { pid: child.pid, how });
  }
}

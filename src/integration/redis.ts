/**
 * @module integration/redis
 * A real redis-server for tests: a free loopback port, its data in a fresh temp dir, AOF with
 * appendfsync always (as the project runs it: a write is on disk before Redis answers), stopped
 * by PID (never by name). `restart()` keeps the dir and port, so the AOF is replayed.
 */
import { crashChild, stopChild } from './child-stop.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { freePort, waitFor } from './harness.js';

/** Longest wait for redis-server to answer PING after a start. */
const redisReadyWaitMs = 15_000;
/** Past this after SIGTERM the server is SIGKILLed. */
const redisStopGraceMs = 5_000;
/** One PING's deadline while waiting for readiness. */
const redisPingTimeoutMs = 1_000;

/** Whether redis-server can be started here (Debian package `redis-server`). */
export function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(redisPingTimeoutMs, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (b) => done(b.toString().startsWith('+PONG')));
  });
}

export class TestRedis {
  readonly dataDir = mkdtempSync(`${tmpdir()}/dirigent-redis-`);
  port = 0;
  private proc: ChildProcess | null = null;
  readonly logs: string[] = [];

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const proc = spawn('redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dataDir,
      '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no', '--loglevel', 'warning',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer): void => {
      this.logs.push(b.toString());
      if (this.logs.length > 200) this.logs.shift();
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    this.proc = proc;
    await waitFor(async () => {
      if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}: ${this.logs.join('').slice(-1000)}`);
      return ping(this.port);
    }, redisReadyWaitMs, 'redis-server answering PING');
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    this.proc = null;
    await stopChild(proc, redisStopGraceMs);
  }

  /** Kill without a chance to flush: only what was fsynced before each reply survives. */
  async crash(): Promise<void> {
    const proc = this.proc;
    this.proc = null;
    await crashChild(proc);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Stop and delete the data dir. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

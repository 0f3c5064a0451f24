/**
 * @module integration/etcd
 * A real single-member etcd for tests: free loopback ports, data dir in a fresh temp dir,
 * stopped by PID (never by name). `restart()` keeps the data dir and ports, as an operator's
 * restart of the same member would.
 */
import { stopChild } from './child-stop.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { freePort, waitFor } from './harness.js';

/** Longest wait for etcd to answer /health after a start. */
const etcdReadyWaitMs = 15_000;
/** Past this after SIGTERM the member is SIGKILLed. */
const etcdStopGraceMs = 5_000;

export class TestEtcd {
  readonly dataDir = mkdtempSync(join(tmpdir(), 'dirigent-etcd-'));
  clientPort = 0;
  private peerPort = 0;
  private proc: ChildProcess | null = null;
  readonly logs: string[] = [];

  /** `host:port` of the client endpoint. */
  get endpoint(): string {
    return `127.0.0.1:${this.clientPort}`;
  }

  get url(): string {
    return `etcd://${this.endpoint}`;
  }

  async start(): Promise<void> {
    if (this.clientPort === 0) [this.clientPort, this.peerPort] = await Promise.all([freePort(), freePort()]);
    const client = `http://127.0.0.1:${this.clientPort}`;
    const peer = `http://127.0.0.1:${this.peerPort}`;
    const proc = spawn('etcd', [
      '--name', 'test', '--data-dir', join(this.dataDir, 'member'),
      '--listen-client-urls', client, '--advertise-client-urls', client,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `test=${peer}`, '--log-level', 'warn',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer): void => {
      this.logs.push(b.toString());
      if (this.logs.length > 200) this.logs.shift();
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    this.proc = proc;
    await waitFor(async () => {
      if (proc.exitCode !== null) throw new Error(`etcd exited with ${proc.exitCode}: ${this.logs.join('').slice(-1000)}`);
      const r = await request(`${client}/health`, { headersTimeout: 1_000, bodyTimeout: 1_000 });
      const body = (await r.body.json()) as { health?: string };
      return r.statusCode === 200 && body.health === 'true';
    }, etcdReadyWaitMs, 'etcd healthy');
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    this.proc = null;
    await stopChild(proc, etcdStopGraceMs);
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

/**
 * @module integration/harness
 * Starts real component processes (`node dist/cli/main.js ...`) on 127.0.0.1 with free ports,
 * talks to them over HTTP, and stops every process it started by PID. Used by the integration
 * suites; every wait is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { randomInt } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { tlsAgent } from '../cli/http.js';
import { readOrCreateTokenFile } from '../shared/secrets.js';
import { testIsolation } from '../worker/runtime/isolation-setup.js';

const mainJs = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** A containerd worker starts its private daemon first (up to 20 s on a cold disk, see daemonStartTimeoutMs). */
const workersRegisterTimeoutMs = 30_000;

export interface Proc {
  name: string;
  proc: ChildProcess;
  logs: string[];
}

/** Ports freePort() already gave out in this process: a component may not have bound its own yet. */
const portsGivenOut = new Set<number>();
const freePortTriesMax = 100;
/** Lowest port freePort() gives out; the range ends below the kernel's ephemeral ports. */
const testPortLow = 20_000;
/** Linux's default ephemeral range starts here; used when /proc does not say, or names a range starting at or below testPortLow. */
const ephemeralPortLowDefault = 32_768;

/**
 * A loopback port nothing listens on now and that this process has not been given before. It
 * lies below the kernel's ephemeral range: a port the kernel picked (bind to port 0) could be
 * picked again for another socket before the component bound it (CI saw a worker handed the
 * port just probed for a data plane), and any outgoing connection may take an ephemeral port
 * as its local one meanwhile. Ports are drawn at random so that test files running at the same
 * time rarely draw the same one; each is probed by binding it.
 */
export async function freePort(): Promise<number> {
  const high = ephemeralPortLow();
  for (let i = 0; i < freePortTriesMax; i += 1) {
    const port = testPortLow + randomInt(high - testPortLow);
    if (portsGivenOut.has(port) || !(await canBind(port))) continue;
    portsGivenOut.add(port);
    return port;
  }
  throw new Error(`no free loopback port in ${testPortLow}-${high - 1} in ${freePortTriesMax} tries`);
}

/** The first port of the kernel's ephemeral range (net.ipv4.ip_local_port_range). */
export function ephemeralPortLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > testPortLow ? low : ephemeralPortLowDefault;
  } catch {
    return ephemeralPortLowDefault;
  }
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export interface ClusterOptions {
  workers?: number;
  /** --runtime of the workers: process, emulated, oci, containerd, or a list (process,oci). */
  runtime?: string;
  cpArgs?: string[];
  dpArgs?: string[];
  workerArgs?: string[];
  /** TLS everywhere (files of `certs create`): API, invocation port and the gRPC links. */
  tls?: { caFile: string; certFile: string; keyFile: string };
}

export class TestCluster {
  readonly stateDir = mkdtempSync(join(tmpdir(), 'dirigent-it-'));
  readonly procs: Proc[] = [];
  apiPort = 0;
  rpcPort = 0;
  proxyPort = 0;
  internalPort = 0;
  workers: Proc[] = [];
  /** Each worker's health and metrics port, by worker id. */
  readonly workerPorts = new Map<string, number>();
  private cp: Proc | null = null;
  /** Workers and DPs join with this; made here so it exists before any of them starts. */
  readonly clusterTokenFile = join(this.stateDir, 'cluster.token');
  readonly clusterToken = readOrCreateTokenFile(this.clusterTokenFile).token;

  /** Trusts the test CA (TLS clusters); undici's global dispatcher otherwise. */
  private readonly agent: Agent | undefined;

  constructor(private readonly opts: ClusterOptions = {}) {
    // Invocations route by Host (Host: <function>); the TLS name must stay 127.0.0.1.
    this.agent = opts.tls ? tlsAgent(readFileSync(opts.tls.caFile)) : undefined;
  }

  get api(): string {
    return `${this.scheme}://127.0.0.1:${this.apiPort}`;
  }

  get proxy(): string {
    return `${this.scheme}://127.0.0.1:${this.proxyPort}`;
  }

  private get scheme(): string {
    return this.opts.tls ? 'https' : 'http';
  }


  /** The TLS flags of one component kind (none without the tls option). */
  tlsArgs(kind: 'control-plane' | 'data-plane' | 'worker'): string[] {
    const t = this.opts.tls;
    if (!t) return [];
    const ca = ['--tls-ca-file', t.caFile];
    return kind === 'worker' ? ca : ['--tls-cert-file', t.certFile, '--tls-key-file', t.keyFile, ...ca];
  }

  async start(): Promise<void> {
    [this.apiPort, this.rpcPort, this.proxyPort, this.internalPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    try {
      await this.startControlPlane();
      this.spawn('data-plane', ['data-plane', '--control-plane', `127.0.0.1:${this.rpcPort}`, '--proxy-port', String(this.proxyPort), '--internal-port', String(this.internalPort), '--cluster-token-file', this.clusterTokenFile, '--state-dir', join(this.stateDir, 'dp'), ...this.tlsArgs('data-plane'), ...(this.opts.dpArgs ?? [])]);
      for (let i = 0; i < (this.opts.workers ?? 1); i += 1) await this.startWorker(`worker-${i + 1}`);
      await waitFor(async () => (await this.get(`http://127.0.0.1:${this.internalPort}/health`)).status === 200, 15_000, 'data plane healthy');
      await this.waitWorkers(this.opts.workers ?? 1);
      await this.waitDataPlaneReady();
    } catch (err) {
      // A suite whose cluster does not come up fails in its `before`: say why, with the logs.
      throw new Error(`cluster did not start: ${(err as Error).message}\n${this.dumpLogs()}`, { cause: err });
    }
  }

  /** A control plane alone, on free ports (no data plane, no workers). */
  async startControlPlaneAlone(): Promise<void> {
    [this.apiPort, this.rpcPort] = await Promise.all([freePort(), freePort()]);
    await this.startControlPlane();
  }

  /**
   * Its streams are served on a thread (`--rpc-thread thread`, what a machine of 4 cores or more
   * gets by default) unless cpArgs say otherwise: the suites that start the CP in-process or
   * through `up` on a smaller machine cover the streams on the loop.
   */
  async startControlPlane(): Promise<void> {
    const cpArgs = this.opts.cpArgs ?? [];
    const rpcThread = cpArgs.includes('--rpc-thread') ? [] : ['--rpc-thread', 'thread'];
    this.cp = this.spawn('control-plane', ['control-plane', '--state-dir', this.stateDir, '--api-port', String(this.apiPort), '--rpc-port', String(this.rpcPort), '--monitor-period-ms', '100', '--heartbeat-timeout-ms', '2000', ...this.tlsArgs('control-plane'), ...rpcThread, ...cpArgs]);
    await waitFor(async () => (await this.get(`${this.api}/health`)).status === 200, 15_000, 'control plane healthy');
  }

  async startWorker(id: string): Promise<Proc> {
    const port = await freePort();
    const extra = this.opts.workerArgs ?? [];
    const isolation = extra.includes('--isolation') ? [] : ['--isolation', await testIsolation()];
    this.workerPorts.set(id, port);
    const w = this.spawn(id, ['worker', '--id', id, '--port', String(port), '--control-plane', `127.0.0.1:${this.rpcPort}`, '--runtime', this.opts.runtime ?? 'process', '--state-dir', this.stateDir, '--heartbeat-period-ms', '250', '--cluster-token-file', this.clusterTokenFile, ...this.tlsArgs('worker'), ...isolation, ...extra]);
    this.workers.push(w);
    return w;
  }

  /**
   * What a front end waits for (the readiness check: a routing table, and in compatibility mode
   * the async side), and the async side in any mode (it answers 503 until it is wired).
   */
  async waitDataPlaneReady(): Promise<void> {
    await waitFor(async () => {
      const check = await this.send('GET', `${this.proxy}/`, undefined, { 'x-dirigent-ready-check': '1' });
      if (check.status !== 200) return false;
      // In compatibility mode every request is a submission, and the check above covers it.
      if ((this.opts.dpArgs ?? []).includes('all')) return true;
      return (await this.send('GET', `${this.proxy}/v1/invocations?limit=1`, undefined, { host: '127.0.0.1' })).status !== 503;
    }, 15_000, 'data plane ready');
  }

  async waitWorkers(n: number): Promise<void> {
    await waitFor(async () => {
      const r = await this.get(`${this.api}/v1/cluster`);
      const body = r.json as { workers: { connected: boolean; schedulable: boolean }[] };
      return body.workers.filter((w) => w.connected && w.schedulable).length >= n;
    }, workersRegisterTimeoutMs, `${n} workers registered`);
  }

  async restartControlPlane(): Promise<void> {
    const cp = this.cp!;
    await stopProc(cp, 'SIGKILL');
    await this.startControlPlane();
  }

  spawn(name: string, args: string[]): Proc {
    const proc = spawn(process.execPath, [mainJs, ...args, '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'], cwd: repoRoot });
    const p: Proc = { name, proc, logs: [] };
    const keep = (b: Buffer): void => {
      p.logs.push(b.toString());
      if (p.logs.length > 500) p.logs.shift();
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    this.procs.push(p);
    return p;
  }

  async deploy(spec: Record<string, unknown>): Promise<Resp> {
    return this.send('POST', `${this.api}/v1/functions`, JSON.stringify(spec), { 'content-type': 'application/json' });
  }

  async status(name: string): Promise<{ desired: number; ready: number; creating: number; draining: number }> {
    const r = await this.get(`${this.api}/v1/functions/${name}`);
    return (r.json as { status: { desired: number; ready: number; creating: number; draining: number } }).status;
  }

  async invoke(fn: string, opts: { path?: string; headers?: Record<string, string>; body?: string | Buffer; method?: string } = {}): Promise<Resp> {
    return this.send(opts.method ?? (opts.body ? 'POST' : 'GET'), `${this.proxy}${opts.path ?? '/'}`, opts.body, { host: fn, ...(opts.headers ?? {}) });
  }

  get(url: string): Promise<Resp> {
    return this.send('GET', url);
  }

  /** Where the CP's admin.token is: its --state-dir, or the one a test's `dirigent up` uses. */
  adminTokenDir = this.stateDir;

  /** The bootstrap admin token the CP wrote to <adminTokenDir>/admin.token ('' before it exists). */
  adminToken(): string {
    const path = join(this.adminTokenDir, 'admin.token');
    return existsSync(path) ? readFileSync(path, 'utf8').trim() : '';
  }

  /** Management calls carry the admin token unless the test sets Authorization (or `noToken`). */
  async send(method: string, url: string, body?: string | Buffer, headers: Record<string, string> = {}, noToken = false): Promise<Resp> {
    const toProxy = this.proxyPort !== 0 && url.startsWith(this.proxy);
    const token = noToken || toProxy || 'authorization' in headers ? '' : this.adminToken();
    if (token !== '') headers = { ...headers, authorization: `Bearer ${token}` };
    const r = await request(url, { method: method as 'GET', body, headers, headersTimeout: 30_000, bodyTimeout: 30_000, ...(this.agent ? { dispatcher: this.agent } : {}) });
    const text = await r.body.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
    return { status: r.statusCode, headers: r.headers as Record<string, string>, text, json };
  }

  dumpLogs(): string {
    return this.procs.map((p) => `---- ${p.name}\n${p.logs.join('').slice(-4000)}`).join('\n');
  }

  /** Pids of sandboxes still alive that a process runtime recorded under the state dir. */
  async stop(): Promise<void> {
    await Promise.all([...this.procs].reverse().map((p) => stopProc(p, 'SIGTERM')));
    await this.agent?.close();
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}

export interface Resp {
  status: number;
  headers: Record<string, string>;
  text: string;
  json: unknown;
}

export async function stopProc(p: Proc, signal: NodeJS.Signals): Promise<void> {
  const proc = p.proc;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill(signal);
  const t = setTimeout(() => proc.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(t);
}

export async function waitFor(pred: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown = null;
  while (Date.now() < deadline) {
    try {
      if (await pred()) return;
    } catch (e) {
      lastErr = e;
    }
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
}

/** Whether a TCP connect to host:port is accepted (which address a port really listens on). */
export function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function fixture(name: string): string {
  return join(repoRoot, 'test', 'fixtures', name);
}

/** Whether a process with this pid is alive (and not a zombie). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) Z /.test(stat);
  } catch {
    return false;
  }
}

/**
 * @module integration/ha-cluster
 * The HA layout for integration tests: a real etcd, `n` control planes on it (short lease), one
 * data plane and one emulated worker that follow the leader through the CP address list. Every
 * process runs on free loopback ports and is stopped by PID (also a paused one).
 */
import { TestEtcd } from './etcd.js';
import { join } from 'node:path';
import { freePort, TestCluster, waitFor, type Proc } from './harness.js';

export interface Health { role: 'leader' | 'standby'; term: number; pid: number; id: string }
export interface Cp { id: string; api: number; rpc: number; proc: Proc }

export class HaCluster {
  readonly etcd = new TestEtcd();
  readonly c = new TestCluster({ runtime: 'emulated' });
  readonly cps: Cp[] = [];

  async start(cpCount: number): Promise<void> {
    await this.etcd.start();
    const c = this.c;
    try {
      for (let i = 0; i < cpCount; i += 1) await this.startCp(i);
      await waitFor(async () => (await this.leader()) !== null, 15_000, 'a leader');
      const list = this.cps.map((cp) => `127.0.0.1:${cp.rpc}`).join(',');
      [c.apiPort, c.proxyPort, c.internalPort] = [(await this.leader())!.cp.api, await freePort(), await freePort()];
      c.spawn('data-plane', ['data-plane', '--control-plane', list, '--proxy-port', String(c.proxyPort), '--internal-port', String(c.internalPort),
        '--cluster-token-file', c.clusterTokenFile, '--state-dir', join(c.stateDir, 'dp')]);
      c.spawn('worker-1', ['worker', '--id', 'worker-1', '--port', String(await freePort()), '--control-plane', list, '--runtime', 'emulated',
        '--state-dir', c.stateDir, '--heartbeat-period-ms', '250', '--cluster-token-file', c.clusterTokenFile]);
      await waitFor(async () => (await c.get(`http://127.0.0.1:${c.internalPort}/health`)).status === 200, 15_000, 'data plane healthy');
      await c.waitWorkers(1);
    } catch (err) {
      throw new Error(`HA cluster did not start: ${(err as Error).message}\n${c.dumpLogs()}`, { cause: err });
    }
  }

  async stop(): Promise<void> {
    for (const cp of this.cps) if (cp.proc.proc.exitCode === null) cp.proc.proc.kill('SIGCONT');
    await this.c.stop();
    await this.etcd.destroy();
  }

  async health(cp: Cp): Promise<Health | null> {
    try {
      return (await this.c.get(`http://127.0.0.1:${cp.api}/health`)).json as Health;
    } catch {
      return null;
    }
  }

  /** The CP that says it leads (skipping `exclude`), with its term; null if none does. */
  async leader(exclude: Cp[] = []): Promise<{ cp: Cp; term: number } | null> {
    for (const cp of this.cps) {
      if (exclude.includes(cp)) continue;
      const h = await this.health(cp);
      if (h?.role === 'leader') return { cp, term: h.term };
    }
    return null;
  }

  async sandboxIds(cp: Cp): Promise<string[]> {
    const v = (await this.c.get(`http://127.0.0.1:${cp.api}/v1/cluster`)).json as { workers: { sandboxIds: string[] }[] };
    return v.workers.flatMap((w) => w.sandboxIds).sort();
  }

  /** Waits until the DP and the worker are connected to `cp` (they followed the leader there). */
  async followersOn(cp: Cp, timeoutMs = 10_000): Promise<void> {
    await waitFor(async () => {
      const v = (await this.c.get(`http://127.0.0.1:${cp.api}/v1/cluster`)).json as { workers: { connected: boolean }[]; dataPlanes: { connected: boolean }[] };
      return v.workers.some((w) => w.connected) && v.dataPlanes.some((d) => d.connected);
    }, timeoutMs, `DP and worker connected to ${cp.id}`).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.c.dumpLogs()}`);
    });
  }

  private async startCp(i: number): Promise<void> {
    const [api, rpc] = [await freePort(), await freePort()];
    const id = `cp-${i}`;
    const proc = this.c.spawn(id, ['control-plane', '--store', this.etcd.url, '--store-prefix', '/ha-test/', '--id', id, '--lease-ttl-s', '1',
      '--election-poll-ms', '100', '--api-port', String(api), '--rpc-port', String(rpc), '--state-dir', this.c.stateDir,
      '--monitor-period-ms', '100', '--heartbeat-timeout-ms', '2000']);
    this.cps.push({ id, api, rpc, proc });
  }
}

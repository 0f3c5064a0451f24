/**
 * Goal: issue #8 parts 5 and 6 through `dirigent up`'s HA layouts, on free ports. With several
 * data planes `up` puts the HAProxy front end before them: the API and invocations work through
 * it, and keep working after a DP (and, with etcd, the leader CP) is SIGKILLed; Ctrl-C stops
 * everything, HAProxy and etcd included. With `--tls` the same holds over HTTPS end to end: the
 * front end serves the certificate and reaches the CPs and DPs over TLS (plain HTTP gets nothing).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { certFiles, createCerts } from '../cli/certs.js';
import { alive, sleep, TestCluster, waitFor } from './harness.js';

const mainJs = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const stride = 100;

/** Whether the CP on this branch has the etcd store flags (another part of issue #8). */

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Base ports whose replica ports (+100*i) are all free, and the extra single ports. */
async function pickPorts(replicas: number): Promise<Record<string, number>> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    // Below process sandboxes (20000-29999) and the kernel's ephemeral range (32768-).
    const b = 11_000 + Math.floor(Math.random() * 7_000);
    const p = { api: b + 1, rpc: b, proxy: b + 10, internal: b + 11, worker: b + 20, fe: b + 30, feApi: b + 31, etcd: b + 40 };
    const all = [...[p.api, p.rpc, p.proxy, p.internal].flatMap((x) => Array.from({ length: replicas }, (_, i) => x + stride * i)), p.worker, p.worker + 1, p.fe, p.feApi, p.etcd, p.etcd + 1];
    if ((await Promise.all(all.map(portFree))).every(Boolean)) return p;
  }
  throw new Error('no free port range found');
}

function haSuite(title: string, extra: string[], replicas: number, skip: string | false, killLeaderCp: boolean): void {
  describe(title, { timeout: 180_000, skip }, () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'dirigent-ha-'));
    // With --tls, `up` keeps certificates it finds in <state-dir>/tls: made here, so the test trusts the CA.
    const tls = extra.includes('--tls') ? upCerts(stateDir) : undefined;
    const c = new TestCluster(tls ? { tls } : {});
    c.adminTokenDir = stateDir;
    let up: ChildProcess;
    let output = '';
    const invokeOk = async (): Promise<boolean> => (await c.invoke('ha-fn')).status === 200;
    const clusterFile = (): Record<string, unknown> => JSON.parse(readFileSync(join(stateDir, 'cluster.json'), 'utf8')) as Record<string, unknown>;

    before(async () => {
      const p = await pickPorts(replicas);
      [c.apiPort, c.proxyPort] = [p.feApi!, p.fe!];
      up = spawn(process.execPath, [mainJs, 'up', '--runtime', 'emulated', '--workers', '2', '--state-dir', stateDir, ...extra,
        '--api-port', String(p.api), '--rpc-port', String(p.rpc), '--proxy-port', String(p.proxy), '--internal-port', String(p.internal),
        '--worker-port', String(p.worker), '--frontend-port', String(p.fe), '--frontend-api-port', String(p.feApi), '--etcd-port', String(p.etcd)], { stdio: ['ignore', 'pipe', 'pipe'] });
      const keep = (b: Buffer): void => { output += b.toString(); };
      up.stdout!.on('data', keep);
      up.stderr!.on('data', keep);
      await waitFor(() => output.includes('Dirigent is up'), 90_000, `\`up\` to print its banner\n${output}`);
      const r = await c.deploy({ name: 'ha-fn', image: 'emulated', scaling: { min: 1, initial: 1 } });
      assert.equal(r.status, 201, r.text);
    });

    after(async () => {
      const pids = allPids(stateDir);
      if (up.exitCode === null && up.signalCode === null) {
        const exited = new Promise((r) => up.once('exit', r));
        up.kill('SIGINT');
        await Promise.race([exited, sleep(20_000)]);
        if (up.exitCode === null && up.signalCode === null) up.kill('SIGKILL');
      }
      await waitFor(() => pids.every((pid) => !alive(pid)), 15_000, 'every component stopped with `up`');
      rmSync(stateDir, { recursive: true, force: true });
    });

    it('serves the API and invocations through the front end', async () => {
      await waitFor(invokeOk, 30_000, 'an invocation through the front end');
      assert.ok(clusterFile()['frontend'], 'cluster.json names the front end');
    });

    it('keeps invocations working after a data plane is SIGKILLed', async () => {
      const dps = clusterFile()['dataPlanes'] as { pid: number }[];
      process.kill(dps[0]!.pid, 'SIGKILL');
      for (let i = 0; i < 10; i += 1) assert.equal((await c.invoke('ha-fn')).status, 200);
    });

    it('answers the API again after the first control plane is SIGKILLed', { skip: !killLeaderCp }, async () => {
      const cps = clusterFile()['controlPlanes'] as { pid: number }[];
      process.kill(cps[0]!.pid, 'SIGKILL');
      await waitFor(async () => (await c.get(`${c.api}/v1/functions/ha-fn`)).status === 200, 30_000, 'the API through the front end');
      await waitFor(invokeOk, 30_000, 'an invocation after the CP failover');
    });

    // Only the TLS suite has this case (a skipped test would fail CI's no-skip rule).
    if (tls) it('serves TLS at the front end (deploy and invocations above went over HTTPS), never plain HTTP', async () => {
      assert.match(c.api, /^https:/);
      assert.ok(output.includes(`management API   https://127.0.0.1:${c.apiPort}`), output);
      await assert.rejects(request(`http://127.0.0.1:${c.proxyPort}/`, { headers: { host: 'ha-fn' }, headersTimeout: 5_000, bodyTimeout: 5_000 })
        .then((r) => r.body.text()));
    });

    it('restarts a SIGKILLed front end; invocations go through it again', async () => {
      const fe = clusterFile()['frontend'] as { pid: number };
      process.kill(fe.pid, 'SIGKILL');
      await waitFor(() => (clusterFile()['frontend'] as { pid: number }).pid !== fe.pid, 15_000, 'a new front-end pid');
      await waitFor(invokeOk, 30_000, 'an invocation through the restarted front end');
    });
  });
}

function upCerts(stateDir: string): { caFile: string; certFile: string; keyFile: string } {
  const dir = join(stateDir, 'tls');
  createCerts({ dir, hosts: [], days: 1, force: false, nowMs: Date.now() });
  return { caFile: join(dir, certFiles.ca), certFile: join(dir, certFiles.cert), keyFile: join(dir, certFiles.key) };
}

function allPids(stateDir: string): number[] {
  try {
    const f = JSON.parse(readFileSync(join(stateDir, 'cluster.json'), 'utf8')) as Record<string, { pid?: number }[] | { pid?: number }>;
    const pids = Object.values(f).flatMap((v) => (Array.isArray(v) ? v : [v])).map((x) => x.pid ?? 0).filter((x) => x > 0);
    const haproxy = Number(readFileSync(join(stateDir, 'frontend', 'haproxy.pid'), 'utf8').trim());
    return [...pids, ...(haproxy > 0 ? [haproxy] : [])];
  } catch {
    return [];
  }
}

haSuite('dirigent up --data-planes 2 (one SQLite CP, front end)', ['--data-planes', '2'], 2, false, true);
haSuite('dirigent up --store etcd --control-planes 3 --data-planes 2', ['--store', 'etcd', '--control-planes', '3', '--data-planes', '2'], 3, false, true);
haSuite('dirigent up --tls --store etcd --control-planes 2 --data-planes 2 (TLS through the front end)',
  ['--tls', '--store', 'etcd', '--control-planes', '2', '--data-planes', '2'], 2, false, true);

/**
 * Goal: issue #8 part 6 from outside. `dirigent up` (default layout, emulated runtime, free
 * ports) restarts a SIGKILLed data plane and a SIGKILLed control plane, logs each restart as
 * `up.component_restarted`, and invocations work again afterwards; Ctrl-C stops everything.
 * Issue #10: up makes admin.token and cluster.token in its state dir (here `<tmp>/.dirigent`, the
 * default name), and the CLI run beside it needs no token argument.
 * Issue #12: cluster.json names each component's /metrics, which shows its event-loop delay, and
 * `bench warm --json` run beside `up` reports that delay per component kind.
 * `up` holds the invocation and API ports across restarts: a request sent on a new connection
 * while the data plane (or the control plane) is dead waits for the new process and succeeds,
 * where it was refused before. A sandbox the keep-alive holds stays held across a CP restart,
 * and the idle times it learned are loaded by the new CP.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { alive, freePort, sleep, TestCluster, waitFor } from './harness.js';

const mainJs = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/** A GET on a connection of its own (no pool: a pooled one would have died with the process). */
function freshGet(url: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, headers, timeout: 30_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within 30 s`)));
    req.on('error', reject);
    req.end();
  });
}

interface ClusterFile {
  controlPlane: { pid: number; metricsUrl?: string };
  dataPlanes: { pid: number; metricsUrl?: string }[];
  workers: { pid: number; metricsUrl?: string }[];
}

describe('dirigent up heals its components', { timeout: 120_000 }, () => {
  const workDir = mkdtempSync(join(tmpdir(), 'dirigent-up-'));
  const stateDir = join(workDir, '.dirigent');
  // Only for its HTTP helpers and base URLs; `up` starts the processes.
  const c = new TestCluster();
  c.adminTokenDir = stateDir;
  let up: ChildProcess;
  let output = '';
  const clusterFile = (): ClusterFile => JSON.parse(readFileSync(join(stateDir, 'cluster.json'), 'utf8')) as ClusterFile;
  const restarts = (name: string): number => output.split('\n').filter((l) => l.includes('up.component_restarted') && l.includes(`"name":"${name}"`)).length;
  const invokeOk = async (): Promise<boolean> => (await c.invoke('healer')).status === 200;

  before(async () => {
    const [api, rpc, proxy, internal, worker] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    [c.apiPort, c.proxyPort] = [api, proxy];
    up = spawn(process.execPath, [mainJs, 'up', '--runtime', 'emulated', '--workers', '2', '--state-dir', stateDir, '--api-port', String(api), '--rpc-port', String(rpc),
      '--proxy-port', String(proxy), '--internal-port', String(internal), '--worker-port', String(worker)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer): void => { output += b.toString(); };
    up.stdout!.on('data', keep);
    up.stderr!.on('data', keep);
    await waitFor(() => output.includes('Dirigent is up'), 60_000, '`up` to print its banner');
    const r = await c.deploy({ name: 'healer', image: 'emulated', scaling: { min: 1, initial: 1 } });
    assert.equal(r.status, 201, r.text);
    await waitFor(invokeOk, 30_000, 'a first invocation');
  });

  after(async () => {
    const pids = (() => {
      try {
        const f = clusterFile();
        return [f.controlPlane.pid, ...f.dataPlanes.map((d) => d.pid), ...f.workers.map((w) => w.pid)];
      } catch {
        return [];
      }
    })();
    if (up.exitCode === null && up.signalCode === null) {
      const exited = new Promise((r) => up.once('exit', r));
      up.kill('SIGINT');
      await Promise.race([exited, sleep(15_000)]);
      if (up.exitCode === null && up.signalCode === null) up.kill('SIGKILL');
    }
    await waitFor(() => pids.every((p) => !alive(p)), 10_000, 'every component stopped with `up`');
    rmSync(workDir, { recursive: true, force: true });
  });

  /** The CLI as a user runs it beside `up`: no token flag, no DIRIGENT_TOKEN, cwd holding .dirigent. */
  const cli = (args: string[]): Promise<{ code: number | null; out: string; err: string }> => new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, DIRIGENT_API: c.api, DIRIGENT_PROXY: c.proxy };
    delete env.DIRIGENT_TOKEN;
    delete env.DIRIGENT_STATE_DIR;
    const p = spawn(process.execPath, [mainJs, ...args], { cwd: workDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let [out, err] = ['', ''];
    p.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
    p.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
    p.on('close', (code) => resolve({ code, out, err }));
  });

  it('made the admin and cluster tokens; the CLI deploys, invokes and makes tokens with no token argument', async () => {
    for (const f of ['admin.token', 'cluster.token']) assert.match(readFileSync(join(stateDir, f), 'utf8'), /^dgt_[0-9a-f]{12}_/, f);
    assert.match(output, /admin token/);
    const deployed = await cli(['fn', 'deploy', 'by-cli', '--image', 'emulated']);
    assert.equal(deployed.code, 0, deployed.err);
    const invoked = await cli(['fn', 'invoke', 'by-cli']);
    assert.equal(invoked.code, 0, invoked.err);
    const made = await cli(['token', 'create', '--scope', 'read']);
    assert.equal(made.code, 0, made.err);
    assert.match(made.out, /^dgt_[0-9a-f]{12}_[A-Za-z0-9_-]{43}\n$/);
    const asReader = await c.send('GET', `${c.api}/v1/functions`, undefined, { authorization: `Bearer ${made.out.trim()}` });
    assert.equal(asReader.status, 200);
    assert.equal((await c.send('GET', `${c.api}/v1/functions`, undefined, {}, true)).status, 401);
  });

  it('lists every component /metrics with event-loop delay gauges; bench warm --json reports them per kind', async () => {
    const f = clusterFile();
    for (const url of [f.controlPlane.metricsUrl, f.dataPlanes[0]!.metricsUrl, f.workers[0]!.metricsUrl]) {
      assert.ok(url, `cluster.json names a metricsUrl for each component: ${JSON.stringify(f)}`);
      const r = await c.get(url);
      assert.equal(r.status, 200, `${url}: ${r.text.slice(0, 200)}`);
      for (const name of ['dirigent_event_loop_delay_max_seconds', 'dirigent_event_loop_delay_p99_seconds', 'dirigent_event_loop_stalls_total']) {
        assert.match(r.text, new RegExp(`^${name} [0-9.e-]+$`, 'm'), `${url} shows ${name}`);
      }
    }
    const bench = await cli(['bench', 'warm', '--connections', '2', '--duration', '1', '--warmup', '0.2', '--json']);
    assert.equal(bench.code, 0, bench.err);
    const s = JSON.parse(bench.out) as { eventLoopDelayMs: Record<string, { maxMs: number; p99Ms: number; stallWindows: number; windows: number } | null> };
    for (const kind of ['controlPlane', 'dataPlane', 'workers']) {
      const k = s.eventLoopDelayMs[kind];
      assert.ok(k, `${kind} measured: ${bench.out}`);
      assert.ok(k.windows >= 1 && Number.isInteger(k.stallWindows) && k.stallWindows <= k.windows, `${kind}: ${JSON.stringify(k)}`);
      assert.ok(k.maxMs >= k.p99Ms && k.p99Ms >= 0, `${kind}: ${JSON.stringify(k)}`);
    }
  });

  it('restarts a SIGKILLed data plane; an invocation sent while it is dead waits for the new one', async () => {
    const before = clusterFile().dataPlanes[0]!.pid;
    process.kill(before, 'SIGKILL');
    await waitFor(() => !alive(before), 5_000, 'the data plane gone');
    const during = await freshGet(c.proxy + '/', { host: 'healer' });
    assert.equal(during.status, 200, during.text);
    await waitFor(() => restarts('data-plane') === 1, 15_000, 'the restart log line');
    await waitFor(() => clusterFile().dataPlanes[0]!.pid !== before, 15_000, 'a new data-plane pid');
    await waitFor(invokeOk, 30_000, `invocations after the DP restart\n${output.slice(-3000)}`);
    const line = output.split('\n').find((l) => l.includes('up.component_restarted'))!;
    const fields = JSON.parse(line) as Record<string, unknown>;
    assert.equal(fields['signal'], 'SIGKILL');
    assert.equal(fields['exitCode'], null);
    assert.equal(fields['restarts'], 1);
    assert.equal(typeof fields['backoffMs'], 'number');
  });

  it('restarts a SIGKILLed control plane; the function still answers; an API call sent while it is dead waits', async () => {
    // A function the keep-alive holds (two calls: one idle time learned and stored), to see
    // that the new CP keeps its sandbox and its idle times.
    const kept = await c.deploy({ name: 'kept', image: 'emulated', scaling: { stableWindowS: 2, panicWindowS: 1, keepAliveWindowS: 300 } });
    assert.equal(kept.status, 201, kept.text);
    const keptStatus = async (): Promise<{ ready: number; lastScaleReason: string }> =>
      ((await c.get(`${c.api}/v1/functions/kept`)).json as { status: { ready: number; lastScaleReason: string } }).status;
    assert.equal((await c.invoke('kept')).status, 200);
    await sleep(2_500);
    assert.equal((await c.invoke('kept')).status, 200);
    await waitFor(async () => /keep-alive holds 1 sandbox/.test((await keptStatus()).lastScaleReason), 15_000, 'the keep-alive holding kept');
    await sleep(1_000); // the idle history is stored at the tick after it changes
    const before = clusterFile().controlPlane.pid;
    process.kill(before, 'SIGKILL');
    await waitFor(() => !alive(before), 5_000, 'the control plane gone');
    const during = await freshGet(`${c.api}/v1/functions/healer`, { authorization: `Bearer ${c.adminToken()}` });
    assert.equal(during.status, 200, during.text);
    await waitFor(() => restarts('control-plane') === 1, 15_000, 'the restart log line');
    await waitFor(async () => (await c.get(`${c.api}/v1/functions/healer`)).status === 200, 30_000, 'the API after the CP restart');
    await waitFor(invokeOk, 30_000, `invocations after the CP restart\n${output.slice(-3000)}`);
    assert.notEqual(clusterFile().controlPlane.pid, before);
    const cpLog = readFileSync(join(stateDir, 'logs', 'control-plane.log'), 'utf8').split('\n').filter((l) => l.includes('control_plane.restored'));
    assert.equal((JSON.parse(cpLog.at(-1)!) as { idleHistories: number }).idleHistories, 1, 'the new CP loaded kept\'s idle times');
    // Past the adoption hold (one 2 s stable window) and a few decisions: still held.
    await sleep(4_000);
    const after = await keptStatus();
    assert.equal(after.ready, 1, JSON.stringify(after));
    assert.match(after.lastScaleReason, /keep-alive holds 1 sandbox/);
  });

  it('restarts the emulated workers as one component; they register again', async () => {
    const before = clusterFile().workers[0]!.pid;
    process.kill(before, 'SIGKILL');
    await waitFor(() => restarts('worker') === 1, 15_000, 'the restart log line');
    await waitFor(async () => {
      const body = (await c.get(`${c.api}/v1/cluster`)).json as { workers: { connected: boolean }[] };
      return body.workers.filter((w) => w.connected).length === 2;
    }, 30_000, 'both emulated workers registered again');
    await waitFor(invokeOk, 30_000, `invocations after the worker restart\n${output.slice(-3000)}`);
  });
});

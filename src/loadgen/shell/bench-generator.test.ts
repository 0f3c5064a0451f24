/**
 * Goal (integration): `bench generator` sustains a modest offered rate against the no-op
 * server child: achieved ≈ offered, no errors, one JSON object on stdout, child stopped.
 * Method: run the command in-process for 2 s at 500 req/s on 127.0.0.1 and read its JSON.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { runCli } from '../testing/run-cli.js';

test('bench generator: 500 rps for 2 s against the no-op server', { timeout: 60_000 }, async () => {
  const run = await runCli(['bench', 'generator', '--rate', '500', '--duration', '2',
    '--connections', '32', '--warmup', '0.5', '--json', '--state-dir', '/nonexistent']);
  assert.equal(run.exitCode, 0, run.err.join('\n'));
  assert.equal(run.out.length, 1, 'exactly one JSON object');
  const s = JSON.parse(run.out[0]) as Record<string, any>;
  assert.equal(s.bench, 'generator');
  assert.equal(s.offeredRps, 500);
  assert.equal(s.count, 1000);
  assert.equal(s.ok, 1000);
  assert.deepEqual(s.errors, {});
  assert.ok(Math.abs(s.achievedRps - 500) / 500 < 0.1, `achieved ${s.achievedRps}`);
  assert.ok(s.sendLatenessMs.p50 < 50, `lateness ${JSON.stringify(s.sendLatenessMs)}`);
  assert.equal(typeof s.noopServerCpuSeconds, 'number');
  assert.equal(s.cpuSeconds.controlPlane, null, 'no cluster.json: cluster CPU unknown');
});

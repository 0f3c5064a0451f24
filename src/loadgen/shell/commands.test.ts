/**
 * Goal: the bench and loadgen commands drive a cluster through the documented contract:
 * register the right functions, send the right requests, read the Dirigent headers, clean up,
 * and print one JSON object, a CSV and a plot.
 * Method: an in-process fake cluster on 127.0.0.1 (testing/fake-cluster.ts) and small, short
 * runs; assertions on the JSON summaries and on what the fake saw.
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { samplesSkip, tracesDir } from '../testing/sample-traces.js';
import { startFakeCluster, type FakeCluster, type FakeClusterOptions } from '../testing/fake-cluster.js';
import { runCli } from '../testing/run-cli.js';

const limit = { timeout: 60_000 };

async function withCluster(fn: (c: FakeCluster, common: string[]) => Promise<void>,
  opts: FakeClusterOptions = {}) {
  const c = await startFakeCluster(opts);
  try {
    await fn(c, ['--api', c.apiUrl, '--proxy', c.proxyUrl, '--state-dir', c.stateDir, '--json']);
  } finally {
    await c.close();
  }
}

test('bench cold: one request per fresh function, all cold, all deleted', limit, async () => {
  await withCluster(async (c, common) => {
    const plot = join(tmpdir(), `cold-${process.pid}.svg`);
    const run = await runCli(['bench', 'cold', '--rate', '50', '--duration', '1', '--warmup', '0', ...common,
      '--connections', '16', '--plot', plot]);
    assert.equal(run.exitCode, 0, run.err.join('\n'));
    const s = JSON.parse(run.out[0]) as Record<string, any>;
    assert.equal(s.functions, 50);
    assert.equal(s.count, 50);
    assert.equal(s.ok, 50);
    assert.equal(s.coldStartRatio, 1);
    assert.equal(s.warmup, undefined);
    // The fake answers each cold start with x-dirigent-queue-ms: its creation time.
    assert.ok(s.dpQueueMs.p50 > 0 && typeof s.clientWaitMs.p50 === 'number' && typeof s.beyondQueuesMs.p50 === 'number', JSON.stringify(s));
    assert.ok(Math.abs(s.achievedRps - 50) / 50 < 0.1, `achieved ${s.achievedRps}`);
    assert.equal(typeof s.cpuSeconds.controlPlane, 'number');
    // The fake's cluster.json names no /metrics: unknown is null, never 0, and the bench still passes.
    assert.deepEqual(s.eventLoopDelayMs, { controlPlane: null, dataPlane: null, workers: null });
    assert.match(s.eventLoopDelayNote, /no metricsUrl/);
    assert.deepEqual(c.counters, { registered: 50, deleted: 50, invocations: 50 });
    assert.equal(c.functions.size, 0);
    assert.match(await readFile(plot, 'utf8'), /^<svg[^]*<circle[^]*<\/svg>$/);
    await rm(plot);
  });
});

test('bench cold: a cluster whose capacity binds is named in a warning and in the JSON', limit, async () => {
  const full = { schedulable: true, capacity: { cpuMillis: 2_000, memoryMiB: 4_096 }, allocated: { cpuMillis: 2_000, memoryMiB: 512 } };
  await withCluster(async (_c, common) => {
    const run = await runCli(['bench', 'cold', '--rate', '20', '--duration', '0.5', '--warmup', '0', ...common]);
    assert.equal(run.exitCode, 0, run.err.join('\n'));
    const s = JSON.parse(run.out[0]) as Record<string, any>;
    assert.match(s.capacityNote, /^CPU 100% allocated \(2,000 of 2,000 millis\) on 1 schedulable worker/);
    assert.match(run.err.join('\n'), /bench cold: warning: 20\/s: the cluster's capacity binds: CPU 100%/);
  }, { workers: [full] });
  await withCluster(async (_c, common) => {
    const run = await runCli(['bench', 'cold', '--rate', '20', '--duration', '0.5', '--warmup', '0', ...common]);
    assert.equal(JSON.parse(run.out[0]).capacityNote, undefined);
    assert.doesNotMatch(run.err.join('\n'), /capacity bin|capacity bound/);
  });
});

test('bench cold: a full cluster is named also when its answer lists thousands of sandboxes', limit, async () => {
  const full = { schedulable: true, capacity: { cpuMillis: 64_000, memoryMiB: 262_144 }, allocated: { cpuMillis: 64_000, memoryMiB: 51_200 } };
  await withCluster(async (_c, common) => {
    const run = await runCli(['bench', 'cold', '--rate', '20', '--duration', '0.5', '--warmup', '0', ...common]);
    assert.equal(run.exitCode, 0, run.err.join('\n'));
    // 4 workers x 6,400 sandbox ids: an answer of about 1.2 MB.
    assert.match(JSON.parse(run.out[0]).capacityNote, /^CPU 100% allocated \(256,000 of 256,000 millis\) on 4 schedulable workers/);
    assert.match(run.err.join('\n'), /capacity binds: CPU 100%/);
  }, { workers: [full, full, full, full], sandboxIdsPerWorker: 6_400, refusalsPerClusterRead: 1 });
});

test('bench cold: placements refused during the run are named, though the cluster has room at its end', limit, async () => {
  await withCluster(async (c, common) => {
    const run = await runCli(['bench', 'cold', '--rate', '20', '--duration', '0.5', '--warmup', '0', ...common]);
    assert.equal(run.exitCode, 0, run.err.join('\n'));
    const s = JSON.parse(run.out[0]) as Record<string, any>;
    // The fake adds 7 at each read: the bench reads before the run and after it.
    assert.match(s.capacityNote, /^7 placements found no worker able to take the sandbox during the run \(last: 0\/1 workers available: 1 insufficient cpu\): .*--worker-cpu-millis/);
    assert.match(run.err.join('\n'), /bench cold: warning: 20\/s: the cluster's capacity bound: 7 placements found no worker able to take the sandbox during the run/);
    assert.doesNotMatch(run.err.join('\n'), /capacity binds/);
    assert.deepEqual(c.clusterUrls, ['/v1/cluster?sandboxIds=false', '/v1/cluster?sandboxIds=false'], 'before and after the run, without the ids');
  }, { refusalsPerClusterRead: 7 });
});

test('bench cold --warmup: a ramp to the rate warms the cluster up first, reported apart and not counted', limit, async () => {
  await withCluster(async (c, common) => {
    const run = await runCli(['bench', 'cold', '--rate', '40', '--duration', '0.5', '--warmup', '0.5', ...common]);
    assert.equal(run.exitCode, 0, run.err.join('\n'));
    const s = JSON.parse(run.out[0]) as Record<string, any>;
    // One fresh function per send, the warm-up's included (a ramp from 0 to 40/s over 0.5 s:
    // 10 sends): all cold, all deleted.
    assert.equal(s.functions, 30);
    assert.deepEqual(c.counters, { registered: 30, deleted: 30, invocations: 30 });
    assert.equal(s.count, 20);
    assert.equal(s.ok, 20);
    assert.equal(s.warmup.seconds, 0.5);
    assert.equal(s.warmup.count, 10);
    assert.equal(s.warmup.ok, 10);
    assert.ok(s.warmup.latencyMs.p50 > 0 && s.warmup.dpQueueMs.p50 > 0, JSON.stringify(s.warmup));
    // The measured window is the last 0.5 s only.
    assert.ok(s.durationS < 0.9, `window ${s.durationS} s`);
    // No --connections: sized for the rate, never below the warm pool's 256.
    assert.equal(s.connections, 256);
  });
});

test('bench cold --rates: a sweep reports every rate and stops at saturation', limit, async () => {
  await withCluster(async (c, common) => {
    const run = await runCli(['bench', 'cold', '--rates', '40,20', '--duration', '0.5',
      '--warmup', '0', '--cooldown', '0', ...common]);
    assert.equal(run.exitCode, 0, run.err.join('\n'));
    const s = JSON.parse(run.out[0]) as Record<string, any>;
    assert.deepEqual(s.runs.map((r: { offeredRps: number }) => r.offeredRps), [20, 40]);
    assert.equal(s.saturatedAtRps, null);
    assert.equal(s.maxSustainedRps, 40);
    assert.equal(c.counters.registered, 30);
    assert.equal(c.functions.size, 0);
  });
});

test('bench warm: closed loop on one warm function, then deleted', limit, async () => {
  await withCluster(async (c, common) => {
    const run = await runCli(['bench', 'warm', '--connections', '4', '--duration', '0.5',
      '--warmup', '0.2', ...common]);
    assert.equal(run.exitCode, 0, run.err.join('\n'));
    const s = JSON.parse(run.out[0]) as Record<string, any>;
    assert.equal(s.offeredRps, null);
    assert.equal(s.connections, 4);
    assert.ok(s.ok > 10 && s.count === s.ok, JSON.stringify(s));
    assert.ok(s.achievedRps > 0);
    assert.equal(c.functions.size, 0);
    assert.equal(c.counters.registered, 1);
  });
});

test('bench warm --rate: open loop counts only the measured window', limit, async () => {
  await withCluster(async (_c, common) => {
    const run = await runCli(['bench', 'warm', '--rate', '200', '--duration', '0.5',
      '--warmup', '0.25', ...common]);
    assert.equal(run.exitCode, 0, run.err.join('\n'));
    const s = JSON.parse(run.out[0]) as Record<string, any>;
    assert.equal(s.offeredRps, 200);
    assert.equal(s.count, 100);
    assert.equal(s.coldStartRatio, 0);
  });
});

test('bench register: N registrations, then N deletions', limit, async () => {
  await withCluster(async (c, common) => {
    const run = await runCli(['bench', 'register', '--count', '200', '--concurrency', '8',
      ...common]);
    assert.equal(run.exitCode, 0, run.err.join('\n'));
    const s = JSON.parse(run.out[0]) as Record<string, any>;
    assert.equal(s.ok, 200);
    assert.ok(s.achievedRps > 0 && s.deletesPerSecond > 0);
    assert.deepEqual(c.counters, { registered: 200, deleted: 200, invocations: 0 });
  });
});

test('a cluster that is not there: one error line, exit code 1', limit, async () => {
  // 5 for the default warm-up (a 2 s ramp to 5/s), 5 for the measured second.
  const run = await runCli(['bench', 'cold', '--rate', '5', '--duration', '1', '--api',
    'http://127.0.0.1:1', '--proxy', 'http://127.0.0.1:1', '--json']);
  assert.equal(run.exitCode, 1);
  assert.equal(run.out.length, 0);
  assert.match(run.err[0],
    /^error: registration failed for 10 of 10 functions; first: .*unreachable/);
});

test('loadgen trace: invitro-example, 2 minutes at speed 60', { ...limit, skip: samplesSkip },
  async () => {
    await withCluster(async (c, common) => {
      const csv = join(tmpdir(), `trace-${process.pid}.csv`);
      const run = await runCli(['loadgen', 'trace', join(tracesDir, 'invitro-example'),
        '--warmup-minutes', '1', '--minutes', '1', '--speed', '60', '--iat', 'equidistant',
        '--out', csv, ...common]);
      assert.equal(run.exitCode, 0, run.err.join('\n'));
      const s = JSON.parse(run.out[0]) as Record<string, any>;
      assert.equal(s.functions, 4);
      assert.equal(s.invocations, 10);
      assert.equal(s.count, 10);
      assert.equal(s.failures, 0);
      assert.ok(s.sandboxesCreated >= 1 && s.sandboxesCreated <= 4);
      assert.equal(s.measuredDurationRows, 10);
      assert.equal(s.resources.cpuMillisMax, 100);
      const lines = (await readFile(csv, 'utf8')).trim().split('\n');
      assert.equal(lines.length, 11);
      assert.match(lines[1],
        /^trace-func-\d+-[0-9a-z]+,min0\.inv0,1,\d{16},\d+,\d+,\d+,(true|false),/);
      assert.ok(lines.slice(1).some((l) => l.includes(',min1.inv0,2,')));
      assert.equal(c.functions.size, 0);
      await rm(csv);
    });
  });

test('loadgen trace --dry-run needs no cluster', { ...limit, skip: samplesSkip }, async () => {
  const run = await runCli(['loadgen', 'trace', join(tracesDir, 'dirigent-samples_100'),
    '--dry-run', '--json']);
  assert.equal(run.exitCode, 0, run.err.join('\n'));
  const s = JSON.parse(run.out[0]) as Record<string, any>;
  assert.equal(s.functions, 100);
  assert.equal(s.invocations, 19_058);
});

test('bad options fail at parse time naming the option and range', async () => {
  await assert.rejects(runCli(['bench', 'cold', '--rate', '-3']),
    /--rate: "-3" is not a number in/);
  await assert.rejects(runCli(['loadgen', 'trace', 'x', '--iat', 'poisson']), /--iat/);
});

test('bench warm: errors are not work; past the error limit it says why and exits 1', limit, async () => {
  await withCluster(async (_c, common) => {
    const run = await runCli(['bench', 'warm', '--connections', '4', '--duration', '0.5',
      '--warmup', '0', ...common]);
    assert.equal(run.exitCode, 1, 'half the requests failed');
    const s = JSON.parse(run.out[0]) as Record<string, any>;
    assert.ok(s.errors['503'] > 0 && s.ok > 0 && s.ok + s.errors['503'] === s.count, JSON.stringify(s));
    assert.ok(Math.abs(s.achievedRps - s.ok / 0.5) <= 1, `achieved ${s.achievedRps} counts ok only`);
    assert.match(run.err.join('\n'), /bench warm: \d+ of \d+ requests failed \(\d+(\.\d+)? %, limit 1 %\): 503 x\d+ \(injected failure\)/);
    assert.deepEqual(s.errorMessages, { 503: 'injected failure' });
  }, { failEveryNth: 2 });
});

test('bench cold: an open loop with failures exits 1 and counts successes only', limit, async () => {
  await withCluster(async (_c, common) => {
    const run = await runCli(['bench', 'cold', '--rate', '40', '--duration', '0.5', '--warmup', '0', ...common]);
    assert.equal(run.exitCode, 1);
    const s = JSON.parse(run.out[0]) as Record<string, any>;
    assert.equal(s.ok, 10);
    assert.equal(s.errors['503'], 10);
    assert.ok(s.achievedRps <= 25, `achieved ${s.achievedRps} from 10 successes in 0.5 s`);
    assert.match(run.err.join('\n'), /bench cold: 10 of 20 requests failed \(50 %, limit 1 %\): 503 x10 \(injected failure\)/);
  }, { failEveryNth: 2 });
});

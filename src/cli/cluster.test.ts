/**
 * Goal: `dirigent cluster status` asks GET /v1/cluster and prints the leader, a worker table
 * and a data-plane table (or the raw answer with --json). Method: a fake control plane on
 * 127.0.0.1 with a canned answer; runCli in-process.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from './program.js';
import { captureIo, startFakeServer, type FakeServer } from './fake-http.js';
import type { ClusterReply } from './replies.js';

const cluster: ClusterReply = {
  leader: { id: 'cp-1', apiAddress: '127.0.0.1:9091' },
  workers: [
    { id: 'w-1', address: '127.0.0.1:10010', schedulable: true,
      capacity: { cpuMillis: 2000, memoryMiB: 4096 }, allocated: { cpuMillis: 300, memoryMiB: 384 },
      sandboxes: 3, lastHeartbeatAgoMs: 412.6 },
    { id: 'w-2', address: '127.0.0.1:10011', schedulable: false,
      capacity: { cpuMillis: 2000, memoryMiB: 4096 }, allocated: { cpuMillis: 0, memoryMiB: 0 },
      sandboxes: 0, lastHeartbeatAgoMs: 16000 },
  ],
  dataPlanes: [{ id: 'dp-1', proxyAddress: '127.0.0.1:8080', connected: true }],
};

describe('dirigent cluster status', { timeout: 10_000 }, () => {
  let cp: FakeServer;
  let answer: unknown = cluster;

  before(async () => {
    cp = await startFakeServer(() => ({ status: 200, body: answer }));
  });
  after(async () => {
    await cp.close();
  });

  test('prints the leader, the workers and the data planes', async () => {
    answer = cluster;
    const io = captureIo();
    assert.equal(await runCli(['cluster', 'status', '--api', cp.url], io), 0);
    assert.equal(cp.requests.at(-1)?.url, '/v1/cluster?sandboxIds=false', 'the table needs no sandbox ids');
    assert.equal(io.out(), [
      'leader: cp-1 (127.0.0.1:9091)',
      '',
      'workers (2):',
      'ID   ADDRESS          SCHEDULABLE  CPU MILLIS (ALLOC/CAP)  MEMORY MiB (ALLOC/CAP)  ' +
        'SANDBOXES  HEARTBEAT',
      'w-1  127.0.0.1:10010  yes          300/2000                384/4096                ' +
        '3          413 ms ago',
      'w-2  127.0.0.1:10011  no           0/2000                  0/4096                  ' +
        '0          16000 ms ago',
      '',
      'data planes (1):',
      'ID    PROXY           CONNECTED',
      'dp-1  127.0.0.1:8080  yes',
      '',
    ].join('\n'));
  });

  test('--json prints the answer as sent, fields the CLI does not know included', async () => {
    answer = { ...cluster, term: 7 };
    const io = captureIo();
    assert.equal(await runCli(['cluster', 'status', '--json', '--api', cp.url], io), 0);
    assert.equal(cp.requests.at(-1)?.url, '/v1/cluster');
    assert.deepEqual(JSON.parse(io.out()), { ...cluster, term: 7 });
  });

  test('a cluster whose CPU is nearly all allocated says its capacity binds, and what to change', async () => {
    const full = { ...cluster.workers[0]!, allocated: { cpuMillis: 1_900, memoryMiB: 384 } };
    answer = { ...cluster, workers: [full, cluster.workers[1]!] };
    const io = captureIo();
    assert.equal(await runCli(['cluster', 'status', '--api', cp.url], io), 0);
    assert.match(io.out(), /\ncapacity: CPU 95% allocated \(1,900 of 2,000 millis\) on 1 schedulable worker: new sandboxes may not fit: .*--worker-cpu-millis/);
    answer = cluster;
    const roomy = captureIo();
    await runCli(['cluster', 'status', '--api', cp.url], roomy);
    assert.doesNotMatch(roomy.out(), /capacity:/);
  });

  test('placements no worker could take are counted, with the last reason; none, no line', async () => {
    answer = { ...cluster, placementRefusals: { total: 1234, lastReason: '0/2 workers available: 2 insufficient cpu' } };
    const io = captureIo();
    assert.equal(await runCli(['cluster', 'status', '--api', cp.url], io), 0);
    assert.match(io.out(), /\nplacement: 1,234 sandboxes found no worker able to take them since the leader started \(last: 0\/2 workers available: 2 insufficient cpu\)\n$/);
    answer = { ...cluster, placementRefusals: { total: 0, lastReason: '' } };
    const none = captureIo();
    assert.equal(await runCli(['cluster', 'status', '--api', cp.url], none), 0);
    assert.doesNotMatch(none.out(), /placement:/);
  });

  test('an empty cluster without a leader is shown as such', async () => {
    answer = { leader: null, workers: [], dataPlanes: [] };
    const io = captureIo();
    assert.equal(await runCli(['cluster', 'status', '--api', cp.url], io), 0);
    assert.equal(io.out(), 'leader: none (an election may be under way)\n\n' +
      'workers (0):\n  none registered\n\ndata planes (0):\n  none connected\n');
  });
});

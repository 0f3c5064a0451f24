/**
 * Goal: bench failover kills the component the brief names, read from `up`'s cluster.json.
 * Method: parse the HA layout `up` writes and choose a victim per target.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  busiestDataPlane,
  chooseVictims,
  controlPlaneApis,
  parseFailoverCluster,
  parseHaproxyStat,
  type FailoverCluster,
} from './failover-cluster.js';
import { failoverPlot, failoverSummary, formatFailover } from './failover-report.js';

const haJson = JSON.stringify({
  controlPlane: { pid: 10, apiUrl: 'http://127.0.0.1:9092' },
  controlPlanes: [{ pid: 10, apiUrl: 'http://127.0.0.1:9091' },
    { pid: 11, apiUrl: 'http://127.0.0.1:9191' }],
  dataPlanes: [{ pid: 20, proxyUrl: 'http://127.0.0.1:8080' }, { pid: 21 }],
  workers: [{ pid: 30, id: 'worker' }],
  frontend: { pid: 40, apiUrl: 'http://127.0.0.1:9092', proxyUrl: 'http://127.0.0.1:8079' },
});

function ha(): FailoverCluster {
  const c = parseFailoverCluster(haJson);
  assert.ok(!('error' in c));
  return c;
}

test('parses the HA cluster.json; a bad one is an error naming the field', () => {
  assert.deepEqual(controlPlaneApis(ha(), 'x'), ['http://127.0.0.1:9091', 'http://127.0.0.1:9191']);
  assert.deepEqual(controlPlaneApis({ ...ha(), controlPlanes: undefined }, 'http://d'),
    ['http://127.0.0.1:9092']);
  const bad = parseFailoverCluster('{"controlPlane":{"pid":-1},"dataPlanes":[],"workers":[]}');
  assert.ok('error' in bad && bad.error.startsWith('controlPlane.pid'));
  assert.ok('error' in parseFailoverCluster('{'));
});

test('victims: the leader /health named, the first DP, half the workers or the one process', () => {
  const c = ha();
  assert.deepEqual(chooseVictims('cp-leader', c, { pid: 11, id: 'cp-1' }),
    { pids: [11], what: 'control-plane leader cp-1 (pid 11)', notes: [] });
  assert.ok('error' in chooseVictims('cp-leader', c, null));
  const dp = chooseVictims('dp', c, null);
  assert.ok(!('error' in dp) && dp.pids[0] === 20 && /first DP/.test(dp.notes[0]));
  const busy = chooseVictims('dp', c, null, 1);
  assert.ok(!('error' in busy) && busy.pids[0] === 21 && /the most/.test(busy.notes[0]));
  const one = chooseVictims('worker', c, null);
  assert.ok(!('error' in one) && one.pids[0] === 30 && /ALL workers/.test(one.notes[0]));
  const four = chooseVictims('worker', { ...c, workers: [1, 2, 3, 4].map((pid) => ({ pid,
    id: `w${pid}` })) }, null);
  assert.ok(!('error' in four));
  assert.deepEqual(four.pids, [1, 2]);
});

test('summary: counts, text and a plot whose x axis is time since the kill', () => {
  const ok = (sentMs: number) => ({ kind: 'warm' as const, fn: 0, sentMs, doneMs: sentMs + 3,
    status: 200, error: '', body: '' });
  const s = failoverSummary({ target: 'dp', killed: 'dp 0', killPids: [20], killMs: 500,
    rateRps: 10, coldRateRps: 0, durationS: 1, bucketMs: 250, stableMs: 200,
    records: [ok(0), ok(250), { ...ok(500), status: 0, error: 'ECONNRESET', doneMs: 501 }, ok(750),
      ok(1000)], polls: [], notes: [] });
  assert.deepEqual(s.requests.warm, { sent: 5, ok: 4, failed: 1, failedBeforeKill: 0 });
  assert.deepEqual(s.failuresByCause.warm, { 'connection:ECONNRESET': 1 });
  assert.equal(s.recoveryMs.warm, 250);
  assert.equal(s.newLeaderAfterKillMs, null);
  assert.match(formatFailover(s), /back at zero \(for 200 ms\): 250 ms after the kill/);
  const plot = failoverPlot(s);
  assert.deepEqual(plot.series[1].points.map((p) => [p.x, p.y]),
    [[-0.5, 0], [-0.25, 0], [0, 1], [0.25, 0], [0.5, 0]]);
});

test('busiest DP: the largest growth of HAProxy stot between two snapshots, matched by address',
  () => {
    const stat = (a: number, b: number) => '# pxname,svname,qcur,scur,stot,addr,status\n' +
      'invocations,FRONTEND,,0,900,,OPEN\n' +
      `dataplanes,dp1,0,0,${a},127.0.0.1:8080,UP\n` +
      `dataplanes,dp2,0,0,${b},127.0.0.1:8180,UP\n` +
      'dataplanes,dp3,0,0,0,127.0.0.1:1,MAINT\ndataplanes,BACKEND,0,0,77,,UP\n';
    const before = parseHaproxyStat(stat(1000, 10));
    assert.deepEqual([...before], [['127.0.0.1:8080', 1000], ['127.0.0.1:8180', 10],
      ['127.0.0.1:1', 0]]);
    const c = { ...ha(), dataPlanes: [{ pid: 20, proxyUrl: 'http://127.0.0.1:8080' },
      { pid: 21, proxyUrl: 'http://127.0.0.1:8180' }] };
    // More requests in total went to dp1, but during this run dp2 got more.
    assert.equal(busiestDataPlane(c, before, parseHaproxyStat(stat(1100, 300))), 1);
    assert.equal(busiestDataPlane(c, before, before), null, 'no traffic: unknown');
    assert.equal(parseHaproxyStat('garbage').size, 0);
  });

/**
 * Goal: CPU accounting reads utime + stime correctly even when the command name has spaces
 * or parentheses, and cluster.json is validated.
 * Method: synthetic /proc/<pid>/stat lines and cluster.json documents.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  componentPids,
  groupCpuSeconds,
  parseClusterJson,
  parseProcStatTicks,
} from './proc-stat.js';

const stat = (comm: string, utime: number, stime: number) =>
  `4242 (${comm}) S 1 4242 4242 0 -1 4194560 500 0 0 0 ${utime} ${stime} 0 0 20 0 11 0 99 0 0`;

test('utime + stime, counted from the last parenthesis', () => {
  assert.equal(parseProcStatTicks(stat('node', 250, 75)), 325);
  assert.equal(parseProcStatTicks(stat('my (weird) proc', 1, 2)), 3);
  assert.equal(parseProcStatTicks('garbage'), null);
  assert.equal(parseProcStatTicks('1 (x) S 1 2'), null);
});

test('cluster.json: PIDs by component; bad documents are values', () => {
  const doc = {
    controlPlane: { pid: 10, apiUrl: 'http://127.0.0.1:9091' },
    dataPlanes: [{ pid: 11, proxyUrl: 'http://127.0.0.1:8080' }],
    workers: [{ pid: 12, id: 'worker-1' }, { pid: 13, id: 'worker-2' }],
    extra: 'ignored',
  };
  const parsed = parseClusterJson(JSON.stringify(doc));
  assert.equal(parsed.kind, 'ok');
  if (parsed.kind === 'ok') {
    assert.deepEqual(componentPids(parsed.cluster), { controlPlane: [10], dataPlane: [11],
      workers: [12, 13] });
  }
  assert.equal(parseClusterJson('{').kind, 'error');
  const bad = parseClusterJson(JSON.stringify({ ...doc, controlPlane: { pid: -1 } }));
  assert.equal(bad.kind === 'error' && bad.message.startsWith('controlPlane.pid'), true);
});

test('group CPU: sum of deltas in seconds; unknown if any PID vanished', () => {
  const before = new Map<number, number | null>([[1, 100], [2, 50]]);
  const after = new Map<number, number | null>([[1, 350], [2, 60]]);
  assert.equal(groupCpuSeconds([1, 2], before, after), 2.6);
  assert.equal(groupCpuSeconds([], before, after), null);
  assert.equal(groupCpuSeconds([1], before, new Map([[1, null]])), null);
  assert.equal(groupCpuSeconds([1], before, new Map([[1, 5]])), null, 'restarted: counter reset');
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { oomCounterFile, parseOomKills, resolveCgroupDirs } from './cgroup-dirs.js';
import { parseMountPoints } from './mount-points.js';
import { parseRuncList } from './runc.js';
import { lastLine } from './tools.js';

// Shapes taken from this machine type (hybrid: v1 controllers + cgroup2 at .../unified).
const procSelfCgroup = [
  '9:name=systemd:/',
  '4:memory:/process_api/ab12',
  '2:cpu,cpuacct:/',
  '0::/',
  '',
].join('\n');
const mountinfo = [
  '30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate',
  '31 25 0:27 / /sys/fs/cgroup/systemd rw,nosuid shared:9 - cgroup cgroup rw,xattr,name=systemd',
  '34 25 0:30 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory',
  '35 25 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct',
  '40 22 0:40 / /tmp/a\\040b rw - overlay overlay rw,lowerdir=/x',
].join('\n');

describe('oci parsers', () => {
  it('finds the worker cgroup in every mounted hierarchy', () => {
    const dirs = resolveCgroupDirs(procSelfCgroup, mountinfo);
    assert.deepEqual(dirs.map((d) => d.dir), [
      '/sys/fs/cgroup/systemd',
      '/sys/fs/cgroup/memory/process_api/ab12',
      '/sys/fs/cgroup/cpu,cpuacct',
      '/sys/fs/cgroup/unified',
    ]);
    assert.equal(oomCounterFile(dirs, 'p/sb'), '/sys/fs/cgroup/memory/process_api/ab12/p/sb/memory.oom_control');
  });

  it('uses memory.events on a pure cgroup v2 host, and a mount root below /', () => {
    const dirs = resolveCgroupDirs('0::/work/w1\n', '30 25 0:26 /work /sys/fs/cgroup rw - cgroup2 cgroup2 rw');
    assert.deepEqual(dirs.map((d) => d.dir), ['/sys/fs/cgroup/w1']);
    assert.equal(oomCounterFile(dirs, 'p/sb'), '/sys/fs/cgroup/w1/p/sb/memory.events');
    assert.equal(oomCounterFile([], 'p/sb'), undefined);
  });

  it('reads the OOM kill count of either file', () => {
    assert.equal(parseOomKills('oom_kill_disable 0\nunder_oom 0\noom_kill 2\n'), 2);
    assert.equal(parseOomKills('low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n'), 1);
    assert.equal(parseOomKills('oom_kill_disable 0\n'), 0);
  });

  it('unescapes mount points', () => {
    assert.ok(parseMountPoints(mountinfo).includes('/tmp/a b'));
  });

  it('parses runc list output', () => {
    assert.deepEqual(parseRuncList('null'), []);
    assert.deepEqual(parseRuncList('[{"id":"a","status":"running"},{"x":1}]'), [{ id: 'a', status: 'running' }]);
    assert.match(String(parseRuncList('oops')), /not JSON/);
  });

  it("quotes runc's message, not its log decoration", () => {
    const stderr = 'time="2026-12-02T10:22:21Z" level=error msg="container \\"x\\" does not exist"\n';
    assert.equal(lastLine(stderr), 'container "x" does not exist');
    assert.equal(lastLine('a\nplain line\n\n'), 'plain line');
  });
});

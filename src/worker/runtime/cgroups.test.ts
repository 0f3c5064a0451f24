/**
 * The cgroup driver without a kernel: detection from /proc/self/cgroup text, and both back-ends
 * against a fake directory tree given as root (v2 cannot be exercised on this machine type,
 * whose unified mount only offers hugetlb). The real v1 path is in process-runtime-cgroup.test.
 */
import { strict as assert } from 'node:assert';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { cgroupJoinArgv, cpuQuotaUs, detectCgroups, parseOomKills } from './cgroups.js';

const roots: string[] = [];
after(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function fakeTree(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'dirigent-cgroups-'));
  roots.push(root);
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), text);
  }
  return root;
}

const v2Self = '0::/system.slice/dirigent.service\n';
const v2Own = 'system.slice/dirigent.service';

async function v2Tree(): Promise<string> {
  return fakeTree({
    'cgroup.controllers': 'cpuset cpu io memory hugetlb pids rdma\n',
    [`${v2Own}/cgroup.procs`]: '',
    [`${v2Own}/cgroup.subtree_control`]: '',
  });
}

describe('cgroup driver', () => {
  test('parses the OOM-kill counter of v1 memory.oom_control and v2 memory.events', () => {
    assert.equal(parseOomKills('oom_kill_disable 0\nunder_oom 0\noom_kill 3\n'), 3);
    assert.equal(parseOomKills('low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n'), 1);
    assert.equal(parseOomKills(''), 0);
  });

  test('cpu quota: cpuMillis of a 100 ms period, at least 1 ms', () => {
    assert.equal(cpuQuotaUs(500), 50_000);
    assert.equal(cpuQuotaUs(2000), 200_000);
    assert.equal(cpuQuotaUs(1), 1_000);
  });

  test('v1: one dir per controller below the worker\'s own, limits written', async () => {
    const self = '8:pids:/\n4:memory:/job/42\n2:cpu,cpuacct:/\n0::/\n';
    const root = await fakeTree({
      'pids/cgroup.procs': '',
      'memory/job/42/cgroup.procs': '',
      'cpu,cpuacct/cgroup.procs': '',
    });
    const detected = await detectCgroups({ parent: 'dirigent-x', pidsMax: 77, root, selfCgroup: self });
    assert.ok(detected.ok, detected.ok ? '' : detected.reason);
    const { driver } = detected;
    assert.equal(driver.version, 'v1');
    const cg = await driver.create('sb-1', { cpuMillis: 250, memoryMiB: 64 });
    assert.deepEqual(cg.dirs, [
      join(root, 'pids/dirigent-x/sb-1'),
      join(root, 'cpu,cpuacct/dirigent-x/sb-1'),
      join(root, 'memory/job/42/dirigent-x/sb-1'),
    ]);
    assert.equal(await readFile(join(cg.dirs[0], 'pids.max'), 'utf8'), '77');
    assert.equal(await readFile(join(cg.dirs[1], 'cpu.cfs_quota_us'), 'utf8'), '25000');
    await driver.setCpu(cg, 10);
    assert.equal(await readFile(join(cg.dirs[1], 'cpu.cfs_quota_us'), 'utf8'), '1000', 'the quota alone is rewritten');
    assert.equal(await readFile(join(cg.memoryDir, 'memory.limit_in_bytes'), 'utf8'), String(64 * 1_048_576));
    await writeFile(join(cg.memoryDir, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 1\n');
    assert.equal(await driver.oomKills(cg), 1);
    assert.deepEqual(cgroupJoinArgv(cg).slice(4, 7), cg.dirs.map((d) => join(d, 'cgroup.procs')));
  });

  test('v2: controllers delegated, one dir with cpu.max, memory.max, pids.max', async () => {
    const root = await v2Tree();
    const detected = await detectCgroups({ parent: 'dirigent-x', pidsMax: 512, root, selfCgroup: v2Self });
    assert.ok(detected.ok, detected.ok ? '' : detected.reason);
    const { driver } = detected;
    assert.equal(driver.version, 'v2');
    const own = join(root, v2Own);
    assert.equal(await readFile(join(own, 'cgroup.subtree_control'), 'utf8'), '+cpu +memory +pids');
    assert.equal(await readFile(join(own, 'dirigent-x', 'cgroup.subtree_control'), 'utf8'), '+cpu +memory +pids');
    const cg = await driver.create('sb-2', { cpuMillis: 1500, memoryMiB: 128 });
    const dir = join(own, 'dirigent-x', 'sb-2');
    assert.deepEqual(cg.dirs, [dir]);
    assert.equal(cg.memoryDir, dir);
    assert.equal(await readFile(join(dir, 'cpu.max'), 'utf8'), '150000 100000');
    assert.equal(await readFile(join(dir, 'memory.max'), 'utf8'), String(128 * 1_048_576));
    assert.equal(await readFile(join(dir, 'pids.max'), 'utf8'), '512');
    assert.equal(await driver.oomKills(cg), 0);
    await writeFile(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\n');
    assert.equal(await driver.oomKills(cg), 2);
  });

  test('v2 in the hybrid layout is found at <root>/unified, and refused without cpu/memory/pids', async () => {
    const root = await fakeTree({ 'unified/cgroup.controllers': 'hugetlb\n', 'unified/cgroup.procs': '' });
    const detected = await detectCgroups({ parent: 'p', pidsMax: 16, root, selfCgroup: '0::/\n' });
    assert.equal(detected.ok, false);
    assert.match(detected.ok ? '' : detected.reason, /cgroup v2 at .*unified lacks cpu, memory, pids/);
  });

  test('v2: reap finds what a previous run left', async () => {
    const root = await v2Tree();
    const parent = join(root, v2Own, 'dirigent-y');
    await mkdir(join(parent, 'old-1'), { recursive: true });
    const detected = await detectCgroups({ parent: 'dirigent-y', pidsMax: 16, root, selfCgroup: v2Self });
    assert.ok(detected.ok);
    // Only the count: a plain fs keeps the fake interface files that cgroupfs rmdir ignores.
    assert.equal(await detected.driver.reap(), 1);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FunctionSpec } from '../../../api/types.js';
import { scalingDefaults } from '../../../config/defaults.js';
import { buildBundleSpec, bundleEnv, type BundleSpecInput, type OciSpec } from './bundle-spec.js';

function fnSpec(over: Partial<FunctionSpec> = {}): FunctionSpec {
  return {
    name: 'hello',
    image: 'oci-archive:/x.tar',
    command: [],
    workingDir: '',
    port: 0,
    env: {},
    egress: false, auth: 'none',
    resources: { cpuMillis: 250, memoryMiB: 128 },
    concurrency: 1,
    timeoutMs: 60_000,
    scaling: { ...scalingDefaults },
    ...over,
  };
}

function input(over: Partial<BundleSpecInput> = {}): BundleSpecInput {
  return {
    sandboxId: 'sb-1',
    fn: fnSpec(),
    image: { entrypoint: ['/bin/sh'], cmd: ['-c', 'exec httpd'], env: ['PATH=/bin', 'LANG=C'], workingDir: '/www' },
    uid: 200_007,
    host: '127.0.0.1',
    port: 33_001,
    pidsMax: 512,
    tmpMiB: 64,
    cgroupsPath: 'dirigent-abc/sb-1',
    hostFiles: ['/etc/resolv.conf'],
    ...over,
  };
}

function build(over: Partial<BundleSpecInput> = {}): OciSpec {
  const r = buildBundleSpec(input(over));
  assert.ok(r.ok, r.ok ? '' : r.reason);
  return r.spec;
}

describe('oci bundle spec', () => {
  it('runs entrypoint + cmd in the image working dir', () => {
    const spec = build();
    assert.deepEqual(spec.process.args, ['/bin/sh', '-c', 'exec httpd']);
    assert.equal(spec.process.cwd, '/www');
    assert.equal(build({ image: { ...input().image, workingDir: '' } }).process.cwd, '/');
  });

  it('fails without anything to run', () => {
    const r = buildBundleSpec(input({ image: { entrypoint: [], cmd: [], env: [], workingDir: '' } }));
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.reason, /Entrypoint nor Cmd/);
  });

  it('layers env: image, then function, then the runtime (which wins)', () => {
    const fn = fnSpec({ env: { LANG: 'de', PORT: '1', HOST: 'evil', EXTRA: 'a=b' } });
    const env = bundleEnv(input({ fn }));
    assert.deepEqual(env, [
      'PATH=/bin',
      'LANG=de',
      'EXTRA=a=b',
      'PORT=33001',
      'HOST=127.0.0.1',
      'DIRIGENT_FUNCTION=hello',
      'DIRIGENT_SANDBOX_ID=sb-1',
    ]);
  });

  it('runs as the pool uid with no capabilities and no new privileges', () => {
    const { process: p } = build();
    assert.deepEqual(p.user, { uid: 200_007, gid: 200_007, additionalGids: [] });
    for (const set of Object.values(p.capabilities)) assert.deepEqual(set, []);
    assert.equal(p.noNewPrivileges, true);
    assert.equal(p.terminal, false);
    assert.equal(p.rlimits[0].type, 'RLIMIT_NOFILE');
  });

  it('refuses root as the sandbox uid (a bug in the caller)', () => {
    assert.throws(() => buildBundleSpec(input({ uid: 0 })), /root/);
  });

  it('shares the host network namespace and nothing else', () => {
    const types = build().linux.namespaces.map((n) => n.type).sort();
    assert.deepEqual(types, ['cgroup', 'ipc', 'mount', 'pid', 'uts']);
  });

  it('limits cpu, memory and pids below a relative cgroup path', () => {
    const { linux } = build();
    assert.equal(linux.cgroupsPath, 'dirigent-abc/sb-1');
    assert.deepEqual(linux.resources.cpu, { quota: 25_000, period: 100_000 });
    assert.deepEqual(linux.resources.memory, { limit: 128 * 1_048_576 });
    assert.deepEqual(linux.resources.pids, { limit: 512 });
    assert.deepEqual(linux.resources.devices, [{ allow: false, access: 'rwm' }]);
    assert.equal(build({ fn: fnSpec({ resources: { cpuMillis: 1, memoryMiB: 8 } }) }).linux.resources.cpu.quota, 1_000);
    assert.throws(() => buildBundleSpec(input({ cgroupsPath: '/abs' })), /relative/);
  });

  it('mounts a read-only root, a bounded /tmp, read-only /sys and the existing host files', () => {
    const spec = build();
    assert.deepEqual(spec.root, { path: 'rootfs', readonly: true });
    const byDest = new Map(spec.mounts.map((m) => [m.destination, m]));
    assert.deepEqual([...byDest.keys()], ['/proc', '/dev', '/dev/pts', '/dev/shm', '/tmp', '/sys', '/etc/resolv.conf']);
    assert.ok(byDest.get('/tmp')?.options?.includes('size=64m'));
    assert.ok(byDest.get('/tmp')?.options?.includes('mode=1777'));
    assert.ok(byDest.get('/sys')?.options?.includes('ro'));
    const resolv = byDest.get('/etc/resolv.conf');
    assert.equal(resolv?.type, 'bind');
    assert.ok(resolv?.options?.includes('ro'));
    assert.ok(spec.linux.maskedPaths.includes('/proc/kcore'));
    assert.ok(spec.linux.readonlyPaths.includes('/proc/sys'));
  });

  it('binds only the files it knows', () => {
    assert.throws(() => buildBundleSpec(input({ hostFiles: ['/etc/shadow'] })), /unexpected host file/);
  });
});

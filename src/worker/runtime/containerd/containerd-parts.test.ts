/**
 * The pure parts of the containerd runtime: the OCI spec, container ids, chain ids, GC labels,
 * event filters and routing, the daemon config and the cgroup parent paths. No containerd needed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { create, toBinary } from '@bufbuild/protobuf';
import { TaskExitSchema, TaskOOMSchema } from '../../../gen/containerd/events/task_pb.js';
import { EnvelopeSchema } from '../../../gen/containerd/services/events/v1/events_pb.js';
import type { CachedImage } from '../image/image-cache.js';
import { cgroupParentDirs } from './cgroup-parents.js';
import { daemonConfigToml } from './daemon.js';
import { dispatchEnvelope, eventFilters } from './events.js';
import { chainIds, gcLabels } from './image-import.js';
import { buildSpec, containerIdFor, type SpecInput } from './spec.js';
import { imageSpec } from './containerd.testkit.js';

const a = 'sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb';
const b = 'sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d';
const c = 'sha256:2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6';

function specInput(over: Partial<SpecInput> = {}): SpecInput {
  return {
    sandboxId: 'sb-1',
    containerId: 'dgabc-sb-1',
    fn: imageSpec('fn', 'oci-archive:/x.tar', { FOO: 'fn', PORT: 'mine' }),
    image: { entrypoint: ['/bin/sh'], cmd: ['-c', 'run'], env: ['PATH=/bin', 'FOO=image', 'BAR=image'], workingDir: '/www', user: 'root', diffIds: [a] },
    uid: 4242,
    gid: 4242,
    port: 20001,
    host: '10.0.0.7',
    pidsMax: 128,
    tmpMiB: 32,
    cgroupsPath: 'dgabc/dgabc-sb-1',
    ...over,
  };
}

describe('buildSpec', () => {
  it('runs entrypoint + cmd as the pool uid (never the image user) without privileges', () => {
    const spec = buildSpec(specInput());
    assert.deepEqual(spec.process.args, ['/bin/sh', '-c', 'run']);
    assert.deepEqual(spec.process.user, { uid: 4242, gid: 4242, additionalGids: [] });
    assert.equal(spec.process.noNewPrivileges, true);
    for (const set of Object.values(spec.process.capabilities)) assert.deepEqual(set, []);
  });

  it('layers env: image, then function, then the runtime (which always wins)', () => {
    assert.deepEqual(buildSpec(specInput()).process.env, [
      'PATH=/bin', 'FOO=fn', 'BAR=image', 'PORT=20001', 'HOST=10.0.0.7', 'DIRIGENT_FUNCTION=fn', 'DIRIGENT_SANDBOX_ID=sb-1',
    ]);
  });

  it('gives a PATH when the image has none', () => {
    const image = { ...specInput().image, env: [] };
    assert.match(buildSpec(specInput({ image })).process.env[0], /^PATH=\/usr\/local\/sbin:/);
  });

  it('works in the image WorkingDir, the function workingDir, or /', () => {
    assert.equal(buildSpec(specInput()).process.cwd, '/www');
    const fn = { ...specInput().fn, workingDir: '/srv' };
    assert.equal(buildSpec(specInput({ fn })).process.cwd, '/srv');
    const image = { ...specInput().image, workingDir: '' };
    assert.equal(buildSpec(specInput({ image })).process.cwd, '/');
  });

  it('isolates pid, ipc, uts and mounts but shares the host network', () => {
    const types = buildSpec(specInput()).linux.namespaces.map((n) => n.type);
    assert.deepEqual(types.sort(), ['ipc', 'mount', 'pid', 'uts']);
  });

  it('limits cpu, memory, pids and /tmp', () => {
    const spec = buildSpec(specInput());
    assert.deepEqual(spec.linux.resources.cpu, { quota: 50_000, period: 100_000 });
    assert.deepEqual(spec.linux.resources.memory, { limit: 64 * 1024 * 1024 });
    assert.deepEqual(spec.linux.resources.pids, { limit: 128 });
    assert.deepEqual(spec.linux.resources.devices, [{ allow: false, access: 'rwm' }]);
    const tmp = spec.mounts.find((m) => m.destination === '/tmp');
    assert.ok(tmp?.options.includes('size=32m'));
    const sys = spec.mounts.find((m) => m.destination === '/sys');
    assert.ok(sys?.options.includes('ro'));
    assert.equal(spec.linux.cgroupsPath, 'dgabc/dgabc-sb-1');
    assert.ok(spec.linux.maskedPaths.includes('/proc/kcore'));
  });
});

describe('containerIdFor', () => {
  const hash = (s: string): string => `${s.length}`.padStart(40, 'f');
  it('prefixes a valid sandbox id with the owner', () => {
    assert.equal(containerIdFor('dgabc', 'sb-1.x_y', hash), 'dgabc-sb-1.x_y');
  });
  it('hashes ids containerd would refuse (doubled separators, too long)', () => {
    assert.equal(containerIdFor('dgabc', 'a--b', hash), `dgabc-h${hash('a--b').slice(0, 32)}`);
    assert.match(containerIdFor('dgabc', 'x'.repeat(100), hash), /^dgabc-hf{32}$/);
  });
});

describe('chainIds and gcLabels', () => {
  it('chain[0] is diff[0], then sha256 of "<chain> <diff>"', () => {
    assert.deepEqual(chainIds([]), []);
    assert.deepEqual(chainIds([a, b, c]), [
      a,
      'sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676',
      'sha256:2fce7f8ce91bcf0a1428b36e1024639fdbd9469eea762dba98aa749631885106',
    ]);
  });

  it('labels manifest -> config and layers, config -> top snapshot, layers -> uncompressed digest', () => {
    const desc = (digest: string) => ({ mediaType: 'm', digest, size: 1 });
    const image = {
      manifestDescriptor: desc('sha256:m'),
      manifest: { config: desc('sha256:c'), layers: [desc('sha256:l0'), desc('sha256:l1')] },
      config: { diffIds: [a, b] },
    } as unknown as CachedImage;
    const labels = gcLabels(image, 'sha256:top');
    assert.deepEqual(labels.get('sha256:m'), {
      'containerd.io/gc.ref.content.config': 'sha256:c',
      'containerd.io/gc.ref.content.l.0': 'sha256:l0',
      'containerd.io/gc.ref.content.l.1': 'sha256:l1',
    });
    assert.deepEqual(labels.get('sha256:c'), { 'containerd.io/gc.ref.snapshot.overlayfs': 'sha256:top' });
    assert.deepEqual(labels.get('sha256:l1'), { 'containerd.io/uncompressed': b });
  });
});

describe('task events', () => {
  it('filters exits and OOMs of our namespace', () => {
    assert.deepEqual(eventFilters('dirigent'), ['namespace==dirigent,topic=="/tasks/exit"', 'namespace==dirigent,topic=="/tasks/oom"']);
  });

  it('routes init exits and OOMs, ignores exec exits and other topics', () => {
    const heard: string[] = [];
    const handlers = { exit: (id: string, pid: number, status: number) => heard.push(`exit ${id} ${pid} ${status}`), oom: (id: string) => heard.push(`oom ${id}`) };
    const envelope = (topic: string, value: Uint8Array) => create(EnvelopeSchema, { topic, event: { typeUrl: 'x', value } });
    const exit = (id: string) => toBinary(TaskExitSchema, create(TaskExitSchema, { containerId: 'c1', id, pid: 77, exitStatus: 137 }));
    dispatchEnvelope(envelope('/tasks/oom', toBinary(TaskOOMSchema, create(TaskOOMSchema, { containerId: 'c1' }))), handlers);
    dispatchEnvelope(envelope('/tasks/exit', exit('exec-7')), handlers);
    dispatchEnvelope(envelope('/tasks/exit', exit('c1')), handlers);
    dispatchEnvelope(envelope('/tasks/start', exit('c1')), handlers);
    dispatchEnvelope(create(EnvelopeSchema, { topic: '/tasks/exit' }), handlers);
    assert.deepEqual(heard, ['oom c1', 'exit c1 77 137']);
  });
});

describe('daemon config and cgroup parents', () => {
  it('keeps every path under the given dir and disables CRI', () => {
    const toml = daemonConfigToml('/var/lib/w/containerd');
    assert.match(toml, /^root = "\/var\/lib\/w\/containerd\/root"$/m);
    assert.match(toml, /^ {2}address = "\/var\/lib\/w\/containerd\/containerd.sock"$/m);
    assert.match(toml, /"io.containerd.grpc.v1.cri"/);
  });

  it('finds the owner dir of every v1 hierarchy a container sits in', () => {
    const text = [
      '9:name=systemd:/w/dg1/dg1-sb',
      '4:memory:/w/dg1/dg1-sb',
      '2:cpu,cpuacct:/dg1/dg1-sb',
      '1:pids:/other',
      '0::/dg1/dg1-sb',
    ].join('\n');
    assert.deepEqual(cgroupParentDirs(text, 'dg1', 'dg1-sb'), [
      '/sys/fs/cgroup/systemd/w/dg1',
      '/sys/fs/cgroup/memory/w/dg1',
      '/sys/fs/cgroup/cpu,cpuacct/dg1',
      '/sys/fs/cgroup/unified/dg1',
    ]);
  });
});

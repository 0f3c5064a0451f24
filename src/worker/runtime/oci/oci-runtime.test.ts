/**
 * The oci runtime against real runc, umoci, skopeo and a real registry: the shared runtime
 * contract on the example image, then what only images have (sources, entrypoint and env,
 * the uid and limits seen from /proc, missing images, OOM kills, orphans of a dead worker).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { helloImageArchive, imageToolsMissing, TestRegistry } from '../../../integration/image-registry.js';
import { connectRefused, expectCreated, runRuntimeContract } from '../runtime.contract.js';
import {
  allocImageArchive,
  imageSpec,
  makeOciRuntime,
  variantImageArchive,
  type OciHarness,
} from './oci-runtime.testkit.js';

const toolsMissing = await imageToolsMissing(['runc', 'skopeo', 'umoci', 'docker-registry', 'busybox']);
const notRoot = process.getuid?.() === 0 ? undefined : 'needs root (runc containers, overlay mounts)';
if (notRoot && process.env.CI === 'true') throw new Error(`CI: ${notRoot}`);
const skip = toolsMissing ?? notRoot;
const archive = skip ? '' : await helloImageArchive();
const helloImage = `oci-archive:${archive}`;
const testTimeoutMs = 60_000;

runRuntimeContract(
  'oci',
  async () => {
    const h = await makeOciRuntime();
    return { runtime: h.runtime, fnSpec: (name) => imageSpec(name, helloImage), cleanup: h.cleanup };
  },
  { skip },
);

async function post(address: string, body: string): Promise<{ status: number; text: string }> {
  const r = await request(`http://${address}/`, { method: 'POST', body, headersTimeout: 5_000, bodyTimeout: 5_000 });
  return { status: r.statusCode, text: await r.body.text() };
}

/** Fields of /proc/<pid>/status, e.g. Uid, CapEff, NoNewPrivs. */
async function procStatus(pid: number): Promise<Map<string, string>> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  return new Map(text.split('\n').map((line) => [line.split(':')[0], line.slice(line.indexOf(':') + 1).trim()]));
}

/** A v1 controller's file for the cgroup a process is in (host view). */
async function cgroupFile(pid: number, controller: string, file: string): Promise<string> {
  const lines = (await readFile(`/proc/${pid}/cgroup`, 'utf8')).split('\n');
  const line = lines.find((l) => l.split(':')[1]?.split(',').includes(controller));
  assert.ok(line, `pid ${pid} has no ${controller} cgroup`);
  return (await readFile(`/sys/fs/cgroup/${controller}${line.split(':')[2]}/${file}`, 'utf8')).trim();
}

describe('oci runtime with images', { skip, timeout: 180_000 }, () => {
  const registry = new TestRegistry();
  let pushed = '';
  let h: OciHarness;
  before(async () => {
    await registry.start();
    pushed = await registry.push(archive, 'hello:1');
  });
  after(() => registry.stop());
  const fresh = async (): Promise<OciHarness> => (h = await makeOciRuntime());
  const done = async (): Promise<void> => {
    await h.runtime.close();
    assert.equal(h.uids.inUse(), 0, 'uids released');
    assert.equal(h.ports.freeCount, h.ports.size, 'ports released');
    await h.cleanup();
  };

  it('runs an image from the registry and from an OCI archive, entrypoint and env honoured', { timeout: testTimeoutMs }, async () => {
    await fresh();
    try {
      for (const [id, image] of [['sb-reg', pushed], ['sb-tar', helloImage]] as const) {
        const sandbox = expectCreated(await h.runtime.create({ sandboxId: id, fn: imageSpec(`fn-${id}`, image) }));
        const answer = await post(sandbox.address, 'ping');
        assert.equal(answer.status, 200);
        assert.equal(answer.text.trim(), `Hello from fn-${id}! ping`);
      }
    } finally {
      await done();
    }
  });

  it('unpacks an image once for concurrent creates, and leaves the unpacked root untouched', { timeout: testTimeoutMs }, async () => {
    await fresh();
    try {
      const ids = ['sb-a', 'sb-b', 'sb-c'];
      const results = await Promise.all(ids.map((sandboxId) => h.runtime.create({ sandboxId, fn: imageSpec('f', helloImage) })));
      results.forEach(expectCreated);
      assert.equal(h.logs.filter((l) => l.event === 'image.unpacked').length, 1);
      const unpacked = (await readdir(join(h.stateDir, 'rootfs'))).filter((name) => !name.startsWith('.'));
      assert.equal(unpacked.length, 1);
      // runc made its mount points (/proc, /dev, /etc/resolv.conf...) in each sandbox's upper layer.
      assert.deepEqual((await readdir(join(h.stateDir, 'rootfs', unpacked[0], 'rootfs'))).sort(), ['bin', 'tmp', 'www']);
    } finally {
      await done();
    }
  });

  it('runs as the pool uid, without capabilities, under its limits', { timeout: testTimeoutMs }, async () => {
    await fresh();
    try {
      const fn = imageSpec('limited', helloImage, { resources: { cpuMillis: 500, memoryMiB: 48 } });
      const sandbox = expectCreated(await h.runtime.create({ sandboxId: 'sb-1', fn }));
      assert.ok(sandbox.pid !== undefined && sandbox.pid > 1);
      const status = await procStatus(sandbox.pid);
      const [uid] = (status.get('Uid') ?? '').split(/\s+/).map(Number);
      assert.ok(uid >= h.uids.ranges.noEgress[0] && uid <= h.uids.ranges.noEgress[1], `uid ${uid} from the pool`);
      assert.equal(status.get('Uid'), `${uid}\t${uid}\t${uid}\t${uid}`);
      assert.equal(status.get('CapEff'), '0000000000000000');
      assert.equal(status.get('CapBnd'), '0000000000000000');
      assert.equal(status.get('NoNewPrivs'), '1');
      assert.equal(await cgroupFile(sandbox.pid, 'memory', 'memory.limit_in_bytes'), String(48 * 1_048_576));
      assert.equal(await cgroupFile(sandbox.pid, 'cpu', 'cpu.cfs_quota_us'), '50000');
      assert.equal(await cgroupFile(sandbox.pid, 'pids', 'pids.max'), '512');
    } finally {
      await done();
    }
  });

  it('starts a small function at the start-up CPU boost and drops it to its own quota once ready', { timeout: testTimeoutMs }, async () => {
    h = await makeOciRuntime({ startupCpuMillis: 1000 });
    try {
      const fn = imageSpec('small', helloImage, { resources: { cpuMillis: 10, memoryMiB: 48 } });
      const sandbox = expectCreated(await h.runtime.create({ sandboxId: 'sb-1', fn }));
      const spec = JSON.parse(await readFile(join(h.stateDir, 'bundles', 'sb-1', 'config.json'), 'utf8')) as
        { linux: { resources: { cpu: { quota: number } } } };
      assert.equal(spec.linux.resources.cpu.quota, 100_000, 'one core while it starts');
      assert.equal(await cgroupFile(sandbox.pid!, 'cpu', 'cpu.cfs_quota_us'), '1000', '10 milli-CPU once ready');
    } finally {
      await done();
    }
  });

  it('fails the create of a missing image with a reason naming it, and frees everything', { timeout: testTimeoutMs }, async () => {
    await fresh();
    try {
      const missing = `${registry.address}/nope:1`;
      const r = await h.runtime.create({ sandboxId: 'sb-1', fn: imageSpec('f', missing) });
      assert.equal(r.ok, false);
      assert.match(r.ok ? '' : r.reason, /nope/);
      assert.deepEqual(h.runtime.list(), []);
    } finally {
      await done();
    }
  });

  it('fails the create of an image whose entrypoint is missing with runc\'s reason', { timeout: testTimeoutMs }, async () => {
    await fresh();
    const variant = await variantImageArchive(archive, ['/bin/nope'], []);
    try {
      const r = await h.runtime.create({ sandboxId: 'sb-1', fn: imageSpec('f', `oci-archive:${variant.archive}`) });
      assert.equal(r.ok, false);
      assert.match(r.ok ? '' : r.reason, /^exited during start: exit code \d+: .*\/bin\/nope/);
      assert.doesNotMatch(r.ok ? '' : r.reason, /level=error/, "runc's log decoration stripped");
      assert.deepEqual(h.runtime.list(), []);
    } finally {
      await done();
      await variant.remove();
    }
  });

  it('reports an OOM kill at the memory limit as the exit reason', { timeout: testTimeoutMs }, async () => {
    await fresh();
    const alloc = await allocImageArchive(archive);
    try {
      const exits: string[] = [];
      h.runtime.onExit((id, reason) => exits.push(`${id}: ${reason}`));
      const env = { ALLOC_AFTER_S: '1', ALLOC_MIB: '256' };
      const fn = imageSpec('hog', `oci-archive:${alloc.archive}`, { env, resources: { cpuMillis: 1000, memoryMiB: 32 } });
      const sandbox = expectCreated(await h.runtime.create({ sandboxId: 'sb-hog', fn }));
      await waitUntil(() => exits.length > 0, 20_000);
      assert.deepEqual(exits, ['sb-hog: out of memory: killed at its 32 MiB limit']);
      assert.deepEqual(h.runtime.list(), []);
      assert.equal(await connectRefused(sandbox.address), true);
    } finally {
      await done();
      await alloc.remove();
    }
  });

  it('reaps the containers and mounts a dead worker left on its state dir', { timeout: testTimeoutMs }, async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'dirigent-oci-orphans-'));
    const worker = await deadWorker(stateDir, helloImage);
    try {
      h = await makeOciRuntime({ stateDir });
      assert.deepEqual(await h.runtime.orphansReaped, { containers: 1, mounts: 1 });
      assert.equal(await connectRefused(worker.address), true);
      await done();
    } finally {
      if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});

/**
 * A worker process that created one sandbox on `stateDir` and was then SIGKILLed: its runc and
 * container live on, its overlay stays mounted.
 */
async function deadWorker(stateDir: string, image: string): Promise<{ child: ChildProcess; address: string }> {
  const testkit = new URL('./oci-runtime.testkit.js', import.meta.url).href;
  const code = [
    `const { makeOciRuntime, imageSpec } = await import(${JSON.stringify(testkit)});`,
    `const stateDir = ${JSON.stringify(stateDir)};`,
    "const h = await makeOciRuntime({ stateDir, imageCacheDir: stateDir + '/images' });",
    `const r = await h.runtime.create({ sandboxId: 'sb-1', fn: imageSpec('f', ${JSON.stringify(image)}) });`,
    "console.log(r.ok ? r.sandbox.address : 'failed: ' + r.reason);",
    'setInterval(() => {}, 1000);',
  ].join('\n');
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
    child.once('exit', (code) => reject(new Error(`worker exited ${code}`)));
  });
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  assert.match(line, /^127\.0\.0\.1:\d+$/);
  return { child, address: line };
}

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

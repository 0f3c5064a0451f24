/**
 * The containerd runtime against a real, private containerd (one per test file) and the example
 * image: the shared runtime contract, then what only an image runtime has to get right.
 * Ports 30500-30899 belong to this file (below the kernel's ephemeral range).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { helloImageArchive, imageToolsMissing, TestRegistry } from '../../../integration/image-registry.js';
import { connectRefused, expectCreated, runRuntimeContract } from '../runtime.contract.js';
import { ContainerdFixture, imageSpec, imageTools, procCgroups, procStatus } from './containerd.testkit.js';

const skip = await imageToolsMissing(imageTools);
const fixture = new ContainerdFixture([30_500, 30_899]);
let archive = '';
const t = { timeout: 60_000 };

before(async () => {
  if (skip) return;
  archive = await helloImageArchive();
  await fixture.start();
});
after(() => fixture.stop());

runRuntimeContract(
  'containerd',
  async () => {
    const h = await fixture.runtime();
    return { runtime: h.runtime, fnSpec: (name) => imageSpec(name, `oci-archive:${archive}`), cleanup: h.cleanup };
  },
  { skip },
);

describe('containerd runtime', { skip }, () => {
  it('runs the image entrypoint with the function env, answering on HOST:PORT', t, async () => {
    const h = await fixture.runtime();
    try {
      const fn = imageSpec('greeter', `oci-archive:${archive}`, { GREETING: 'hi' });
      const sb = expectCreated(await h.runtime.create({ sandboxId: 'sb-env', fn }));
      assert.equal(await post(sb.address, 'world'), 'Hello from greeter! world\n');
      const env = (await readFile(`/proc/${sb.pid}/environ`, 'utf8')).split('\0');
      const port = sb.address.split(':')[1];
      for (const entry of ['PATH=/bin', 'GREETING=hi', `PORT=${port}`, 'HOST=127.0.0.1', 'DIRIGENT_FUNCTION=greeter', 'DIRIGENT_SANDBOX_ID=sb-env']) {
        assert.ok(env.includes(entry), `${entry} in ${env.join(' ')}`);
      }
    } finally {
      await h.cleanup();
    }
  });

  it('runs as the pool uid without capabilities, with no_new_privs and its limits', t, async () => {
    const h = await fixture.runtime();
    try {
      const sb = expectCreated(await h.runtime.create({ sandboxId: 'sb-priv', fn: imageSpec('f', `oci-archive:${archive}`) }));
      const status = await procStatus(sb.pid!);
      const uid = Number(status.Uid?.split(/\s+/)[0]);
      assert.ok(uid >= 3_300_000 && uid < 3_310_000, `pool uid, got ${status.Uid}`);
      assert.equal(status.CapEff, '0000000000000000');
      assert.equal(status.CapBnd, '0000000000000000');
      assert.equal(status.NoNewPrivs, '1');
      const cgroups = await procCgroups(sb.pid!);
      const own = await procCgroups('self');
      const memory = cgroups.get('memory')!;
      assert.ok(memory.startsWith(own.get('memory')!), `${memory} below the worker's ${own.get('memory')}`);
      const limit = await readFile(`/sys/fs/cgroup/memory${memory}/memory.limit_in_bytes`, 'utf8');
      assert.equal(Number(limit), 64 * 1024 * 1024);
      const quota = await readFile(`/sys/fs/cgroup/cpu${cgroups.get('cpu')}/cpu.cfs_quota_us`, 'utf8');
      assert.equal(Number(quota), 50_000);
      const pids = await readFile(`/sys/fs/cgroup/pids${cgroups.get('pids')}/pids.max`, 'utf8');
      assert.equal(pids.trim(), '64');
    } finally {
      await h.cleanup();
    }
  });

  it('starts a small function at the start-up CPU boost and drops it to its own quota once ready', t, async () => {
    const h = await fixture.runtime({ startupCpuMillis: 1000 });
    try {
      const fn = imageSpec('f', `oci-archive:${archive}`);
      fn.resources = { cpuMillis: 10, memoryMiB: 64 };
      const sb = expectCreated(await h.runtime.create({ sandboxId: 'sb-boost', fn }));
      const cgroups = await procCgroups(sb.pid!);
      const quota = await readFile(`/sys/fs/cgroup/cpu${cgroups.get('cpu')}/cpu.cfs_quota_us`, 'utf8');
      assert.equal(Number(quota), 1_000, '10 milli-CPU once ready');
      // The update touched the CPU alone: the memory and pids limits still hold.
      const limit = await readFile(`/sys/fs/cgroup/memory${cgroups.get('memory')}/memory.limit_in_bytes`, 'utf8');
      assert.equal(Number(limit), 64 * 1024 * 1024);
      assert.equal((await readFile(`/sys/fs/cgroup/pids${cgroups.get('pids')}/pids.max`, 'utf8')).trim(), '64');
    } finally {
      await h.cleanup();
    }
  });

  it('removes its cgroup parents on close', t, async () => {
    const h = await fixture.runtime();
    let parentDirs: string[] = [];
    try {
      const sb = expectCreated(await h.runtime.create({ sandboxId: 'sb-cg', fn: imageSpec('f', `oci-archive:${archive}`) }));
      const cgroups = await procCgroups(sb.pid!);
      const memory = cgroups.get('memory')!;
      const unified = cgroups.get('')!;
      parentDirs = [
        `/sys/fs/cgroup/memory${memory.slice(0, memory.lastIndexOf('/'))}`,
        `/sys/fs/cgroup/unified${unified.slice(0, unified.lastIndexOf('/'))}`,
      ];
      for (const dir of parentDirs) assert.equal(existsSync(dir), true, dir);
    } finally {
      await h.cleanup();
    }
    for (const dir of parentDirs) assert.equal(existsSync(dir), false, `${dir} left behind`);
  });

  it('pulls the image from a registry', t, async () => {
    const registry = new TestRegistry();
    const h = await fixture.runtime();
    try {
      await registry.start();
      const ref = await registry.push(archive, 'hello:1');
      const sb = expectCreated(await h.runtime.create({ sandboxId: 'sb-reg', fn: imageSpec('from-registry', ref) }));
      assert.equal(await post(sb.address, 'x'), 'Hello from from-registry! x\n');
    } finally {
      await h.cleanup();
      await registry.stop();
    }
  });

  it('fails the create of a missing image, naming it', t, async () => {
    const h = await fixture.runtime();
    try {
      const result = await h.runtime.create({ sandboxId: 'sb-missing', fn: imageSpec('f', 'oci-archive:/nonexistent/hello.tar') });
      assert.equal(result.ok, false);
      assert.match(!result.ok ? result.reason : '', /oci-archive:\/nonexistent\/hello\.tar/);
      assert.deepEqual(h.runtime.list(), []);
    } finally {
      await h.cleanup();
    }
  });

  it('fails a create whose process exits during start, quoting its last output line', t, async () => {
    const h = await fixture.runtime();
    try {
      // It lives a moment after printing: output of a process that exits at once can be lost before
      // containerd's shim copies it (seen under load: the log file stayed empty for seconds).
      const image = `oci-archive:${await variantArchive(archive, fixture.dir, 'quitter', 'echo boom >&2; sleep 0.3; exit 3')}`;
      const result = await h.runtime.create({ sandboxId: 'sb-quit', fn: imageSpec('f', image) });
      assert.deepEqual(result, { ok: false, reason: 'exited during start: exit code 3: boom' });
      assert.deepEqual(h.runtime.list(), []);
    } finally {
      await h.cleanup();
    }
    // No sandbox ever became ready; the cgroup parent runc made is gone all the same.
    const owner = `dg${createHash('sha256').update(h.stateDir).digest('hex').slice(0, 10)}`;
    const ownMemory = (await procCgroups('self')).get('memory')!;
    assert.equal(existsSync(`/sys/fs/cgroup/memory${ownMemory}/${owner}`), false);
  });

  it('a deleted task\'s late exit event does not hit the re-created sandbox of the same id', t, async () => {
    const h = await fixture.runtime();
    try {
      const exits: string[] = [];
      h.runtime.onExit((id, reason) => exits.push(`${id}: ${reason}`));
      const fn = imageSpec('f', `oci-archive:${archive}`);
      for (let i = 0; i < 8; i++) {
        expectCreated(await h.runtime.create({ sandboxId: 'sb-again', fn }));
        await h.runtime.delete('sb-again');
      }
      const sb = expectCreated(await h.runtime.create({ sandboxId: 'sb-again', fn }));
      await new Promise((done) => setTimeout(done, 300));
      assert.deepEqual(exits, []);
      assert.deepEqual(h.runtime.list().map((s) => s.sandboxId), ['sb-again']);
      assert.equal(await post(sb.address, ''), 'Hello from f! \n');
    } finally {
      await h.cleanup();
    }
  });

  it('reports a crash to onExit listeners and frees the sandbox', t, async () => {
    const h = await fixture.runtime();
    try {
      const exits: string[] = [];
      const heard = new Promise<void>((done) => h.runtime.onExit((id, reason) => {
        exits.push(`${id}: ${reason}`);
        done();
      }));
      const sb = expectCreated(await h.runtime.create({ sandboxId: 'sb-crash', fn: imageSpec('f', `oci-archive:${archive}`) }));
      process.kill(sb.pid!, 'SIGKILL');
      await heard;
      assert.deepEqual(exits, ['sb-crash: signal 9']);
      assert.deepEqual(h.runtime.list(), []);
      expectCreated(await h.runtime.create({ sandboxId: 'sb-crash', fn: imageSpec('f', `oci-archive:${archive}`) }));
    } finally {
      await h.cleanup();
    }
  });

  it('notices a crash that happened while containerd was down', t, async () => {
    const h = await fixture.runtime();
    try {
      const exits: string[] = [];
      const heard = new Promise<void>((done) => h.runtime.onExit((id, reason) => {
        exits.push(`${id}: ${reason}`);
        done();
      }));
      const sb = expectCreated(await h.runtime.create({ sandboxId: 'sb-gap', fn: imageSpec('f', `oci-archive:${archive}`) }));
      await fixture.daemon!.stop();
      process.kill(sb.pid!, 'SIGKILL');
      // The shim keeps retrying its exit report (for ~20 s), so a short outage loses nothing.
      await new Promise((done) => setTimeout(done, 1_500));
      await fixture.restartDaemon();
      await heard;
      assert.deepEqual(exits, ['sb-gap: signal 9']);
    } finally {
      await h.cleanup();
    }
  });

  it('names an OOM kill as the crash reason', t, async () => {
    const h = await fixture.runtime();
    try {
      const cmd = 'httpd -p "$HOST:$PORT" -h /www && while [ ! -e /tmp/go ]; do :; done; x=$(cat /dev/urandom)';
      const image = `oci-archive:${await variantArchive(archive, fixture.dir, 'eater', cmd)}`;
      const exits: string[] = [];
      const heard = new Promise<void>((done) => h.runtime.onExit((id, reason) => {
        exits.push(`${id}: ${reason}`);
        done();
      }));
      const sb = expectCreated(await h.runtime.create({ sandboxId: 'sb-oom', fn: imageSpec('f', image) }));
      await writeFile(`/proc/${sb.pid}/root/tmp/go`, '');
      await heard;
      assert.deepEqual(exits, ['sb-oom: out of memory: killed at its 64 MiB limit']);
    } finally {
      await h.cleanup();
    }
  });

  it('removes the containers a previous run on the same state dir left, and nobody else\'s', t, async () => {
    const previous = await fixture.runtime();
    const bystander = await fixture.runtime();
    const fn = imageSpec('f', `oci-archive:${archive}`);
    try {
      const left = expectCreated(await previous.runtime.create({ sandboxId: 'sb-left', fn }));
      const other = expectCreated(await bystander.runtime.create({ sandboxId: 'sb-left', fn }));
      // A new runtime on the previous one's state dir, as after a worker restart.
      const next = await fixture.runtime({ stateDir: previous.stateDir });
      try {
        expectCreated(await next.runtime.create({ sandboxId: 'sb-new', fn }));
        assert.equal(await connectRefused(left.address), true, 'the leftover is gone');
        assert.equal(await post(other.address, ''), 'Hello from f! \n');
      } finally {
        await next.runtime.close();
      }
    } finally {
      await previous.cleanup();
      await bystander.cleanup();
    }
  });

  it('fails creates with the reason when its private containerd cannot start', t, async () => {
    const stateDir = join(fixture.dir, 'x'.repeat(100));
    const h = await fixture.runtime({ socket: '', stateDir });
    try {
      const result = await h.runtime.create({ sandboxId: 'sb-1', fn: imageSpec('f', `oci-archive:${archive}`) });
      assert.equal(result.ok, false);
      assert.match(!result.ok ? result.reason : '', /^containerd runtime start failed: state dir too long/);
    } finally {
      await h.cleanup();
    }
  });

  it('starts and stops its own private containerd when given no socket', t, async () => {
    const h = await fixture.runtime({ socket: '' });
    try {
      const fn = imageSpec('own', `oci-archive:${archive}`);
      const results = await Promise.all(['sb-a', 'sb-b', 'sb-c'].map((sandboxId) => h.runtime.create({ sandboxId, fn })));
      const sb = results.map(expectCreated)[0];
      assert.equal(await post(sb.address, ''), 'Hello from own! \n');
      // A fresh containerd: the image was loaded once, by one import all three creates shared.
      assert.equal(h.logs.filter((l) => l.event === 'image.imported').length, 1);
    } finally {
      await h.cleanup();
    }
  });
});

/**
 * The example image with `sh -c <cmd>` as its command, as an OCI archive. The OOM test's command
 * starts httpd in the background, then, once /tmp/go exists, the shell (pid 1 of the container)
 * reads random bytes into a variable until the OOM killer comes.
 */
async function variantArchive(helloArchive: string, dir: string, name: string, cmd: string): Promise<string> {
  const run = promisify(execFile);
  const layout = join(dir, `${name}-layout`);
  const out = join(dir, `${name}.tar`);
  await run('skopeo', ['copy', '--quiet', `oci-archive:${helloArchive}`, `oci:${layout}:hello`]);
  await run('umoci', ['config', '--image', `${layout}:hello`, '--tag', name, '--config.cmd', '-c', '--config.cmd', cmd]);
  await run('skopeo', ['copy', '--quiet', `oci:${layout}:${name}`, `oci-archive:${out}`]);
  return out;
}

/** POST / with a body; resolves with the answer's body. */
function post(address: string, body: string): Promise<string> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), method: 'POST', path: '/', agent: false, timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString()));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`POST ${address} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

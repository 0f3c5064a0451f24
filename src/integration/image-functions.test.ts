/**
 * Goal: issue 9 part 3 from outside. The same image function (examples/hello-image) deployed on
 * a real cluster answers through the data plane on a worker with the oci runtime (next to the
 * process runtime: one worker, two runtimes) and on a worker with the containerd runtime; from
 * a registry and from an OCI archive; and a command function still runs beside it.
 * Method: real CP, DP and worker processes on loopback, a real docker-registry, runc and a
 * private containerd started by the worker itself.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fixture, TestCluster } from './harness.js';
import { helloImageArchive, imageToolsMissing, TestRegistry } from './image-registry.js';

const skip = await imageToolsMissing(['runc', 'containerd', 'skopeo', 'umoci', 'docker-registry', 'busybox', 'bwrap', 'nft']);

for (const runtime of ['process,oci', 'containerd']) {
  describe(`image functions on a cluster whose worker runs ${runtime}`, { skip, timeout: 180_000 }, () => {
    const registry = new TestRegistry();
    const c = new TestCluster({ workers: 1, runtime });
    let archive = '';
    let pushed = '';
    before(async () => {
      archive = await helloImageArchive();
      await registry.start();
      pushed = await registry.push(archive, 'hello:1');
      await c.start();
    });
    after(async () => {
      await c.stop();
      await registry.stop();
    });

    it('a function from the registry answers through the data plane, entrypoint and env honoured', async () => {
      const r = await c.deploy({ name: 'img-reg', image: pushed });
      assert.equal(r.status, 201, r.text);
      const answer = await c.invoke('img-reg', { body: 'world' });
      assert.equal(answer.status, 200, `${answer.text}\n${c.dumpLogs()}`);
      assert.equal(answer.text.trim(), 'Hello from img-reg! world');
      assert.equal(answer.headers['x-dirigent-cold-start'], 'true');
      const warm = await c.invoke('img-reg', { body: 'again' });
      assert.equal(warm.text.trim(), 'Hello from img-reg! again');
    });

    it('a function from an OCI archive answers too', async () => {
      const r = await c.deploy({ name: 'img-tar', image: `oci-archive:${archive}` });
      assert.equal(r.status, 201, r.text);
      const answer = await c.invoke('img-tar', { body: 'x' });
      assert.equal(answer.status, 200, `${answer.text}\n${c.dumpLogs()}`);
      assert.equal(answer.text.trim(), 'Hello from img-tar! x');
    });

    it('an image that does not exist fails its invocation with the reason, not a hang', async () => {
      const r = await c.deploy({ name: 'img-none', image: `${registry.address}/nope:1`, timeoutMs: 20_000 });
      assert.equal(r.status, 201, r.text);
      const answer = await c.invoke('img-none', { body: 'x' });
      assert.notEqual(answer.status, 200, answer.text);
    });

    it(runtime.includes('process') ? 'a command function runs beside the images' : 'a command function is unschedulable here, and says which runtime to start', async () => {
      const r = await c.deploy({ name: 'cmd', command: ['node', fixture('echo-server.js')] });
      assert.equal(r.status, 201, r.text);
      const answer = await c.invoke('cmd', { body: 'hi' });
      if (runtime.includes('process')) {
        assert.equal(answer.status, 200, answer.text);
      } else {
        assert.equal(answer.status, 503, answer.text);
        assert.match(answer.text, /without the process runtime \(start workers with --runtime process\)/);
      }
    });
  });
}

/**
 * Image cache against real tools: the example image built with umoci, pushed to a real
 * docker-registry on loopback, then fetched by tag, by digest and from the archive.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../../../shared/clock.js';
import { silentLogger } from '../../../shared/logger.js';
import { helloImageArchive, imageToolsMissing, TestRegistry } from '../../../integration/image-registry.js';
import { ImageCache } from './image-cache.js';

const skip = await imageToolsMissing(['skopeo', 'umoci', 'docker-registry', 'busybox']);

describe('image cache', { skip, timeout: 120_000 }, () => {
  const registry = new TestRegistry();
  let archive = '';
  let cacheDir = '';
  let pushed = '';
  before(async () => {
    archive = await helloImageArchive();
    await registry.start();
    pushed = await registry.push(archive, 'hello:1');
    cacheDir = await mkdtemp(join(tmpdir(), 'dirigent-image-cache-'));
  });
  after(async () => {
    await registry.stop();
    await rm(cacheDir, { recursive: true, force: true });
  });
  const cache = (): ImageCache =>
    new ImageCache({ cacheDir, insecureRegistries: [], clock: systemClock, logger: silentLogger });

  it('fetches a registry image once, with its entrypoint and env', async () => {
    const c = cache();
    const [a, b] = await Promise.all([c.get(pushed), c.get(pushed)]);
    assert.ok(a.ok && b.ok, a.ok ? '' : a.reason);
    assert.equal(a.image.layoutDir, b.image.layoutDir);
    assert.deepEqual(a.image.config.entrypoint, ['/bin/sh']);
    assert.ok(a.image.config.env.includes('PATH=/bin'));
    assert.equal(a.image.manifest.layers.length, 1);
    assert.equal(a.image.config.diffIds.length, 1);
    assert.equal((await readdir(join(cacheDir, 'layouts'))).length, 1);
  });

  it('fetches the same image from its OCI archive', async () => {
    const r = await cache().get(`oci-archive:${archive}`);
    assert.ok(r.ok, r.ok ? '' : r.reason);
    assert.deepEqual(r.image.config.entrypoint, ['/bin/sh']);
  });

  it('says why when the image does not exist', async () => {
    const r = await cache().get(`${registry.address}/nope:1`);
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.reason, /nope/);
  });

  it('refuses a malformed reference without running skopeo', async () => {
    const r = await cache().get('oci-archive:relative.tar');
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.reason, /absolute/);
  });
});

/**
 * @module worker/runtime/containerd/image-import
 * Loads an image from the worker's image cache (an OCI layout) into containerd, once per digest:
 *
 *   Leases.Create                          everything below is kept while we work
 *   Content.Write  manifest, config, layers (GC labels: manifest -> config, layers; config -> top snapshot)
 *   Images.Create  name = canonical ref, target = manifest   (the GC root of all of the above)
 *   per layer i:   Snapshots.Prepare(parent = chain[i-1]) -> Diff.Apply(layer) -> Snapshots.Commit(chain[i])
 *   Leases.Delete
 *
 * Concurrent ensure() calls for one digest share one import; a blob or snapshot already in
 * containerd (a previous run, another image sharing a layer) is not written again.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Content, WriteAction } from '../../../gen/containerd/services/content/v1/content_pb.js';
import { Diff } from '../../../gen/containerd/services/diff/v1/diff_pb.js';
import { Images } from '../../../gen/containerd/services/images/v1/images_pb.js';
import { Leases } from '../../../gen/containerd/services/leases/v1/leases_pb.js';
import { Snapshots } from '../../../gen/containerd/services/snapshots/v1/snapshots_pb.js';
import type { Clock } from '../../../shared/clock.js';
import type { Logger } from '../../../shared/logger.js';
import { blobPath, type CachedImage, type OciDescriptor } from '../image/image-cache.js';
import { isAlreadyExists, isNotFound, type ContainerdClient } from './client.js';

export const snapshotter = 'overlayfs';
/** Bytes per Content.Write message (containerd's own client uses 1 MiB too). */
const writeChunkBytes = 1024 * 1024;
/** An import lease outlives a crashed worker by this much, then containerd collects it. */
const importLeaseExpireMs = 3_600_000;

/** containerd's chain ids: chain[0] = diff[0], chain[i] = sha256(chain[i-1] + " " + diff[i]). */
export function chainIds(diffIds: readonly string[]): string[] {
  const chain: string[] = [];
  for (const diffId of diffIds) {
    const prev = chain.at(-1);
    chain.push(prev === undefined ? diffId : `sha256:${createHash('sha256').update(`${prev} ${diffId}`).digest('hex')}`);
  }
  return chain;
}

/** GC labels per blob digest, so containerd keeps what the image needs. Pure. */
export function gcLabels(image: CachedImage, topChainId: string): Map<string, Record<string, string>> {
  const labels = new Map<string, Record<string, string>>();
  const manifest: Record<string, string> = { 'containerd.io/gc.ref.content.config': image.manifest.config.digest };
  image.manifest.layers.forEach((layer, i) => (manifest[`containerd.io/gc.ref.content.l.${i}`] = layer.digest));
  labels.set(image.manifestDescriptor.digest, manifest);
  if (topChainId !== '') {
    labels.set(image.manifest.config.digest, { [`containerd.io/gc.ref.snapshot.${snapshotter}`]: topChainId });
  }
  image.manifest.layers.forEach((layer, i) => {
    const diffId = image.config.diffIds[i];
    if (diffId !== undefined) labels.set(layer.digest, { 'containerd.io/uncompressed': diffId });
  });
  return labels;
}

export class ImageImporter {
  private readonly imported = new Map<string, string>();
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(
    private readonly client: ContainerdClient,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** The top chain id (snapshot parent of a sandbox) of the image, importing it if needed. */
  ensure(image: CachedImage): Promise<string> {
    const done = this.imported.get(image.digest);
    if (done !== undefined) return Promise.resolve(done);
    const running = this.inflight.get(image.digest);
    if (running) return running;
    const importing = this.importImage(image)
      .then((top) => {
        this.imported.set(image.digest, top);
        return top;
      })
      .finally(() => this.inflight.delete(image.digest));
    this.inflight.set(image.digest, importing);
    return importing;
  }

  /** Called when containerd lost an image we thought imported (someone removed it). */
  forget(digest: string): void {
    this.imported.delete(digest);
  }

  private async importImage(image: CachedImage): Promise<string> {
    const t0Ms = this.clock.nowMs();
    const { diffIds } = image.config;
    if (diffIds.length !== image.manifest.layers.length) {
      throw new Error(`image ${image.ref}: ${image.manifest.layers.length} layers but ${diffIds.length} diff ids`);
    }
    const chain = chainIds(diffIds);
    const top = chain.at(-1) ?? '';
    const lease = `dirigent-import-${randomBytes(6).toString('hex')}`;
    const expireAt = new Date(this.clock.wallMs() + importLeaseExpireMs).toISOString();
    await this.client.unary(Leases.method.create, { id: lease, labels: { 'containerd.io/gc.expire': expireAt } });
    try {
      const labels = gcLabels(image, top);
      const blobs = [image.manifestDescriptor, image.manifest.config, ...image.manifest.layers];
      for (const blob of blobs) await this.writeBlob(image, blob, labels.get(blob.digest) ?? {}, lease);
      await this.createImage(image, lease);
      for (let i = 0; i < chain.length; i++) {
        await this.unpackLayer(image.manifest.layers[i], diffIds[i], chain[i], chain[i - 1] ?? '', lease);
      }
    } finally {
      await this.client.unary(Leases.method.delete, { id: lease }).catch((err: Error) => {
        this.log.warn('containerd.lease_delete_failed', { lease, err: err.message });
      });
    }
    const importMs = this.clock.nowMs() - t0Ms;
    this.log.info('image.imported', { image: image.ref, digest: image.digest, layers: chain.length, importMs });
    return top;
  }

  /** Streams one blob into the content store unless it is there already. */
  private async writeBlob(image: CachedImage, blob: OciDescriptor, labels: Record<string, string>, lease: string): Promise<void> {
    try {
      await this.client.unary(Content.method.info, { digest: blob.digest });
      return;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const ref = `dirigent-${blob.digest}-${randomBytes(4).toString('hex')}`;
    const stream = this.client.bidi(Content.method.write, { lease });
    const answers = stream[Symbol.asyncIterator]();
    const exchange = async (req: Parameters<typeof stream.write>[0]): Promise<void> => {
      stream.write(req);
      const answer = await answers.next();
      if (answer.done) throw new Error(`content write of ${blob.digest} ended early`);
    };
    const base = { ref, total: BigInt(blob.size), expected: blob.digest };
    try {
      await exchange({ ...base, action: WriteAction.STAT });
      let offset = 0;
      const file = createReadStream(blobPath(image.layoutDir, blob.digest), { highWaterMark: writeChunkBytes });
      for await (const chunk of file as AsyncIterable<Buffer>) {
        await exchange({ ...base, action: WriteAction.WRITE, offset: BigInt(offset), data: chunk });
        offset += chunk.length;
      }
      await exchange({ ...base, action: WriteAction.COMMIT, offset: BigInt(offset), labels });
    } catch (err) {
      if (!isAlreadyExists(err)) throw err; // a concurrent writer committed the same blob first
    } finally {
      stream.end();
      stream.cancel();
    }
  }

  private async createImage(image: CachedImage, lease: string): Promise<void> {
    const { mediaType, digest, size } = image.manifestDescriptor;
    const record = { name: image.ref, target: { mediaType, digest, size: BigInt(size) } };
    try {
      await this.client.unary(Images.method.create, { image: record }, { lease });
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      // The tag moved to this digest: point the name at it (replaces target and labels).
      await this.client.unary(Images.method.update, { image: record }, { lease });
    }
  }

  private async unpackLayer(layer: OciDescriptor, diffId: string, chainId: string, parent: string, lease: string): Promise<void> {
    try {
      await this.client.unary(Snapshots.method.stat, { snapshotter, key: chainId });
      return;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const key = `dirigent-extract-${randomBytes(6).toString('hex')}-${chainId}`;
    const prepared = await this.client.unary(Snapshots.method.prepare, { snapshotter, key, parent }, { lease });
    try {
      const diff = { mediaType: layer.mediaType, digest: layer.digest, size: BigInt(layer.size) };
      const applied = await this.client.unary(Diff.method.apply, { diff, mounts: prepared.mounts }, { lease });
      if (applied.applied?.digest !== diffId) {
        throw new Error(`layer ${layer.digest} unpacked to ${applied.applied?.digest ?? '?'}, expected ${diffId}`);
      }
      await this.client.unary(Snapshots.method.commit, { snapshotter, name: chainId, key }, { lease });
    } catch (err) {
      await this.client.unary(Snapshots.method.remove, { snapshotter, key }).catch(() => {});
      if (!isAlreadyExists(err)) throw err; // a concurrent unpack committed this layer first
    }
  }
}

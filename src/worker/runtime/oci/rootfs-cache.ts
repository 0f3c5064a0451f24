/**
 * @module worker/runtime/oci/rootfs-cache
 * Unpacked images, once per manifest digest, shared read-only by every sandbox of the image
 * (each sandbox overlays its own upper layer on top, see overlay.ts).
 *
 *   <dir>/<digest hex>/rootfs/     the image's root filesystem (umoci's bundle layout)
 *   <dir>/.tmp-<n>/                an unpack in progress, renamed into place when complete
 *
 * umoci (Debian) applies the layers, whiteouts included, keeping owners and modes (we are
 * root). An entry is complete or absent, so it survives worker restarts; concurrent gets of
 * one digest share one unpack.
 */
import { readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../../../shared/clock.js';
import type { Logger } from '../../../shared/logger.js';
import type { CachedImage } from '../image/image-cache.js';
import { runTool } from './tools.js';

/** Unpacking a large image is disk-bound; a hung umoci must not hang creates forever. */
const unpackTimeoutMs = 600_000;
/** umoci's name for an image without a ref name in the layout's index. */
const defaultRefName = 'latest';

export type RootfsResult = { ok: true; rootfsDir: string } | { ok: false; reason: string };

export class RootfsCache {
  private readonly inflight = new Map<string, Promise<RootfsResult>>();
  private tmpSeq = 0;

  constructor(
    private readonly dir: string,
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly umoci = 'umoci',
  ) {}

  /** The image's unpacked root filesystem, unpacking it first if needed. Never rejects. */
  get(image: CachedImage): Promise<RootfsResult> {
    const hex = digestHex(image.digest);
    if (hex === undefined) return Promise.resolve({ ok: false, reason: `bad image digest '${image.digest}'` });
    const running = this.inflight.get(hex);
    if (running) return running;
    const unpacking = this.unpackOnce(image, hex)
      .catch((err: Error): RootfsResult => ({ ok: false, reason: `unpack ${image.ref}: ${err.message}` }))
      .finally(() => this.inflight.delete(hex));
    this.inflight.set(hex, unpacking);
    return unpacking;
  }

  private async unpackOnce(image: CachedImage, hex: string): Promise<RootfsResult> {
    const entry = join(this.dir, hex);
    const rootfsDir = join(entry, 'rootfs');
    if (await isDirectory(rootfsDir)) return { ok: true, rootfsDir };
    const t0Ms = this.clock.nowMs();
    const tmp = join(this.dir, `.tmp-${process.pid}-${++this.tmpSeq}`);
    await rm(tmp, { recursive: true, force: true });
    try {
      const refName = await layoutRefName(image.layoutDir);
      const args = ['unpack', '--image', `${image.layoutDir}:${refName}`, tmp];
      const r = await runTool(this.umoci, args, unpackTimeoutMs);
      if (!r.ok) return { ok: false, reason: `unpack ${image.ref}: ${r.reason}` };
      try {
        await rename(tmp, entry);
      } catch (err) {
        // Another worker on the same dir won the race: its unpack is as good as ours.
        if (!(await isDirectory(rootfsDir))) throw err;
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    const unpackMs = Math.round(this.clock.nowMs() - t0Ms);
    this.log.info('image.unpacked', { image: image.ref, digest: image.digest, unpackMs });
    return { ok: true, rootfsDir };
  }
}

/** The ref name of the (single) image in a layout: what umoci unpack takes after the colon. */
async function layoutRefName(layoutDir: string): Promise<string> {
  const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as {
    manifests?: { annotations?: Record<string, string> }[];
  };
  const name = index.manifests?.[0]?.annotations?.['org.opencontainers.image.ref.name'];
  return typeof name === 'string' && name !== '' ? name : defaultRefName;
}

function digestHex(digest: string): string | undefined {
  const match = /^sha256:([a-f0-9]{64})$/.exec(digest);
  return match ? match[1] : undefined;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

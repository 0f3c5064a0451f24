/**
 * @module worker/runtime/image/image-cache
 * Images on a worker: fetched once per digest into an OCI image layout under the cache dir,
 * shared by the `oci` runtime (which unpacks it) and the `containerd` runtime (which loads its
 * blobs into containerd's content store). skopeo (Debian) speaks the registry protocol and reads
 * OCI archives; we only read the resulting layout (index.json -> manifest -> config).
 *
 *   <cacheDir>/layouts/<digest hex>/     one OCI layout per image, complete or absent
 *   <cacheDir>/tmp/<n>/                  a copy in progress (renamed into place when done)
 *
 * A registry tag is resolved to a digest at most once per `tagTtlMs` (one registry round trip:
 * `skopeo inspect`); a cached digest is never fetched again. Concurrent gets of one image share
 * one fetch. Plain HTTP is used for loopback registries and the configured insecure ones.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { formatImageRef, isLoopbackRegistry, parseImageRef, type ImageRef } from '../../../api/image-ref.js';
import type { Clock } from '../../../shared/clock.js';
import type { Logger } from '../../../shared/logger.js';

/** A pull of a large image over a slow link still finishes; a hung registry does not hang us. */
const skopeoCopyTimeoutMs = 600_000;
const skopeoInspectTimeoutMs = 60_000;
/** skopeo's output kept for an error message. */
const skopeoOutputBytesMax = 64 * 1024;
/** How long a tag's digest is trusted before the registry is asked again. */
const tagTtlMs = 60_000;

export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export interface ImageConfig {
  entrypoint: string[];
  cmd: string[];
  /** KEY=value entries, in order. */
  env: string[];
  workingDir: string;
  user: string;
  /** Uncompressed layer digests (rootfs.diff_ids): containerd's snapshot chain ids come from these. */
  diffIds: string[];
}

export interface CachedImage {
  /** Canonical reference it was fetched for. */
  ref: string;
  /** Manifest digest of the image in the layout (sha256:...). */
  digest: string;
  /** OCI image layout holding exactly this image. */
  layoutDir: string;
  manifest: { config: OciDescriptor; layers: OciDescriptor[] };
  /** The manifest and config blobs as stored (containerd needs them byte for byte). */
  manifestDescriptor: OciDescriptor;
  config: ImageConfig;
}

interface Source {
  /** transport:reference, as skopeo takes it. */
  name: string;
  plainHttp: boolean;
}

export type ImageResult = { ok: true; image: CachedImage } | { ok: false; reason: string };

export interface ImageCacheOptions {
  cacheDir: string;
  /** host:port of registries spoken to over plain HTTP (loopback ones always are). */
  insecureRegistries: readonly string[];
  clock: Clock;
  logger: Logger;
  /** skopeo binary (tests may point elsewhere). */
  skopeo?: string;
}

export class ImageCache {
  private readonly inflight = new Map<string, Promise<ImageResult>>();
  private readonly tagDigests = new Map<string, { digest: string; atMs: number }>();
  private tmpSeq = 0;
  private readonly log: Logger;

  constructor(private readonly opts: ImageCacheOptions) {
    this.log = opts.logger.child({ component: 'image-cache' });
  }

  /** The image, fetched if needed. Never rejects: failures are reasons a person can act on. */
  get(image: string): Promise<ImageResult> {
    const parsed = parseImageRef(image);
    if (!parsed.ok) return Promise.resolve({ ok: false, reason: `image '${image}': ${parsed.reason}` });
    const key = formatImageRef(parsed.ref);
    const running = this.inflight.get(key);
    if (running) return running;
    const fetching = this.fetch(parsed.ref, key)
      .catch((err: Error): ImageResult => ({ ok: false, reason: `image '${key}': ${err.message}` }))
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, fetching);
    return fetching;
  }

  private async fetch(ref: ImageRef, key: string): Promise<ImageResult> {
    const t0Ms = this.opts.clock.nowMs();
    const source = this.transport(ref);
    const digest = await this.resolveDigest(ref, key, source);
    const layoutDir = join(this.opts.cacheDir, 'layouts', digest.replace(/^sha256:/, ''));
    if (!(await exists(join(layoutDir, 'index.json')))) {
      await this.copyInto(source, ref, layoutDir);
      this.log.info('image.fetched', { image: key, digest, fetchMs: this.opts.clock.nowMs() - t0Ms });
    }
    return { ok: true, image: await readLayout(key, layoutDir) };
  }

  /** The digest naming the cache entry: pinned, recently resolved, or asked of the source. */
  private async resolveDigest(ref: ImageRef, key: string, source: Source): Promise<string> {
    if (ref.kind === 'registry' && ref.digest !== '') return ref.digest;
    const known = this.tagDigests.get(key);
    const nowMs = this.opts.clock.nowMs();
    if (known && nowMs - known.atMs < tagTtlMs) return known.digest;
    const plain = source.plainHttp ? ['--tls-verify=false'] : [];
    const out = await run(this.skopeo(), ['inspect', ...plain, '--format', '{{.Digest}}', source.name], skopeoInspectTimeoutMs);
    const digest = out.trim();
    if (!/^sha256:[a-f0-9]{64}$/.test(digest)) throw new Error(`skopeo inspect gave no digest: ${digest.slice(0, 200)}`);
    this.tagDigests.set(key, { digest, atMs: nowMs });
    return digest;
  }

  /** skopeo copy into a private temp layout, then one rename makes it visible. */
  private async copyInto(source: Source, ref: ImageRef, layoutDir: string): Promise<void> {
    const tmp = join(this.opts.cacheDir, 'tmp', `${process.pid}-${++this.tmpSeq}`);
    await rm(tmp, { recursive: true, force: true });
    await mkdir(join(this.opts.cacheDir, 'layouts'), { recursive: true });
    await mkdir(join(this.opts.cacheDir, 'tmp'), { recursive: true });
    try {
      const name = ref.kind === 'registry' ? (ref.tag || 'pinned') : 'archive';
      const plain = source.plainHttp ? ['--src-tls-verify=false'] : [];
      await run(this.skopeo(), ['copy', '--quiet', ...plain, source.name, `oci:${tmp}:${name}`], skopeoCopyTimeoutMs);
      try {
        await rename(tmp, layoutDir);
      } catch (err) {
        // Another worker process on the same cache won the race: its copy is as good as ours.
        if (!(await exists(join(layoutDir, 'index.json')))) throw err;
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /** How skopeo names the source, and whether it is spoken to over plain HTTP. */
  private transport(ref: ImageRef): Source {
    if (ref.kind === 'archive') return { name: `oci-archive:${ref.path}`, plainHttp: false };
    const plainHttp = isLoopbackRegistry(ref.registry) || this.opts.insecureRegistries.includes(ref.registry);
    return { name: `docker://${formatImageRef(ref)}`, plainHttp };
  }

  private skopeo(): string {
    return this.opts.skopeo ?? 'skopeo';
  }
}

/** Reads index.json -> manifest -> config of a layout holding one image. */
export async function readLayout(ref: string, layoutDir: string): Promise<CachedImage> {
  const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as { manifests?: OciDescriptor[] };
  const manifestDescriptor = index.manifests?.[0];
  if (!manifestDescriptor) throw new Error(`no manifest in ${layoutDir}/index.json`);
  const manifest = JSON.parse(await readFile(blobPath(layoutDir, manifestDescriptor.digest), 'utf8')) as CachedImage['manifest'];
  if (!manifest.config || !Array.isArray(manifest.layers)) throw new Error(`manifest ${manifestDescriptor.digest} is not an image manifest`);
  const raw = JSON.parse(await readFile(blobPath(layoutDir, manifest.config.digest), 'utf8')) as {
    config?: { Entrypoint?: string[] | null; Cmd?: string[] | null; Env?: string[] | null; WorkingDir?: string; User?: string };
    rootfs?: { diff_ids?: string[] };
  };
  const c = raw.config ?? {};
  return {
    ref,
    digest: manifestDescriptor.digest,
    layoutDir,
    manifest,
    manifestDescriptor,
    config: {
      entrypoint: c.Entrypoint ?? [],
      cmd: c.Cmd ?? [],
      env: c.Env ?? [],
      workingDir: c.WorkingDir ?? '',
      user: c.User ?? '',
      diffIds: raw.rootfs?.diff_ids ?? [],
    },
  };
}

/** Path of a blob in an OCI layout. */
export function blobPath(layoutDir: string, digest: string): string {
  const [algorithm, hex] = digest.split(':');
  if (algorithm !== 'sha256' || !/^[a-f0-9]{64}$/.test(hex ?? '')) throw new Error(`bad digest ${digest}`);
  return join(layoutDir, 'blobs', algorithm, hex);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Runs a tool with a clean, bounded output; rejects with its last stderr line. */
function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: skopeoOutputBytesMax, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/tmp' } },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const line = stderr.trim().split('\n').at(-1) ?? '';
        const what = (err as NodeJS.ErrnoException).code === 'ENOENT' ? `${cmd} not found (apt-get install skopeo)` : line || err.message;
        reject(new Error(`${cmd} ${args[0]}: ${what.slice(0, 500)}`));
      });
  });
}

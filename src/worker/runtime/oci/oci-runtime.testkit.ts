/**
 * @module worker/runtime/oci/oci-runtime.testkit
 * Shared by the oci runtime's tests and its cold-start measurement: runtimes on temp state dirs
 * with private port slices and uid pools, one image cache per process, the example image and
 * a variant of it that allocates memory on demand. Tests only.
 */
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { FunctionSpec } from '../../../api/types.js';
import { scalingDefaults } from '../../../config/defaults.js';
import { systemClock } from '../../../shared/clock.js';
import { memoryLogger, type RecordedLog } from '../../../shared/logger.js';
import { ImageCache } from '../image/image-cache.js';
import { createPortAllocator, type PortAllocator } from '../port-allocator.js';
import { portSlices } from '../process-runtime.testkit.js';
import { createSandboxUids, type SandboxUids } from '../sandbox-uids.js';
import { createOciRuntime, type OciRuntime } from './oci-runtime.js';

const execFileAsync = promisify(execFile);
/** This file's share of the loopback ports, below the kernel's ephemeral range (tests of other files use other ranges). */
const nextPortRange = portSlices(30_000, 30_499).next;
/** Uids of test sandboxes: far from every real account, and from other test files'. */
const uidRange = [260_000, 260_999] as const;
const imageBuildTimeoutMs = 120_000;

let imageCache: ImageCache | undefined;

/**
 * One image cache per test process: every runtime shares its fetched layouts. `dir`, when
 * given, is the caller's to remove (a process that is SIGKILLed never runs its exit hook).
 */
async function sharedImageCache(dir?: string): Promise<ImageCache> {
  if (imageCache) return imageCache;
  if (dir === undefined) {
    const made = await mkdtemp(join(tmpdir(), 'dirigent-oci-images-'));
    process.once('exit', () => rmSync(made, { recursive: true, force: true })); // 'exit' runs sync code only
    dir = made;
  }
  imageCache = new ImageCache({ cacheDir: dir, insecureRegistries: [], clock: systemClock, logger: memoryLogger() });
  return imageCache;
}

export function imageSpec(name: string, image: string, over: Partial<FunctionSpec> = {}): FunctionSpec {
  return {
    name,
    image,
    command: [],
    workingDir: '',
    port: 0,
    env: {},
    egress: false, auth: 'none',
    resources: { cpuMillis: 1000, memoryMiB: 64 },
    concurrency: 1,
    timeoutMs: 60_000,
    scaling: { ...scalingDefaults },
    ...over,
  };
}

export interface OciHarness {
  runtime: OciRuntime;
  stateDir: string;
  ports: PortAllocator;
  uids: SandboxUids;
  logs: RecordedLog[];
  cleanup: () => Promise<void>;
}

export interface OciHarnessOptions {
  /** An existing state dir (e.g. one a dead worker left); a temp dir otherwise. */
  stateDir?: string;
  /** Where the process's image cache lives, on first use; a temp dir otherwise. */
  imageCacheDir?: string;
  startupCpuMillis?: number;
}

export async function makeOciRuntime(opts: OciHarnessOptions = {}): Promise<OciHarness> {
  const stateDir = opts.stateDir ?? (await mkdtemp(join(tmpdir(), 'dirigent-oci-runtime-')));
  const logs: RecordedLog[] = [];
  const ports = createPortAllocator(nextPortRange());
  const uids = createSandboxUids(uidRange);
  const runtime = createOciRuntime({
    host: '127.0.0.1',
    stateDir,
    images: await sharedImageCache(opts.imageCacheDir),
    ports,
    uids,
    runtimeBinary: 'runc',
    pidsMax: 512,
    tmpMiB: 16,
    startupCpuMillis: opts.startupCpuMillis,
    readinessTimeoutMs: 10_000,
    readinessBackoffMs: [1, 10],
    logger: memoryLogger(logs),
    clock: systemClock,
  });
  const cleanup = async (): Promise<void> => {
    if (opts.stateDir === undefined) await rm(stateDir, { recursive: true, force: true });
  };
  return { runtime, stateDir, ports, uids, logs, cleanup };
}

/** The example image with another Entrypoint and Cmd, as an OCI archive in a temp dir. */
export async function variantImageArchive(
  helloArchive: string,
  entrypoint: readonly string[],
  cmd: readonly string[],
): Promise<{ archive: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'dirigent-variant-image-'));
  const layout = join(dir, 'layout');
  const archive = join(dir, 'variant.tar');
  const run = (tool: string, args: string[]): Promise<unknown> =>
    execFileAsync(tool, args, { timeout: imageBuildTimeoutMs });
  const flags = [
    ...entrypoint.flatMap((arg) => ['--config.entrypoint', arg]),
    ...cmd.flatMap((arg) => ['--config.cmd', arg]),
  ];
  await run('skopeo', ['copy', '--quiet', `oci-archive:${helloArchive}`, `oci:${layout}:1`]);
  await run('umoci', ['config', '--image', `${layout}:1`, '--tag', 'variant', ...flags]);
  await run('skopeo', ['copy', '--quiet', `oci:${layout}:variant`, `oci-archive:${archive}`]);
  return { archive, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Serves in the background, waits ALLOC_AFTER_S seconds, then holds ALLOC_MIB MiB in the init
 * shell, which the memory limit's OOM killer ends.
 */
export function allocImageArchive(helloArchive: string): ReturnType<typeof variantImageArchive> {
  const script = [
    'httpd -p "$HOST:$PORT" -h /www',
    'busybox sleep "$ALLOC_AFTER_S"',
    'x=$(busybox head -c "${ALLOC_MIB}m" /dev/zero | busybox tr "\\000" a)',
  ].join(' && ');
  return variantImageArchive(helloArchive, ['/bin/sh'], ['-c', script]);
}

/**
 * @module worker/runtime/containerd/containerd.testkit
 * Shared by the containerd runtime's test files: one private containerd per test file (its
 * socket handed to every runtime, each with its own state dir, so owners never collide), an
 * image cache, fixture specs and /proc readers. Tests only.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FunctionSpec } from '../../../api/types.js';
import { scalingDefaults } from '../../../config/defaults.js';
import { systemClock } from '../../../shared/clock.js';
import { memoryLogger, type RecordedLog } from '../../../shared/logger.js';
import { ImageCache } from '../image/image-cache.js';
import { createPortAllocator } from '../port-allocator.js';
import { portSlices } from '../process-runtime.testkit.js';
import { createSandboxUids } from '../sandbox-uids.js';
import { ContainerdClient } from './client.js';
import { createContainerdRuntime, containerdNamespace, type ContainerdRuntimeOptions } from './containerd-runtime.js';
import { daemonStartTimeoutMs, startPrivateDaemon, type PrivateDaemon } from './daemon.js';
import type { SandboxRuntime } from '../runtime.js';

export const imageTools = ['containerd', 'runc', 'skopeo', 'umoci', 'docker-registry', 'busybox'] as const;
/** Sandbox uids of these tests (outside the worker's default range, so no clash with a dev worker). */
const uidRange: [number, number] = [3_300_000, 3_309_999];

export interface TestRuntime {
  runtime: SandboxRuntime;
  stateDir: string;
  logs: RecordedLog[];
  cleanup: () => Promise<void>;
}

export class ContainerdFixture {
  dir = '';
  daemon?: PrivateDaemon;
  images?: ImageCache;
  private uidNext = uidRange[0];
  private readonly nextPortRange: () => [number, number];

  /** `ports`: this file's share of the loopback ports, below the kernel's ephemeral range. */
  constructor(ports: readonly [number, number]) {
    this.nextPortRange = portSlices(ports[0], ports[1]).next;
  }

  async start(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'dirigent-ctd-'));
    await this.startDaemon();
    this.images = new ImageCache({ cacheDir: join(this.dir, 'images'), insecureRegistries: [], clock: systemClock, logger: memoryLogger([]) });
  }

  /** Stops and restarts the shared containerd on the same dirs (its shims, and so its containers, live on). */
  async restartDaemon(): Promise<void> {
    await this.daemon?.stop();
    await this.startDaemon();
  }

  async stop(): Promise<void> {
    await this.daemon?.stop();
    if (this.dir !== '') await rm(this.dir, { recursive: true, force: true });
  }

  private async startDaemon(): Promise<void> {
    this.daemon = await startPrivateDaemon(join(this.dir, 'shared'), memoryLogger([]));
    const client = new ContainerdClient(this.daemon.socket, containerdNamespace);
    try {
      await client.waitReady(daemonStartTimeoutMs);
    } finally {
      client.close();
    }
  }

  /** A runtime on its own state dir, port slice and uid slice; `socket: ''` = its own private containerd. */
  async runtime(over: Partial<ContainerdRuntimeOptions> = {}): Promise<TestRuntime> {
    const stateDir = over.stateDir ?? (await mkdtemp(join(this.dir, 'rt-')));
    const uidFirst = this.uidNext;
    this.uidNext += 100;
    const logs: RecordedLog[] = [];
    const runtime = createContainerdRuntime({
      host: '127.0.0.1',
      stateDir,
      socket: this.daemon!.socket,
      images: this.images!,
      ports: createPortAllocator(this.nextPortRange()),
      uids: createSandboxUids([uidFirst, uidFirst + 99]),
      pidsMax: 64,
      tmpMiB: 16,
      readinessTimeoutMs: 10_000,
      readinessBackoffMs: [1, 10],
      logger: memoryLogger(logs),
      clock: systemClock,
      ...over,
    });
    const cleanup = async (): Promise<void> => {
      await runtime.close();
      await rm(stateDir, { recursive: true, force: true });
    };
    return { runtime, stateDir, logs, cleanup };
  }
}

/** A function running `image` with the limits the tests check. */
export function imageSpec(name: string, image: string, env: Record<string, string> = {}): FunctionSpec {
  return {
    name,
    image,
    command: [],
    workingDir: '',
    port: 0,
    env,
    egress: false, auth: 'none',
    resources: { cpuMillis: 500, memoryMiB: 64 },
    concurrency: 1,
    timeoutMs: 60_000,
    scaling: { ...scalingDefaults },
  };
}

/** The named fields of /proc/<pid>/status (e.g. Uid, CapEff, NoNewPrivs). */
export async function procStatus(pid: number): Promise<Record<string, string>> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  return fields;
}

/** controller -> cgroup path, from /proc/<pid>/cgroup ('' = the cgroup2 hierarchy). */
export async function procCgroups(pid: number | 'self'): Promise<Map<string, string>> {
  const text = await readFile(`/proc/${pid}/cgroup`, 'utf8');
  const paths = new Map<string, string>();
  for (const line of text.trim().split('\n')) {
    const [, controllers, path] = line.split(':');
    // The cgroup2 line ('0::/path') is stored under ''.
    for (const c of (controllers ?? '').split(',')) paths.set(c, path ?? '');
  }
  return paths;
}

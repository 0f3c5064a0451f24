/**
 * @module worker/runtime-setup
 * Builds the real runtimes of one worker from its config (`--runtime process,oci,...`): what
 * they share (host ports, the sandbox uid pool, the image cache) and the packet filter that walls
 * in their sandboxes. One place decides what a worker needs from the host, so a missing piece is
 * one clear start-up error instead of a failure at the first create.
 *
 *   <stateDir>/workers/<id>/            process runtime (records, logs), firewall table name
 *   <stateDir>/workers/<id>/images/     image cache (oci and containerd)
 *   <stateDir>/workers/<id>/oci/        runc state, bundles, unpacked roots
 *   <stateDir>/workers/<id>/containerd/ private containerd and sandbox logs
 */
import { join } from 'node:path';
import type { WorkerConfig, WorkerRuntimeName } from '../config/compile.js';
import { ConfigError, workerRuntimes } from '../config/compile.js';
import { systemClock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { createContainerdRuntime } from './runtime/containerd/containerd-runtime.js';
import { readHostPortRanges, warnOnEphemeralOverlap } from './runtime/ephemeral-ports.js';
import { ImageCache } from './runtime/image/image-cache.js';
import { isolationUnusableReason, resolveIsolation, startSandboxFirewall } from './runtime/isolation-setup.js';
import { combineRuntimes, runtimeCapabilities } from './runtime/multi-runtime.js';
import { createOciRuntime } from './runtime/oci/oci-runtime.js';
import { createPortAllocator } from './runtime/port-allocator.js';
import { createProcessRuntime } from './runtime/process-runtime.js';
import type { SandboxRuntime } from './runtime/runtime.js';
import { createSandboxUids } from './runtime/sandbox-uids.js';

export interface RealRuntimes {
  runtime: SandboxRuntime;
  /** What the worker advertises: placement only sends functions these cover. */
  capabilities: string[];
  /** Stops what the runtimes share (the packet filter); after the runtimes are closed. */
  close(): Promise<void>;
}

/**
 * Checks the host, then starts the packet filter and the runtimes. Throws ConfigError (one
 * line naming what is missing) before anything was started.
 */
export async function startRealRuntimes(cfg: WorkerConfig, workerId: string, log: Logger): Promise<RealRuntimes> {
  const names = workerRuntimes(cfg);
  if (names.includes('emulated')) throw new ConfigError('worker: emulated cannot be combined with real runtimes');
  const images = names.filter((n) => n === 'oci' || n === 'containerd');
  const isolation = names.includes('process') ? await resolveIsolation(cfg.isolation, log) : 'none';
  if (images.length > 0) {
    // Image sandboxes are always walled in (own uid + packet filter); there is no 'none' for them.
    const reason = await isolationUnusableReason();
    if (reason !== undefined) throw new ConfigError(`worker: --runtime ${images.join(',')} needs ${reason}`);
  }
  const stateDir = join(cfg.stateDir, 'workers', workerId);
  const uids = createSandboxUids(cfg.sandboxUidRange);
  const ports = createPortAllocator(cfg.sandboxPortRange);
  warnOnEphemeralOverlap(cfg.sandboxPortRange, readHostPortRanges(), log);
  const walled = isolation === 'bwrap' || images.length > 0;
  const firewall = walled ? await startSandboxFirewall(stateDir, uids.ranges, cfg.egressDenyCidrs, log) : undefined;
  const cache = images.length > 0
    ? new ImageCache({ cacheDir: join(stateDir, 'images'), insecureRegistries: list(cfg.insecureRegistries), clock: systemClock, logger: log })
    : undefined;
  const common = {
    host: cfg.host, ports, uids,
    readinessTimeoutMs: cfg.readinessTimeoutMs, readinessBackoffMs: cfg.readinessBackoffMs,
    logger: log, clock: systemClock,
  };
  const build = (name: WorkerRuntimeName): SandboxRuntime => {
    switch (name) {
      case 'process':
        return createProcessRuntime({
          ...common, portRange: cfg.sandboxPortRange, stateDir, isolation,
          sandboxTmpMiB: cfg.sandboxTmpMiB, sandboxPidsMax: cfg.sandboxPidsMax,
          sandboxStartupCpuMillis: cfg.sandboxStartupCpuMillis,
        });
      case 'oci':
        return createOciRuntime({
          ...common, stateDir: join(stateDir, 'oci'), images: cache!, runtimeBinary: cfg.ociRuntimeBinary,
          pidsMax: cfg.sandboxPidsMax, tmpMiB: cfg.sandboxTmpMiB, startupCpuMillis: cfg.sandboxStartupCpuMillis,
        });
      case 'containerd':
        return createContainerdRuntime({
          ...common, stateDir: join(stateDir, 'containerd'), socket: cfg.containerdSocket, images: cache!,
          startupCpuMillis: cfg.sandboxStartupCpuMillis,
          pidsMax: cfg.sandboxPidsMax, tmpMiB: cfg.sandboxTmpMiB,
        });
      case 'emulated':
        throw new ConfigError('worker: emulated is not a real runtime');
    }
  };
  const runtimes = names.map(build);
  const capabilities = [...new Set(runtimes.flatMap((r) => runtimeCapabilities(r.name)))];
  log.info('worker.runtimes', { runtimes: names, isolation, capabilities, uidRanges: uids.ranges });
  return {
    runtime: runtimes.length === 1 ? runtimes[0] : combineRuntimes(runtimes),
    capabilities,
    close: async () => {
      await firewall?.close();
    },
  };
}

function list(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/**
 * @module worker/runtime/oci/bundle-spec
 * The OCI runtime spec (a bundle's config.json) of one image sandbox, built from the image's
 * config, the function and what the worker handed out (uid, host port, limits). Pure: no I/O,
 * so every field is unit-tested; the caller says which host files exist.
 *
 * What walls a sandbox in (DESIGN §11):
 * - a pool uid and gid, never the image's User: images default to root, and a root process with
 *   the host's network namespace could bind low ports or slip past the uid-based packet filter;
 * - no capabilities, no_new_privs, its own pid/ipc/uts/mount/cgroup namespaces;
 * - NOT its own network namespace: sandboxes listen on host:PORT in the host's, and the worker's
 *   nftables filter matches on the uid ranges;
 * - cgroup limits below the worker's own cgroups (a relative cgroupsPath, which runc resolves
 *   against its caller's cgroup), a read-only root and a size-bounded tmpfs /tmp.
 */
import type { FunctionSpec } from '../../../api/types.js';
import { assert } from '../../../shared/assert.js';
import { cpuLimit } from '../cgroup-backend.js';

/** Open files per sandbox process (soft = hard: no raising it from inside). */
const sandboxOpenFilesMax = 4_096;
/** /dev and /dev/shm are tmpfs; these bound what a sandbox can park there. */
const devTmpfsKiB = 64;
const shmTmpfsKiB = 65_536;
const bytesPerMiB = 1_048_576;

/** Host files bound read-only into every sandbox when they exist (name resolution). */
export const hostBindFiles = ['/etc/resolv.conf', '/etc/hosts'] as const;

/** Runc's own defaults (`runc spec`): kernel interfaces a container must not read or write. */
const maskedPaths = [
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
  '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi',
];
const readonlyPaths = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export interface ImageProcessConfig {
  entrypoint: readonly string[];
  cmd: readonly string[];
  /** KEY=value entries, in order. */
  env: readonly string[];
  workingDir: string;
}

export interface BundleSpecInput {
  sandboxId: string;
  fn: FunctionSpec;
  image: ImageProcessConfig;
  /** Host uid (and gid) from the sandbox uid pool; never 0. */
  uid: number;
  /** Address the sandbox listens on: the worker's host and a port of its range. */
  host: string;
  port: number;
  pidsMax: number;
  tmpMiB: number;
  /** CPU quota until ready when the function's is smaller (start-up boost); 0 = none. */
  startupCpuMillis?: number;
  /** cgroupsPath relative to the worker's own cgroups, e.g. `dirigent-<hash>/<sandboxId>`. */
  cgroupsPath: string;
  /** The members of `hostBindFiles` that exist on this host. */
  hostFiles: readonly string[];
}

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options?: string[];
}

/** The part of the OCI runtime spec we write (runtime-spec 1.0). */
export interface OciSpec {
  ociVersion: string;
  process: {
    terminal: false;
    user: { uid: number; gid: number; additionalGids: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: Record<'bounding' | 'effective' | 'inheritable' | 'permitted' | 'ambient', string[]>;
    rlimits: { type: string; hard: number; soft: number }[];
    noNewPrivileges: true;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: OciMount[];
  linux: {
    cgroupsPath: string;
    namespaces: { type: string }[];
    resources: {
      devices: { allow: boolean; access: string }[];
      cpu: { quota: number; period: number };
      memory: { limit: number };
      pids: { limit: number };
    };
    maskedPaths: string[];
    readonlyPaths: string[];
  };
}

export type BundleSpecResult = { ok: true; spec: OciSpec } | { ok: false; reason: string };

/** The bundle's config.json, or why the image cannot run (nothing to execute). */
export function buildBundleSpec(input: BundleSpecInput): BundleSpecResult {
  assert(input.uid > 0, 'a sandbox never runs as root');
  assert(input.port > 0 && input.port <= 65_535, 'bad port');
  assert(!input.cgroupsPath.startsWith('/'), 'cgroupsPath must be relative to the worker cgroup');
  const args = [...input.image.entrypoint, ...input.image.cmd];
  if (args.length === 0) return { ok: false, reason: 'image has neither Entrypoint nor Cmd' };
  const noCaps: string[] = [];
  return {
    ok: true,
    spec: {
      ociVersion: '1.0.2',
      process: {
        terminal: false,
        user: { uid: input.uid, gid: input.uid, additionalGids: [] },
        args,
        env: bundleEnv(input),
        cwd: input.image.workingDir.startsWith('/') ? input.image.workingDir : '/',
        capabilities: {
          bounding: noCaps, effective: noCaps, inheritable: noCaps, permitted: noCaps, ambient: noCaps,
        },
        rlimits: [{ type: 'RLIMIT_NOFILE', hard: sandboxOpenFilesMax, soft: sandboxOpenFilesMax }],
        noNewPrivileges: true,
      },
      // Read-only: the per-sandbox overlay's upper layer would otherwise be disk space without
      // a bound. Writable scratch is the size-bounded /tmp.
      root: { path: 'rootfs', readonly: true },
      hostname: input.sandboxId.slice(0, 63),
      mounts: bundleMounts(input),
      linux: {
        cgroupsPath: input.cgroupsPath,
        namespaces: ['pid', 'ipc', 'uts', 'mount', 'cgroup'].map((type) => ({ type })),
        resources: bundleResources(input),
        maskedPaths: [...maskedPaths],
        readonlyPaths: [...readonlyPaths],
      },
    },
  };
}

/**
 * Image env, then the function's, then the runtime's own variables, which always win: the
 * sandbox must listen where the worker probes, and the reaper and logs rely on the names.
 */
export function bundleEnv(input: BundleSpecInput): string[] {
  const env = new Map<string, string>();
  const put = (key: string, value: string): void => {
    env.delete(key); // re-insert: a later source also decides the position
    env.set(key, value);
  };
  for (const entry of input.image.env) {
    const eq = entry.indexOf('=');
    if (eq > 0) put(entry.slice(0, eq), entry.slice(eq + 1));
  }
  for (const [key, value] of Object.entries(input.fn.env)) put(key, value);
  put('PORT', String(input.port));
  put('HOST', input.host);
  put('DIRIGENT_FUNCTION', input.fn.name);
  put('DIRIGENT_SANDBOX_ID', input.sandboxId);
  return [...env].map(([key, value]) => `${key}=${value}`);
}

function bundleMounts(input: BundleSpecInput): OciMount[] {
  const kernel = ['nosuid', 'noexec', 'nodev'];
  const mounts: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: kernel },
    {
      destination: '/dev', type: 'tmpfs', source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', `size=${devTmpfsKiB}k`],
    },
    {
      destination: '/dev/pts', type: 'devpts', source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
    },
    {
      destination: '/dev/shm', type: 'tmpfs', source: 'shm',
      options: [...kernel, 'mode=1777', `size=${shmTmpfsKiB}k`],
    },
    {
      destination: '/tmp', type: 'tmpfs', source: 'tmpfs',
      options: [...kernel, 'mode=1777', `size=${input.tmpMiB}m`],
    },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: [...kernel, 'ro'] },
  ];
  for (const file of input.hostFiles) {
    assert((hostBindFiles as readonly string[]).includes(file), `unexpected host file ${file}`);
    const options = ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'];
    mounts.push({ destination: file, type: 'bind', source: file, options });
  }
  return mounts;
}

function bundleResources(input: BundleSpecInput): OciSpec['linux']['resources'] {
  const { cpuMillis, memoryMiB } = input.fn.resources;
  assert(cpuMillis > 0 && memoryMiB > 0 && input.pidsMax > 0, 'limits must be positive');

  return {
    // Deny every device; runc still creates and allows its default set (null, zero, urandom...).
    devices: [{ allow: false, access: 'rwm' }],
    cpu: cpuLimit(Math.max(cpuMillis, input.startupCpuMillis ?? 0)),
    memory: { limit: memoryMiB * bytesPerMiB },
    pids: { limit: input.pidsMax },
  };
}

/**
 * @module worker/runtime/containerd/spec
 * The OCI runtime spec of one containerd sandbox, built from the function and its image. Pure:
 * no I/O, no clock; unit-tested. What it encodes (and why):
 * - args = image Entrypoint + Cmd; env = image env < function env < ours (ours always win);
 * - the pool uid as user, never the image's User: the worker's packet filter matches on the uid,
 *   and root in a container is one kernel bug away from root on the host;
 * - no capabilities, no_new_privs; pid, ipc, uts and mount namespaces but the HOST network
 *   namespace: the sandbox listens on HOST:PORT like a process sandbox does;
 * - cpu, memory and pids limits from the function and the worker's knobs; /tmp a bounded tmpfs.
 */
import type { FunctionSpec } from '../../../api/types.js';
import { cpuLimit } from '../cgroup-backend.js';
import type { ImageConfig } from '../image/image-cache.js';

/** Open files per sandbox process; containerd's default spec uses the same. */
const openFilesMax = 1_024;
/** /dev and /dev/shm are tmpfs; a function needs neither to be big. */
const devTmpfsKiB = 65_536;
/** Longest hostname the kernel takes. */
const hostnameCharsMax = 63;
const mebibyte = 1024 * 1024;

export interface SpecInput {
  sandboxId: string;
  /** Container id in containerd; also the hostname. */
  containerId: string;
  fn: FunctionSpec;
  image: ImageConfig;
  uid: number;
  gid: number;
  /** Host port the function must listen on ($PORT). */
  port: number;
  /** Host address the function must listen on ($HOST). */
  host: string;
  pidsMax: number;
  /** CPU quota until ready when the function's is smaller (start-up boost); 0 or unset = none. */
  startupCpuMillis?: number;
  tmpMiB: number;
  /** runc's cgroupsPath; relative = below the cgroups of the shim (so of the worker). */
  cgroupsPath: string;
}

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

/** The subset of the OCI runtime spec we write (runtime-spec 1.0). */
export interface OciSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: Record<'bounding' | 'effective' | 'inheritable' | 'permitted' | 'ambient', string[]>;
    rlimits: { type: string; hard: number; soft: number }[];
    noNewPrivileges: boolean;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: OciMount[];
  linux: {
    resources: {
      devices: { allow: boolean; access: string }[];
      memory?: { limit: number };
      cpu?: { quota: number; period: number };
      pids: { limit: number };
    };
    cgroupsPath: string;
    namespaces: { type: string }[];
    maskedPaths: string[];
    readonlyPaths: string[];
  };
}

export function buildSpec(input: SpecInput): OciSpec {
  const args = [...input.image.entrypoint, ...input.image.cmd];
  const cwd = input.fn.workingDir !== '' ? input.fn.workingDir : input.image.workingDir || '/';
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: input.uid, gid: input.gid, additionalGids: [] },
      args,
      env: sandboxEnvList(input),
      cwd,
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: openFilesMax, soft: openFilesMax }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: false },
    hostname: input.containerId.slice(0, hostnameCharsMax),
    mounts: sandboxMounts(input.tmpMiB),
    linux: {
      resources: sandboxResources(input),
      cgroupsPath: input.cgroupsPath,
      // No 'network': the host's, so HOST:PORT is reachable from the data plane.
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: [
        '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
        '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/** KEY=value list: image env, then the function's, then the runtime's (later keys replace earlier). */
export function sandboxEnvList(input: SpecInput): string[] {
  const env = new Map<string, string>();
  for (const entry of input.image.env) {
    const eq = entry.indexOf('=');
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  if (!env.has('PATH')) env.set('PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  for (const [key, value] of Object.entries(input.fn.env)) env.set(key, value);
  env.set('PORT', String(input.port));
  env.set('HOST', input.host);
  env.set('DIRIGENT_FUNCTION', input.fn.name);
  env.set('DIRIGENT_SANDBOX_ID', input.sandboxId);
  return [...env].map(([key, value]) => `${key}=${value}`);
}

function sandboxMounts(tmpMiB: number): OciMount[] {
  const dev = `size=${devTmpfsKiB}k`;
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', dev] },
    {
      destination: '/dev/pts', type: 'devpts', source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
    },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', dev] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', `size=${tmpMiB}m`] },
  ];
}

function sandboxResources(input: SpecInput): OciSpec['linux']['resources'] {
  const { cpuMillis, memoryMiB } = input.fn.resources;
  return {
    // Deny every device node; runc adds back the harmless defaults (null, zero, random, tty...).
    devices: [{ allow: false, access: 'rwm' }],
    ...(memoryMiB > 0 ? { memory: { limit: memoryMiB * mebibyte } } : {}),
    ...(cpuMillis > 0 ? { cpu: cpuLimit(Math.max(cpuMillis, input.startupCpuMillis ?? 0)) } : {}),
    pids: { limit: input.pidsMax },
  };
}

/** containerd identifiers: alphanumeric groups joined by single '.', '_' or '-', at most 76 chars. */
const containerdIdPattern = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;
const containerdIdCharsMax = 76;

/**
 * The container id of a sandbox: `<owner>-<sandbox id>` when that is a valid containerd id, else
 * `<owner>-h<hash>` with the hash computed by the caller. The owner prefix keeps two workers on
 * one containerd (or runc state dir) apart.
 */
export function containerIdFor(owner: string, sandboxId: string, hashHex: (s: string) => string): string {
  const plain = `${owner}-${sandboxId}`;
  if (plain.length <= containerdIdCharsMax && containerdIdPattern.test(plain)) return plain;
  return `${owner}-h${hashHex(sandboxId).slice(0, 32)}`;
}

/**
 * @module config/compile
 * Options (all optional, from flags, env or a config file) compile into fully specified
 * configs through one zod schema per component. Every knob has a type and a legal range; a bad
 * value is refused with one line naming the key, the value and the range, e.g.
 *   data plane: queueDepthMax must be an integer in [1, 1000000], got -1
 * Flags and env arrive as strings, the config file as JSON: numbers are accepted either way.
 */
import { z } from 'zod';
import { lbPolicyNames } from '../policy/load-balancing/lb.js';
import { placementPolicyNames } from '../policy/placement/placement.js';
import { controlPlaneDefaults, dataPlaneDefaults, proxyThreadsMax, workerDefaults } from './defaults.js';

export class ConfigError extends Error {
  readonly code = 'CM_ERR_CONFIG';
}

/** One knob: its schema and the words that say what it accepts ("an integer in [1, 10]"). */
export interface Knob {
  schema: z.ZodTypeAny;
  expect: string;
}

const logLevels = Object.freeze(['debug', 'info', 'warn', 'error', 'silent'] as const);
export const workerRuntimeNames = Object.freeze(['process', 'emulated', 'oci', 'containerd'] as const);
export type WorkerRuntimeName = (typeof workerRuntimeNames)[number];
const portRange = [0, 65_535] as const;
/** Largest inherited descriptor number a component takes (`proxyFd`, `apiFd`). */
const inheritedFdMax = 65_535;
/** Longest host name (RFC 1035), also the bound of ids and addresses built from one. */
const hostLengthMax = 253;
const pathLengthMax = 4096;
/** Emulated workers one process may run (`worker --count`). */
const emulatedWorkersMax = 100_000;
const hourMs = 3_600_000;

/** Flags and env give text; the config file gives numbers. Anything else fails the number check. */
function toNumber(raw: unknown): unknown {
  return typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
}

function int(min: number, max: number): Knob {
  return {
    schema: z.preprocess(toNumber, z.number().int().min(min).max(max)),
    expect: `an integer in [${min}, ${max}]`,
  };
}

function oneOf<T extends string>(names: readonly [T, ...T[]]): Knob {
  return { schema: z.enum(names), expect: `one of ${names.join(' | ')}` };
}

function text(lengthMin: number, lengthMax: number): Knob {
  return {
    schema: z.string().min(lengthMin).max(lengthMax).refine((s) => !s.includes('\0')),
    expect: lengthMin > 0 ? `a string of ${lengthMin} to ${lengthMax} characters` : `a string of at most ${lengthMax} characters`,
  };
}

/** A comma-separated list of `host:port` (CP replicas); any of them leads the others' followers to the leader. */
function addressList(): Knob {
  const one = /^[^\s:,]+:\d{1,5}$/;
  return {
    schema: z.string().max(64 * (hostLengthMax + 7)).refine((s) => s.split(',').every((a) => one.test(a.trim()) && Number(a.trim().split(':')[1]) <= portRange[1])),
    expect: 'host:port[,host:port...]',
  };
}

/** `sqlite:<path>`, `etcd://host:port[,host:port...]`, or '' (SQLite under the state dir). */
function storeUrl(): Knob {
  return {
    schema: z.string().max(pathLengthMax).regex(/^$|^sqlite:.+$|^etcd:\/\/[^\s:,]+:\d{1,5}(,[^\s:,]+:\d{1,5})*$/),
    expect: 'sqlite:<path> or etcd://host:port[,host:port...]',
  };
}

/** [low, high] with low <= high; from a JSON array or "low,high". */
/** 'process', 'oci,containerd', ...: known names, no repeats; 'emulated' only alone. */
function runtimeList(): Knob {
  const known = new Set<string>(workerRuntimeNames);
  const ok = (s: string): boolean => {
    const names = s.split(',').map((n) => n.trim());
    if (new Set(names).size !== names.length || !names.every((n) => known.has(n))) return false;
    return !names.includes('emulated') || names.length === 1;
  };
  return {
    schema: z.string().max(64).refine(ok),
    expect: `a comma-separated list of ${workerRuntimeNames.join(' | ')} (emulated alone)`,
  };
}

/** The runtimes of a compiled worker config, in the order given. */
export function workerRuntimes(cfg: { runtime: string }): WorkerRuntimeName[] {
  return cfg.runtime.split(',').map((n) => n.trim() as WorkerRuntimeName);
}

/** '' or comma-separated IPv4/IPv6 CIDRs ('10.0.0.0/8,fc00::/7'). */
function cidrList(): Knob {
  const v4 = /^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/;
  const v6 = /^[0-9a-fA-F:]+\/\d{1,3}$/;
  const one = (c: string): boolean => v4.test(c) || (v6.test(c) && c.includes(':'));
  return {
    schema: z.string().max(16_384).refine((s) => s === '' || s.split(',').every((c) => one(c.trim()))),
    expect: "'' or comma-separated CIDRs (10.0.0.0/8,fc00::/7)",
  };
}

/** '' or comma-separated host:port. */
function hostPortList(): Knob {
  const one = /^[^\s:,/]+:\d{1,5}$/;
  return {
    schema: z.string().max(16_384).refine((s) => s === '' || s.split(',').every((a) => one.test(a.trim()))),
    expect: "'' or comma-separated host:port",
  };
}

function pair(min: number, max: number): Knob {
  const bound = z.number().int().min(min).max(max);
  return {
    schema: z.preprocess(
      (raw) => (typeof raw === 'string' ? raw.split(',').map(toNumber) : raw),
      z.tuple([bound, bound]).refine(([low, high]) => low <= high),
    ),
    expect: `two integers low,high with ${min} <= low <= high <= ${max}`,
  };
}

const port = int(...portRange);
const common = {
  host: text(1, hostLengthMax),
  logLevel: oneOf(logLevels as unknown as ['info']),
};

export const controlPlaneKnobs = {
  ...common,
  rpcPort: port,
  apiPort: port,
  apiFd: int(-1, inheritedFdMax),
  stateDir: text(1, pathLengthMax),
  placement: oneOf(placementPolicyNames as unknown as ['kubernetes']),
  heartbeatTimeoutMs: int(100, hourMs),
  rpcPingBurstMax: int(1, 1_000_000),
  rpcPingRefillMs: int(1, hourMs),
  rpcThread: oneOf(['auto', 'thread', 'loop']),
  monitorPeriodMs: int(10, 60_000),
  creationTimeoutMs: int(100, hourMs),
  drainTimeoutMs: int(0, hourMs),
  peerForgetAfterMs: int(1_000, 7 * 24 * hourMs),
  unschedulableFailAfterMs: int(0, hourMs),
  queueFloor: oneOf(['on', 'off']),
  registryQueuePerNameMax: int(1, 1_000_000),
  creatingPerFunctionMax: int(1, 1_000_000),
  retryBackoffMs: int(0, 600_000),
  seed: int(0, 0xffff_ffff),
  store: storeUrl(),
  storePrefix: text(1, pathLengthMax),
  id: text(0, hostLengthMax),
  leaseTtlS: int(1, 60),
  electionPollMs: int(10, 60_000),
  advertiseHost: text(0, hostLengthMax),
  auth: oneOf(['token', 'none']),
  adminTokenFile: text(0, pathLengthMax),
  clusterTokenFile: text(0, pathLengthMax),
  tlsCertFile: text(0, pathLengthMax),
  tlsKeyFile: text(0, pathLengthMax),
  tlsCaFile: text(0, pathLengthMax),
  namespaceFunctionsMax: int(0, 10_000_000),
  namespaceSandboxesMax: int(0, 10_000_000),
  namespaceCpuMillisMax: int(0, 1_000_000_000),
  namespaceMemoryMiBMax: int(0, 1_000_000_000),
} satisfies Record<string, Knob>;

export const dataPlaneKnobs = {
  ...common,
  id: text(0, hostLengthMax),
  proxyPort: port,
  proxyFd: int(-1, inheritedFdMax),
  internalHost: text(1, hostLengthMax),
  internalPort: port,
  controlPlane: addressList(),
  loadBalancing: oneOf(lbPolicyNames as unknown as ['least-loaded']),
  queueDepthMax: int(1, 1_000_000),
  queueWaitMsMax: int(1, hourMs),
  requestBodyBytesMax: int(1, 1 << 30),
  demandReportPeriodMs: int(10, 60_000),
  urgentReportMsMin: int(1, 60_000),
  upstreamRetriesMax: int(0, 100),
  proxyThreads: int(0, proxyThreadsMax),
  httpParser: oneOf(['lean', 'node']),
  upstreamConnectionsMax: int(1, 100_000),
  upstreamConnectTimeoutMs: int(1, 600_000),
  reconnectBackoffMs: pair(1, 600_000),
  invocationHeadersTimeoutMs: int(1, hourMs),
  invocationRequestTimeoutMs: int(1, hourMs),
  invocationKeepAliveTimeoutMs: int(1, hourMs),
  invocationConnectionsMax: int(1, 1_000_000),
  invocationPingBurstMax: int(1, 1_000_000),
  invocationPingRefillMs: int(1, hourMs),
  invocationSyncHoldMsMax: int(0, hourMs),
  auth: oneOf(['token', 'none']),
  clusterTokenFile: text(0, pathLengthMax),
  tlsCertFile: text(0, pathLengthMax),
  tlsKeyFile: text(0, pathLengthMax),
  tlsCaFile: text(0, pathLengthMax),
  stateDir: text(0, pathLengthMax),
  asyncStore: { schema: z.string().max(pathLengthMax).regex(/^$|^redis:\/\/[^\s:,/]+:\d{1,5}$/), expect: "'' (SQLite in the state dir) or redis://host:port" },
  asyncBodyBytesMax: int(1, 1 << 30),
  asyncQueuePerFunctionMax: int(1, 100_000_000),
  asyncQueueTotalMax: int(1, 1_000_000_000),
  asyncConcurrencyShare: { schema: z.preprocess(toNumber, z.number().gt(0).max(1)), expect: 'a fraction in (0, 1]' },
  asyncAttemptsMax: int(1, 100),
  asyncEventAgeMsMax: int(1, 30 * 24 * hourMs),
  asyncRetentionMs: int(1, 365 * 24 * hourMs),
  asyncGcPeriodMs: int(100, 24 * hourMs),
  asyncClaimLeaseMs: int(100, hourMs),
  asyncResultBytesMax: int(0, 1 << 30),
  asyncCallbackAllowPrivate: { schema: z.preprocess((raw) => (raw === 'true' ? true : raw === 'false' ? false : raw), z.boolean()), expect: 'true or false' },
  asyncMode: oneOf(['off', 'all']),
  asyncResultsPort: port,
} satisfies Record<string, Knob>;

export const workerKnobs = {
  ...common,
  id: text(0, hostLengthMax),
  internalHost: text(1, hostLengthMax),
  stateDir: text(1, pathLengthMax),
  count: int(1, emulatedWorkersMax),
  port,
  controlPlane: addressList(),
  runtime: runtimeList(),
  isolation: oneOf(['bwrap', 'none', 'auto']),
  sandboxUidRange: pair(1_000, 2 ** 31 - 2),
  sandboxPidsMax: int(16, 1_000_000),
  sandboxTmpMiB: int(1, 1_048_576),
  sandboxStartupCpuMillis: int(0, 1_000_000),
  egressDenyCidrs: cidrList(),
  ociRuntimeBinary: text(1, pathLengthMax),
  insecureRegistries: hostPortList(),
  containerdSocket: text(0, pathLengthMax),
  heartbeatPeriodMs: int(10, 600_000),
  cpuMillis: int(0, 1_000_000_000),
  memoryMiB: int(0, 1_000_000_000),
  sandboxPortRange: pair(1, portRange[1]),
  readinessTimeoutMs: int(1, hourMs),
  readinessBackoffMs: pair(0, 60_000),
  emulatedCreateMs: int(0, 600_000),
  emulatedNodeCpuMillis: int(1, 1_000_000_000),
  emulatedNodeMemoryMiB: int(1, 1_000_000_000),
  stopGraceMs: int(0, 600_000),
  reconnectBackoffMs: pair(1, 600_000),
  replayEventsMax: int(0, 10_000_000),
  clusterTokenFile: text(0, pathLengthMax),
  tlsCaFile: text(0, pathLengthMax),
} satisfies Record<string, Knob>;

type Widen<T> = T extends number ? number : T extends string ? string : T extends boolean ? boolean : T;
type Mutable<T> = { -readonly [K in keyof T]: Widen<T[K]> };
type LogLevelName = (typeof logLevels)[number];

export type ControlPlaneConfig = Mutable<typeof controlPlaneDefaults> & { logLevel: LogLevelName };
export type DataPlaneConfig = Mutable<typeof dataPlaneDefaults> & { id: string; logLevel: LogLevelName };
export type WorkerConfig = Mutable<typeof workerDefaults> & {
  id: string;
  stateDir: string;
  logLevel: LogLevelName;
  count: number;
};

export function compileControlPlane(options: Record<string, unknown>): ControlPlaneConfig {
  return compile('control plane', { ...controlPlaneDefaults, logLevel: 'info' }, controlPlaneKnobs, options) as ControlPlaneConfig;
}

export function compileDataPlane(options: Record<string, unknown>): DataPlaneConfig {
  return compile('data plane', { ...dataPlaneDefaults, id: '', logLevel: 'info' }, dataPlaneKnobs, options) as DataPlaneConfig;
}

export function compileWorker(options: Record<string, unknown>): WorkerConfig {
  const base = { ...workerDefaults, id: '', stateDir: controlPlaneDefaults.stateDir, logLevel: 'info', count: 1 };
  return compile('worker', base, workerKnobs, options) as WorkerConfig;
}

/**
 * defaults overlaid with options, every key checked by its knob. A key in the defaults without
 * a knob (a new default not yet given a range) is checked against its default's type only.
 */
function compile(
  name: string,
  defaults: Record<string, unknown>,
  knobs: Record<string, Knob>,
  options: Record<string, unknown>,
): Record<string, unknown> {
  const all: Record<string, Knob> = {};
  for (const key of Object.keys(defaults)) all[key] = knobs[key] ?? typeKnob(defaults[key]);
  const shape = Object.fromEntries(Object.entries(all).map(([key, knob]) => [key, knob.schema]));
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const parsed = z.object(shape).strict().safeParse({ ...defaults, ...given });
  if (parsed.success) return parsed.data as Record<string, unknown>;
  throw new ConfigError(describeIssue(name, parsed.error.issues[0]!, all, given));
}

function describeIssue(name: string, issue: z.ZodIssue, knobs: Record<string, Knob>, given: Record<string, unknown>): string {
  if (issue.code === 'unrecognized_keys') {
    return `${name}: unknown option ${issue.keys.join(', ')} (known: ${Object.keys(knobs).join(', ')})`;
  }
  const key = String(issue.path[0]);
  return `${name}: ${key} must be ${knobs[key]!.expect}, got ${show(given[key])}`;
}

function show(value: unknown): string {
  const textValue = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  return textValue.length > 80 ? `${textValue.slice(0, 80)}...` : textValue;
}

function typeKnob(example: unknown): Knob {
  if (typeof example === 'number') return { schema: z.preprocess(toNumber, z.number().finite()), expect: 'a finite number' };
  if (typeof example === 'boolean') {
    return { schema: z.preprocess((raw) => (raw === 'true' ? true : raw === 'false' ? false : raw), z.boolean()), expect: 'true or false' };
  }
  if (typeof example === 'string') return text(0, pathLengthMax);
  return { schema: z.unknown(), expect: 'a value' };
}

/** "[1, 1000000]" / "one of a | b" for help texts, or '' for a key without a knob. */
export function knobHelp(knobs: Record<string, Knob>, key: string): string {
  return knobs[key]?.expect ?? '';
}

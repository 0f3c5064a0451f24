/**
 * @module api/types
 * The lean domain objects of DESIGN §3, as plain data shared by every component.
 * Nothing here does I/O; nothing here imports from outside `api/`.
 */

export interface Resources {
  cpuMillis: number;
  memoryMiB: number;
}

/** KPA knobs (DESIGN §5, workload-and-policies §3). Windows and periods in seconds. */
export interface ScalingSpec {
  min: number;
  max: number;
  initial: number;
  targetUtilization: number; // fraction in (0, 1]
  stableWindowS: number;
  panicWindowS: number;
  panicThreshold: number; // ratio, 2.0 = 200 %
  maxScaleUpRate: number;
  maxScaleDownRate: number;
  scaleToZeroGraceS: number;
  scaleDownDelayS: number;
  tickS: number;
  /**
   * The hybrid histogram keep-alive's range (policy/autoscaler/keep-alive): after a busy spell,
   * one sandbox may be held (or pre-warmed) for up to this long, as the function's idle times
   * say. 0 = off: the KPA alone, as the reference.
   */
  keepAliveWindowS: number;
}

export interface FunctionSpec {
  name: string;
  image: string; // oci/containerd runtimes; '' when command is used
  command: string[]; // process runtime argv; [] when image is used
  workingDir: string; // absolute; '' = the worker's scratch dir
  port: number; // the port the function listens on inside an image; process runtime uses $PORT
  env: Record<string, string>;
  /**
   * May the sandbox open connections beyond this host and the cluster's private ranges?
   * Default false: a sandbox only answers on its port.
   */
  egress: boolean;
  /**
   * Who may invoke it: 'none' (anyone who reaches a DP) or 'token' (a bearer token of scope
   * admin, or deploy/invoke of the function's namespace).
   */
  auth: FunctionAuth;
  resources: Resources;
  concurrency: number; // per-sandbox slots, 0 = unlimited
  timeoutMs: number;
  scaling: ScalingSpec;
  /** How its async invocations are run; absent (or a key absent): the DP's defaults. */
  async?: FunctionAsyncSpec;
}

/**
 * Per-function async settings (issue 11, as Lambda's per-function retry and event-age knobs).
 * Unset keys fall back to the DP's asyncAttemptsMax, asyncEventAgeMsMax and "no retry on 4xx".
 */
export interface FunctionAsyncSpec {
  /** Also retry 4xx answers (a function that answers 404 or 429 while warming up, say). */
  retryOn4xx?: boolean;
  /** Attempts in total, the first included. */
  attemptsMax?: number;
  /** From acceptance to the start of the last attempt allowed. */
  eventAgeMsMax?: number;
}
export const functionAsyncFields = ['retryOn4xx', 'attemptsMax', 'eventAgeMsMax'] as const;

export type FunctionAuth = 'none' | 'token';
export const functionAuthModes: readonly FunctionAuth[] = Object.freeze(['none', 'token']);

/** A stored function: the spec plus bookkeeping. */
export interface FunctionRecord {
  spec: FunctionSpec;
  /** Identity across updates; a deleted and re-created function gets a new one. */
  uid: string;
  /** Bumped on every update. */
  generation: number;
  /**
   * The generation at which the part of the spec a sandbox runs (command, image, env, resources,
   * port, working dir) last changed; a sandbox started at or after it runs the current spec.
   * Absent in records written before it existed: then `generation` stands in.
   */
  specGeneration?: number;
  createdAtMs: number;
  updatedAtMs: number;
}

/**
 * A function's learned idle times: the keep-alive policy's histogram
 * (policy/autoscaler/keep-alive), stored so that a new leader after a CP failover keeps what
 * the old one learned. Only the counts: when the function went idle is the old leader's
 * monotonic time, meaningless to another process.
 */
export interface IdleHistoryRecord {
  /** The function's name and uid: a history of an older function under the name is ignored. */
  function: string;
  functionUid: string;
  /** scaling.keepAliveWindowS the bins were counted against (one bin per minute of it). */
  windowS: number;
  bins: number[];
  samples: number;
  outOfRange: number;
}

export interface WorkerNodeRecord {
  id: string;
  address: string;
}

export interface DataPlaneRecord {
  id: string;
  proxyAddress: string;
  internalAddress: string;
}

/**
 * What a token may do (api/tenancy.ts `authorize`): admin everything, in every namespace;
 * deploy create/change/delete/read/invoke functions of its namespace; invoke only invoke
 * them; read only read them.
 */
export type TokenScope = 'admin' | 'deploy' | 'invoke' | 'read';
export const tokenScopes: readonly TokenScope[] = Object.freeze(['admin', 'deploy', 'invoke', 'read']);

/** A stored API token. The secret itself is never stored: only its SHA-256. */
export interface TokenRecord {
  /** Public id, also the token's prefix (`dgt_<id>_<secret>`); used to list and revoke. */
  id: string;
  /** Hex SHA-256 of the whole token text. */
  sha256Hex: string;
  scope: TokenScope;
  /** The namespace it acts in; '' for admin tokens (every namespace). */
  namespace: string;
  description: string;
  createdAtMs: number;
}

/** Per-namespace bounds (0 = no bound). Sandboxes, CPU and memory count live sandboxes. */
export interface NamespaceQuotas {
  functions: number;
  sandboxes: number;
  cpuMillis: number;
  memoryMiB: number;
}

/** A namespace with quotas set by an admin; namespaces without a record use the defaults. */
export interface NamespaceRecord {
  name: string;
  quotas: NamespaceQuotas;
}

export type SandboxState = 'creating' | 'ready' | 'draining';

/** Live status shown by `GET /v1/functions/{name}`. */
export interface FunctionStatus {
  desired: number;
  ready: number;
  creating: number;
  draining: number;
  queueDepth: number;
  inflight: number;
  panicking: boolean;
  /** Why the autoscaler last changed the desired count (or entered or left panic mode). */
  lastScaleReason: string;
  /** Why placement cannot start a sandbox now (e.g. "insufficient cpu"); absent when it can. */
  unschedulableReason?: string;
  /** Since when it has been unschedulable (epoch ms in the API; monotonic ms inside the CP core). */
  unschedulableSinceMs?: number;
}

/** Error body of every 4xx/5xx answered by the management API and the data plane. */
export interface ApiErrorBody {
  error: { code: string; message: string; field?: string };
}

/** Stable error codes that cross a process boundary. */
export const ErrorCode = {
  invalidJson: 'invalid_json',
  invalidField: 'invalid_field',
  unknownField: 'unknown_field',
  missingField: 'missing_field',
  alreadyExists: 'already_exists',
  notFound: 'not_found',
  functionNotFound: 'function_not_found',
  queueFull: 'queue_full',
  queueTimeout: 'queue_timeout',
  functionTimeout: 'function_timeout',
  sandboxFailure: 'sandbox_failure',
  bodyTooLarge: 'body_too_large',
  unsupportedMediaType: 'unsupported_media_type',
  invalidPath: 'invalid_path',
  methodNotAllowed: 'method_not_allowed',
  storeFailure: 'store_failure',
  internal: 'internal',
  badRequest: 'bad_request',
  headersTooLarge: 'headers_too_large',
  requestTimeout: 'request_timeout',
  unauthorized: 'unauthorized',
  forbidden: 'forbidden',
  quotaExceeded: 'quota_exceeded',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Response headers the data plane adds to every proxied answer. */
export const Header = {
  coldStart: 'x-dirigent-cold-start',
  queueMs: 'x-dirigent-queue-ms',
  sandbox: 'x-dirigent-sandbox',
  /** Request headers of an async execution (the DP sets them; a client's own are dropped). */
  asyncInvocationId: 'x-dirigent-invocation-id',
  asyncAttempt: 'x-dirigent-attempt',
  emulatedDurationMs: 'x-emulated-duration-ms',
} as const;

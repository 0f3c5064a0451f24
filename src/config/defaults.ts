/**
 * @module config/defaults
 * THE one place for defaults and named limits. Everything else reads these through the
 * compiled configs in `config/compile.ts` or the validators in `api/validate.ts`.
 */
import type { ScalingSpec } from '../api/types.js';

/**
 * Named bounds on what one function may ask for (issue: a single POST with 1-milli-CPU
 * sandboxes and scaling.min 1,000,000 must be refused, not attempted). Quotas per namespace
 * come on top of these.
 */
export const sandboxBounds = Object.freeze({
  /** Most sandboxes one function may keep (scaling.min, initial and max). */
  sandboxesPerFunctionMax: 10_000,
  /** Smallest CPU request: at most 100 sandboxes share one core. */
  cpuMillisMin: 10,
  /** Largest CPU request of one sandbox: 64 cores. */
  cpuMillisMax: 64_000,
  /** Smallest memory request: below this not even a static server keeps its pages. */
  memoryMiBMin: 8,
  /** Largest memory request of one sandbox: 256 GiB. */
  memoryMiBMax: 262_144,
});

/** Dirigent's autoscaling defaults: Knative's KPA with target utilization 100 % and no grace. */
export const scalingDefaults: Readonly<ScalingSpec> = Object.freeze({
  min: 0,
  max: sandboxBounds.sandboxesPerFunctionMax,
  initial: 0,
  targetUtilization: 1.0,
  stableWindowS: 60,
  panicWindowS: 6,
  panicThreshold: 2.0,
  maxScaleUpRate: 1000,
  maxScaleDownRate: 2,
  scaleToZeroGraceS: 0,
  scaleDownDelayS: 0,
  tickS: 2,
  keepAliveWindowS: 0,
});

/** Named scaling presets; a registration picks one, then per-field overrides apply. */
export const scalingPresets = Object.freeze({
  dirigent: scalingDefaults,
  /** Knative Serving's shipped defaults (workload-and-policies §3.1). */
  knative: Object.freeze({ ...scalingDefaults, targetUtilization: 0.7, scaleToZeroGraceS: 30, initial: 1 }),
  /** The reference's `cold_start_sweep=true` preset: one sandbox at most, short windows. */
  coldStartSweep: Object.freeze({ ...scalingDefaults, max: 1, stableWindowS: 6, panicWindowS: 2 }),
} satisfies Record<string, Readonly<ScalingSpec>>);
export type ScalingPresetName = keyof typeof scalingPresets;

/** Legal ranges of every scaling knob: [min, max] inclusive. */
export const scalingLimits = Object.freeze({
  min: [0, sandboxBounds.sandboxesPerFunctionMax],
  max: [1, sandboxBounds.sandboxesPerFunctionMax],
  initial: [0, sandboxBounds.sandboxesPerFunctionMax],
  targetUtilization: [0.01, 1],
  stableWindowS: [1, 3600],
  panicWindowS: [1, 3600],
  panicThreshold: [1.1, 1000],
  maxScaleUpRate: [1.01, 1_000_000],
  maxScaleDownRate: [1.01, 1_000_000],
  scaleToZeroGraceS: [0, 3600],
  scaleDownDelayS: [0, 3600],
  tickS: [0.1, 60],
  /** Up to the paper's 4 hours. */
  keepAliveWindowS: [0, 14_400],
} as const satisfies Record<keyof ScalingSpec, readonly [number, number]>);

export const functionDefaults = Object.freeze({
  port: 8080,
  cpuMillis: 100,
  memoryMiB: 128,
  concurrency: 1,
  timeoutMs: 900_000,
});

export const functionLimits = Object.freeze({
  nameLengthMax: 63,
  commandArgsMax: 256,
  commandArgLengthMax: 4096,
  envEntriesMax: 256,
  envValueLengthMax: 32_768,
  imageLengthMax: 1024,
  cpuMillis: [sandboxBounds.cpuMillisMin, sandboxBounds.cpuMillisMax] as const,
  memoryMiB: [sandboxBounds.memoryMiBMin, sandboxBounds.memoryMiBMax] as const,
  port: [1, 65_535] as const,
  concurrency: [0, 100_000] as const,
  timeoutMs: [1, 3_600_000] as const,
  /** A function's async.attemptsMax: at most the DP's own bound (asyncAttemptsMax's range). */
  asyncAttemptsMax: [1, 100] as const,
  /** A function's async.eventAgeMsMax: 1 minute to 6 hours, as Lambda's maximum event age. */
  asyncEventAgeMsMax: [60_000, 6 * 3_600_000] as const,
});

export const ports = Object.freeze({
  cpRpc: 9090,
  cpApi: 9091,
  dpProxy: 8080,
  dpInternal: 8081,
  worker: 10010,
});

export const apiDefaults = Object.freeze({
  host: '127.0.0.1',
  /** Largest JSON or form body the management API reads. */
  bodyBytesMax: 1_048_576,
  /** Past bodyBytesMax, bytes read and dropped so the client sees our 413, not a reset. */
  bodyDiscardBytesMax: 8 * 1_048_576,
  /** Deepest array/object nesting in a JSON body (refused before parsing). */
  jsonNestingDepthMax: 32,
  url: `http://127.0.0.1:${ports.cpApi}`,
});

export const controlPlaneDefaults = Object.freeze({
  host: '127.0.0.1',
  rpcPort: ports.cpRpc,
  apiPort: ports.cpApi,
  /** An inherited socket bound to the API port, to listen on instead of binding `apiPort` (-1: none; see `proxyFd` of the DP). */
  apiFd: -1,
  stateDir: '.dirigent',
  placement: 'kubernetes' as 'kubernetes' | 'random' | 'round-robin',
  /** A worker silent for this long is unschedulable and its sandboxes are replaced. */
  heartbeatTimeoutMs: 3_000,
  /**
   * gRPC port: pings a worker or DP connection may send at once, and one more per refill; past
   * that it ends with GOAWAY too_many_pings (shared/ping-budget). A ping after a send is free.
   */
  rpcPingBurstMax: 10,
  rpcPingRefillMs: 1_000,
  /**
   * Where the worker and DP streams are served: 'thread' runs their sockets, TLS, HTTP/2 and gRPC
   * framing on a worker thread (message bytes cross; decoding and every decision stay on the
   * loop); 'loop' keeps them on the loop; 'auto' = 'thread' from `autoRpcThreadCoresMin` cores up.
   */
  rpcThread: 'auto' as 'auto' | 'thread' | 'loop',
  /**
   * How often the health monitor and reconciler look at the cluster. A tick visits only the
   * functions due then (their record, decision or retry). 50 ms cut the longest CP stalls at
   * 3,000 cold starts/s (41-62 -> 28-29 ms), but after a leader kill the first cold start then
   * took ~3.1 s in two of three runs against ~2.1 s at 250 ms (cause not found yet): 250 stays.
   */
  monitorPeriodMs: 250,
  /** A creation with no answer from the worker after this long counts as failed. */
  creationTimeoutMs: 30_000,
  /**
   * Cap on a drain: a draining sandbox waits for every DP to report it idle, at most the
   * function's timeoutMs and at most this; then it is deleted anyway.
   */
  drainTimeoutMs: 30_000,
  /** Workers and data planes disconnected this long are forgotten, in memory and in the store. */
  peerForgetAfterMs: 10 * 60_000,
  /** Placement failing this long makes DPs fail the function's queued requests with 503. */
  unschedulableFailAfterMs: 2_000,
  /**
   * 'on': the autoscaler never wants fewer sandboxes than requests in flight or queued now
   * (policy/autoscaler/kpa `queueFloor`); 'off': plain KPA, as Knative and the reference.
   */
  queueFloor: 'on' as 'on' | 'off',
  /** Registry operations (create/update/delete) queued per function name while one is stored. */
  registryQueuePerNameMax: 1_000,
  /** Cap on sandboxes being created per function at once; demand beyond waits. */
  creatingPerFunctionMax: 10_000,
  /** Back-off before retrying a failed placement or creation for a function. */
  retryBackoffMs: 200,
  seed: 0, // 0 = derive from the clock at start-up
  /** `sqlite:<path>` (embedded; '' = control-plane.db under stateDir) or `etcd://h:p[,h:p...]` (HA). */
  store: '',
  /** Key prefix of every record and of the election in etcd. */
  storePrefix: '/dirigent/',
  /** This CP's identity among replicas ('' = cp-<host>-<rpcPort>). */
  id: '',
  /** etcd lease of the leader: a leader silent this long loses leadership and stops acting. */
  leaseTtlS: 2,
  /** How often a standby looks for a vacant leadership (and refreshes who leads). */
  electionPollMs: 200,
  /** RPC/API host other processes dial to reach this CP ('' = host, or the hostname if host is a wildcard). */
  advertiseHost: '',
  /**
   * 'token': every management call needs a bearer token (DESIGN §11). 'none' switches that off,
   * and only on a loopback address: the CP refuses to listen elsewhere without auth.
   */
  auth: 'token' as 'token' | 'none',
  /** The bootstrap admin token ('' = admin.token under stateDir); created (0600) when missing. */
  adminTokenFile: '',
  /** The token workers and DPs join with ('' = cluster.token under stateDir); created when missing. */
  clusterTokenFile: '',
  /** TLS for the API and the gRPC links: PEM certificate chain and key ('' = plain TCP). */
  tlsCertFile: '',
  tlsKeyFile: '',
  /** CA the other CPs' certificates chain to: a standby forwards API calls to the leader over HTTPS. */
  tlsCaFile: '',
  /** Default quotas of a namespace without its own (0 = no bound); sandboxes, CPU and memory count live sandboxes. */
  namespaceFunctionsMax: 100_000,
  namespaceSandboxesMax: 100_000,
  namespaceCpuMillisMax: 0,
  namespaceMemoryMiBMax: 0,
});

/**
 * `rpcThread: 'auto'` moves the CP's streams to a thread from this many cores up. Below, the
 * thread has no core of its own and costs more than it gives (BENCHMARKS.md, "The CP's streams
 * on a thread").
 */
export const autoRpcThreadCoresMin = 4;

/** Proxy processes of one data plane (`proxyThreads`). */
export const proxyThreadsMax = 256;
/** `proxyThreads: 0` uses every core from this many cores up. */
export const autoProxyThreadsCoresMin = 4;

export const dataPlaneDefaults = Object.freeze({
  host: '127.0.0.1',
  proxyPort: ports.dpProxy,
  /**
   * An inherited socket, bound to the invocation port, to listen on instead of binding
   * `proxyPort` (-1: none). `up` passes it and keeps its own copy, so connections made while this
   * DP restarts wait for the new process instead of being refused (cli/held-listener).
   */
  proxyFd: -1,
  /**
   * Address of the internal port (health and metrics, plain HTTP, no auth): loopback unless an
   * operator opens it, also when `host` serves invocations to the network.
   */
  internalHost: '127.0.0.1',
  internalPort: ports.dpInternal,
  controlPlane: `127.0.0.1:${ports.cpRpc}`,
  loadBalancing: 'least-loaded' as 'least-loaded' | 'round-robin' | 'random' | 'knative' | 'consistent-hash',
  /** Requests waiting for a sandbox, per function. Beyond it: 503. */
  queueDepthMax: 10_000,
  /** Longest time a request waits for a sandbox. Beyond it: 504. */
  queueWaitMsMax: 60_000,
  /** Largest request body proxied. Beyond it: 413. */
  requestBodyBytesMax: 6 * 1_048_576,
  /** Period of demand reports to the CP (the first one on 0 -> >0 goes at once). */
  demandReportPeriodMs: 1_000,
  /** A queue behind busy sandboxes is reported at once, at most this often per function. */
  urgentReportMsMin: 100,
  /**
   * A sandbox that refuses the connection (nothing listens: it died) got none of the request, and
   * a bodiless idempotent request whose connection closed before any answer is safe to repeat: such
   * a request is tried again (elsewhere if the sandbox refused), at most this many more times.
   * Beyond it: 502.
   */
  upstreamRetriesMax: 3,
  /**
   * Processes serving the invocation port: the primary (which owns routing, slots and queues) and
   * `proxyThreads - 1` proxy processes accepting on the same socket (see data-plane/core/proxy-link).
   * 0 = auto: the core count from `autoProxyThreadsCoresMin` cores up, else 1 (on a small machine
   * the load and the sandboxes share the cores, and a second process costs more than it gives:
   * BENCHMARKS.md, "Every core").
   */
  proxyThreads: 0,
  /**
   * Invocation port, HTTP/1.1 (plain or TLS): 'lean' reads the requests FaaS clients send on the hot path
   * itself (no chunked body, at most 64 KiB, no Expect or Upgrade) and hands any other
   * connection to Node's HTTP server; 'node' has Node's server read every request.
   */
  httpParser: 'lean' as 'lean' | 'node',
  /** Idle keep-alive connections kept per sandbox. */
  upstreamConnectionsMax: 128,
  upstreamConnectTimeoutMs: 2_000,
  reconnectBackoffMs: [50, 500] as const,
  /** Invocation port: the request head must arrive within this (slowloris). Beyond it: 408, closed. */
  invocationHeadersTimeoutMs: 10_000,
  /** Invocation port: the whole request, head and body, must arrive within this. */
  invocationRequestTimeoutMs: 300_000,
  /** Invocation port: an idle keep-alive connection is closed after this. */
  invocationKeepAliveTimeoutMs: 65_000,
  /** Invocation port: open client connections; more are refused. */
  invocationConnectionsMax: 10_000,
  /**
   * Invocation port, HTTP/2: pings a client may send at once, and one more per refill; past
   * that its connection ends with GOAWAY too_many_pings (shared/ping-budget). A ping after part
   * of an answer is free.
   */
  invocationPingBurstMax: 10,
  invocationPingRefillMs: 1_000,
  /**
   * Invocation port: a connection that arrives before the first routing snapshot (a restarted DP
   * a front end still sends to) waits unread for it, and is served then, instead of being told
   * 503 not_ready; this long after start the DP stops waiting and answers not_ready (0: never waits).
   */
  invocationSyncHoldMsMax: 2_000,
  /**
   * 'token': functions with `auth: token` need a bearer token of their namespace. 'none' serves
   * every function to anyone, and only on a loopback address.
   */
  auth: 'token' as 'token' | 'none',
  /** The token this DP joins the CP with (written by `up` or the first CP). */
  clusterTokenFile: '.dirigent/cluster.token',
  /** TLS on the invocation port: PEM certificate chain and key ('' = plain TCP). */
  tlsCertFile: '',
  tlsKeyFile: '',
  /** CA that signed the CP's certificate: set it to reach the CP over TLS ('' = plain TCP). */
  tlsCaFile: '',
  /** The DP's own state (the SQLite async store); '' = .dirigent/dp-<proxyPort>. */
  stateDir: '',
  /** Async invocations: '' = SQLite at <stateDir>/async.db, or redis://host:port. */
  asyncStore: '',
  /** Largest async request body (as Lambda's async payload). Beyond it: 413. */
  asyncBodyBytesMax: 262_144,
  /** Unfinished async invocations per function. Beyond it: 429. */
  asyncQueuePerFunctionMax: 100_000,
  /** Unfinished async invocations on this store in total. Beyond it: 429. */
  asyncQueueTotalMax: 1_000_000,
  /** Fraction of a function's sandbox slots async executions may hold (at least 1), so sync traffic is not starved. */
  asyncConcurrencyShare: 0.5,
  /** Attempts per async invocation in total (Lambda: 1 + 2 retries). */
  asyncAttemptsMax: 3,
  /** An async invocation not started within this after its accept goes dead. */
  asyncEventAgeMsMax: 6 * 3_600_000,
  /** Finished async invocations (results, dead letters) are kept this long. */
  asyncRetentionMs: 24 * 3_600_000,
  /** How often finished async invocations past retention are dropped. */
  asyncGcPeriodMs: 60_000,
  /** A claimed async invocation whose DP neither finished nor renewed it within this is claimable again. */
  asyncClaimLeaseMs: 30_000,
  /** Largest function response kept as an async result; longer ones are truncated (and say so). */
  asyncResultBytesMax: 1_048_576,
  /** Callbacks may go to loopback and private addresses (off: a caller must not make the DP reach internal services). */
  asyncCallbackAllowPrivate: false,
  /** 'all': every request on the proxy port is async (the reference's compatibility mode). */
  asyncMode: 'off' as 'off' | 'all',
  /** Port of the reference-compatible results endpoint (0 = off unless asyncMode is all). */
  asyncResultsPort: 8082,
});

export const workerDefaults = Object.freeze({
  /** Address the worker's sandboxes listen on and the worker advertises to the CP. */
  host: '127.0.0.1',
  /**
   * Address of the health and metrics port (plain HTTP, no auth): loopback unless an operator
   * opens it, also when `host` puts the sandboxes on the network.
   */
  internalHost: '127.0.0.1',
  port: ports.worker,
  controlPlane: `127.0.0.1:${ports.cpRpc}`,
  /**
   * Sandbox runtimes, comma-separated: process (commands) and/or oci, containerd (images); or
   * emulated alone. A worker advertises what it has; placement only picks workers that fit.
   */
  runtime: 'process' as string,
  /**
   * How process sandboxes are walled in: 'bwrap' (bubblewrap namespaces, non-root uid, cgroup
   * limits, packet filter; the worker refuses to start without bwrap), 'none' (plain processes,
   * for trusted code only), or 'auto' (bwrap when installed, else none with a warning).
   */
  isolation: 'bwrap' as 'bwrap' | 'none' | 'auto',
  /**
   * Host uids handed to sandboxes, one per sandbox: the first half for sandboxes without
   * egress, the second half for those with it (the packet filter matches on these ranges).
   */
  sandboxUidRange: [200_000, 219_999] as const,
  /** Processes (threads count) one sandbox may hold: stops fork bombs, allows thread pools. */
  sandboxPidsMax: 512,
  /** Size of each sandbox's private /tmp (tmpfs; counts against its memory limit). */
  sandboxTmpMiB: 64,
  /**
   * CPU quota of a process sandbox until it is ready, when its own is smaller ("start-up CPU
   * boost", as Cloud Run has): bubblewrap, exec and the runtime's own start would otherwise run
   * at the function's steady-state quota (10 milli-CPU: 1 ms per 100 ms, a ~1 s cold start).
   * Bounded in time by the readiness timeout; 0 turns it off.
   */
  sandboxStartupCpuMillis: 1_000,
  /**
   * Destinations refused even to sandboxes with egress on, besides every address of this host
   * (always refused): private, link-local (cloud metadata) and carrier-grade NAT ranges.
   */
  egressDenyCidrs:
    '10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,169.254.0.0/16,100.64.0.0/10,fc00::/7,fe80::/10',
  /** OCI runtime binary the `oci` runtime drives (runc works on cgroup v1 hosts as is). */
  ociRuntimeBinary: 'runc',
  /**
   * Registries spoken to over plain HTTP (host:port, comma-separated). Loopback registries
   * always are, as Docker does.
   */
  insecureRegistries: '',
  /** containerd socket for the `containerd` runtime; '' = start a private containerd. */
  containerdSocket: '',
  heartbeatPeriodMs: 1_000,
  /** Capacity advertised; 0 = read from the machine. */
  cpuMillis: 0,
  memoryMiB: 0,
  /** Host ports handed to process sandboxes. */
  sandboxPortRange: [20_000, 29_999] as const,
  readinessTimeoutMs: 15_000,
  // A Node server is up 45-70 ms after spawn; a 10 ms cap sees it within ~10 ms of ready.
  readinessBackoffMs: [1, 4] as const,
  /** Emulated runtime: how long a creation takes. */
  emulatedCreateMs: 40,
  /**
   * Emulated runtime: the node size advertised when cpuMillis/memoryMiB are 0. A scale test
   * emulates servers, not this VM: 64 cores and 256 GiB hold 6,400 minimum-size sandboxes. The
   * cold bench at R/s keeps about 8·R of them placed (the sweep preset's 6 s window), so `up
   * --workers 10` has room up to 8,000/s; with 32 cores a run at 4,000/s filled it at its end.
   */
  emulatedNodeCpuMillis: 64_000,
  emulatedNodeMemoryMiB: 262_144,
  stopGraceMs: 0,
  reconnectBackoffMs: [50, 500] as const,
  /** Sandbox events (crashes, deletions) kept while the stream to the CP is down; oldest dropped past it. */
  replayEventsMax: 10_000,
  /** The token this worker joins the CP with ('' = cluster.token under stateDir). */
  clusterTokenFile: '',
  /** CA that signed the CP's certificate: set it to reach the CP over TLS ('' = plain TCP). */
  tlsCaFile: '',
});

/**
 * What `up` gives each Node component it starts (CP, DP, workers). V8 starts a process's old
 * generation with a limit of a few MiB and runs a mark-compact whenever the generation reaches
 * its limit, raising it each time: a fresh component under load ran 5-8 of them in one
 * `bench cold` at 4,000/s (its registrations included), the large ones with 26-61 ms of marking
 * steps on its event loop (up to 15.5 ms at a time) while its helper threads took the cores the
 * loops needed. With a first limit of `initialOldSpaceMiB` (node --initial-old-space-size) the
 * DP and the worker ran none there and the CP one. It is a threshold, not a reservation: memory
 * grows only with what is allocated, and V8's memory reducer still collects an idle process.
 * 0 leaves V8's own.
 */
export const upDefaults = Object.freeze({
  initialOldSpaceMiB: 256,
});
/** Accepted by `up --initial-old-space-mib`. */
export const initialOldSpaceMiBMax = 65_536;

export const cliDefaults = Object.freeze({
  apiUrl: apiDefaults.url,
  proxyUrl: `http://127.0.0.1:${ports.dpProxy}`,
  requestTimeoutMs: 30_000,
});

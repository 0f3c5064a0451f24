/**
 * @module loadgen/shell/management
 * Client of the control plane's management API (DESIGN §8): register, delete and read
 * functions, plus bounded-concurrency bulk helpers the benches use before and after a run.
 * Expected outcomes (exists, rejected, unreachable) are values, never thrown.
 */
import { Pool } from 'undici';
import { call as callRaw } from './http-sender.js';
import type { RegistrationBody } from '../core/functions.js';
import { newHistogram, recordMs, type Histogram } from '../core/stats.js';
import { clusterReply } from '../../cli/replies.js';
import { cliAuthForStateDir } from '../../cli/token-source.js';
import { hostNamingConnector } from '../../cli/http.js';
import { clusterCa } from './cluster-trust.js';
import type { ClusterCapacityView } from '../../api/capacity.js';

const managementDefaults = Object.freeze({
  requestTimeoutMs: 30_000,
  /**
   * Bytes read of a management answer. `GET /v1/cluster` lists every sandbox id, about 30
   * bytes each (1.9 MB for the 64,000 sandboxes of a full 10-worker cluster), unless asked not
   * to, which a CP older than `?sandboxIds=false` ignores; and a bench checks the capacity
   * exactly when the cluster is full.
   */
  answerBytesMax: 64 * 1_048_576,
  /**
   * Status reads of a function that does not exist, sent before `bench register` measures:
   * they open the connections and JIT-compile the client path (measured: without them the
   * first ~0.4 s of a run costs ~1 ms of client CPU per registration).
   */
  prewarmRequests: 2_000,
  /** Status polling while waiting for a warm sandbox. */
  readyPollMs: 50,
  readyTimeoutMs: 30_000,
});

export type CallOutcome =
  | { kind: 'ok' }
  | { kind: 'exists' }
  | { kind: 'not_found' }
  | { kind: 'rejected'; status: number; code: string; message: string }
  | { kind: 'unreachable'; code: string; message: string };

export interface FunctionStatusView {
  desired: number;
  ready: number;
  creating: number;
  queueDepth: number;
}

export interface ManagementClient {
  register(body: RegistrationBody): Promise<CallOutcome>;
  remove(name: string): Promise<CallOutcome>;
  status(name: string): Promise<FunctionStatusView | CallOutcome>;
  /** The workers' capacity and allocation and the placements refused (GET /v1/cluster); null when the answer is not one. */
  cluster(): Promise<ClusterCapacityView | null>;
  close(): Promise<void>;
}

const jsonHeaders = ['content-type', 'application/json'];

/** The bearer token of a bench or replay: DIRIGENT_TOKEN, else the admin.token in its --state-dir. */
export function benchToken(stateDir: string): string {
  return cliAuthForStateDir(process.env, process.cwd(), stateDir).token;
}

/** `token`: bearer token of every call (`benchToken`, or '' for none). */
export function createManagementClient(apiUrl: string, connections: number, token: string): ManagementClient {
  const authHeaders = token === '' ? [] : ['authorization', `Bearer ${token}`];
  const pool = new Pool(apiUrl, {
    connections,
    pipelining: 1,
    headersTimeout: managementDefaults.requestTimeoutMs,
    bodyTimeout: managementDefaults.requestTimeoutMs,
    ...(apiUrl.startsWith('https:') ? { connect: hostNamingConnector(clusterCa()) } : {}),
  });
  const call = async (method: 'POST' | 'DELETE' | 'GET', path: string, body?: unknown) => {
    const reply = await callRaw(pool, {
      method,
      path,
      headers: body === undefined ? authHeaders : [...authHeaders, ...jsonHeaders],
      body: body === undefined ? null : JSON.stringify(body),
    }, managementDefaults.answerBytesMax);
    return { status: reply.status, text: reply.text, code: reply.error, message: reply.error, truncated: reply.truncated };
  };
  return {
    async register(body) {
      return toOutcome(await call('POST', '/v1/functions', body));
    },
    async remove(name) {
      return toOutcome(await call('DELETE', `/v1/functions/${encodeURIComponent(name)}`));
    },
    async status(name) {
      const res = await call('GET', `/v1/functions/${encodeURIComponent(name)}`);
      if (res.status !== 200) return toOutcome(res);
      return parseStatus(res.text) ?? rejected(res.status, 'bad_status_body', res.text);
    },
    async cluster() {
      const res = await call('GET', '/v1/cluster?sandboxIds=false');
      return res.status === 200 && !res.truncated ? parseCluster(res.text) : null;
    },
    close: () => pool.close(),
  };
}

/** The capacity fields of a /v1/cluster answer, checked with the CLI's schema (another process's output). */
function parseCluster(text: string): ClusterCapacityView | null {
  try {
    const parsed = clusterReply.safeParse(JSON.parse(text));
    if (!parsed.success) return null;
    const { workers, placementRefusals } = parsed.data;
    return placementRefusals === undefined ? { workers } : { workers, placementRefusals };
  } catch {
    return null;
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export interface BulkResult {
  ok: number;
  failures: Array<{ name: string; outcome: CallOutcome }>;
  elapsedMs: number;
  latency: Histogram;
}

/** Registers every body with `concurrency` requests in flight, timing each call. */
export function registerAll(c: ManagementClient, bodies: readonly RegistrationBody[],
  concurrency: number, onDone?: () => void): Promise<BulkResult> {
  return bulk(bodies.map((b) => b.name), concurrency, (i) => c.register(bodies[i]), onDone);
}

/** Deletes every name; a function already gone counts as deleted. */
export function deleteAll(c: ManagementClient, names: readonly string[], concurrency: number,
  onDone?: () => void): Promise<BulkResult> {
  return bulk(names, concurrency, async (i) => {
    const o = await c.remove(names[i]);
    return o.kind === 'not_found' ? { kind: 'ok' } : o;
  }, onDone);
}

/** Sends `managementDefaults.prewarmRequests` 404-bound status reads, `concurrency` at once. */
export async function prewarmManagement(c: ManagementClient, concurrency: number): Promise<void> {
  const names = new Array<string>(managementDefaults.prewarmRequests).fill('loadgen-prewarm');
  await mapLimited(names, concurrency, (name) => c.status(name));
}

/** Polls the function's status until `ready >= minReady`; false on timeout. */
export async function waitReady(c: ManagementClient, name: string, minReady: number,
  timeoutMs: number = managementDefaults.readyTimeoutMs): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const s = await c.status(name);
    if ('ready' in s && s.ready >= minReady) return true;
    await new Promise((r) => setTimeout(r, managementDefaults.readyPollMs));
  }
  return false;
}

export function describeOutcome(o: CallOutcome): string {
  switch (o.kind) {
    case 'ok': return 'ok';
    case 'exists': return 'already exists (409)';
    case 'not_found': return 'not found (404)';
    case 'rejected': return `HTTP ${o.status} ${o.code}: ${o.message}`;
    case 'unreachable': return `unreachable (${o.code}): ${o.message}`;
  }
}

async function bulk(names: readonly string[], concurrency: number,
  call: (i: number) => Promise<CallOutcome>, onDone?: () => void): Promise<BulkResult> {
  const latency = newHistogram();
  const failures: BulkResult['failures'] = [];
  const t0 = performance.now();
  await mapLimited(names, concurrency, async (name, i) => {
    const s = performance.now();
    const o = await call(i);
    recordMs(latency, performance.now() - s);
    if (o.kind !== 'ok') failures.push({ name, outcome: o });
    onDone?.();
  });
  const elapsedMs = performance.now() - t0;
  return { ok: names.length - failures.length, failures, elapsedMs, latency };
}

interface RawReply {
  status: number;
  text: string;
  code?: string;
  message?: string;
}

function toOutcome(r: RawReply): CallOutcome {
  if (r.status === 0) {
    return { kind: 'unreachable', code: r.code ?? 'unknown', message: r.message ?? '' };
  }
  if (r.status >= 200 && r.status < 300) return { kind: 'ok' };
  if (r.status === 409) return { kind: 'exists' };
  if (r.status === 404) return { kind: 'not_found' };
  const err = parseErrorBody(r.text);
  return rejected(r.status, err.code, err.message);
}

function rejected(status: number, code: string, message: string): CallOutcome {
  return { kind: 'rejected', status, code, message };
}

function parseErrorBody(text: string): { code: string; message: string } {
  try {
    const e = (JSON.parse(text) as { error?: { code?: string; message?: string; field?: string } })
      .error;
    const field = e?.field === undefined ? '' : ` (field ${e.field})`;
    return { code: e?.code ?? 'unknown', message: `${e?.message ?? text}${field}` };
  } catch {
    return { code: 'unknown', message: text.slice(0, 200) };
  }
}

function parseStatus(text: string): FunctionStatusView | null {
  try {
    const s = (JSON.parse(text) as { status?: Partial<FunctionStatusView> }).status;
    if (s === undefined || typeof s.ready !== 'number') return null;
    return { desired: s.desired ?? 0, ready: s.ready, creating: s.creating ?? 0,
      queueDepth: s.queueDepth ?? 0 };
  } catch {
    return null;
  }
}

/**
 * @module loadgen/testing/fake-cluster
 * A stand-in for a Dirigent cluster with the emulated runtime, for the load generator's wiring
 * tests only: the management API subset the benches call and a data plane that answers by
 * Host header, creating a "sandbox" (a short sleep, cold-start header true) on a function's
 * first request and sleeping `x-emulated-duration-ms` per request. It writes a cluster.json
 * naming its own PID for every component. Not a model of the real system's performance.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Header } from '../../api/types.js';
import type { WorkerCapacityView } from '../../api/capacity.js';

export interface FakeCluster {
  apiUrl: string;
  proxyUrl: string;
  stateDir: string;
  functions: Map<string, FakeFunction>;
  /** Registrations and deletions seen, for assertions. */
  counters: { registered: number; deleted: number; invocations: number };
  /** The URLs of the GET /v1/cluster requests seen, in order. */
  clusterUrls: string[];
  close(): Promise<void>;
}

export interface FakeFunction {
  body: Record<string, unknown>;
  sandboxes: number;
}

export interface FakeClusterOptions {
  /** Emulated sandbox creation time, ms. */
  createMs?: number;
  /** Every Nth invocation answers 503 (0: none fail), to check benches count errors right. */
  failEveryNth?: number;
  /** Workers GET /v1/cluster reports (default: one with room). */
  workers?: WorkerCapacityView[];
  /** Placements refused added to the count GET /v1/cluster reports, at each read (default 0). */
  refusalsPerClusterRead?: number;
  /** Sandbox ids each worker lists in GET /v1/cluster (default 0): a full cluster's answer is large. */
  sandboxIdsPerWorker?: number;
}

const roomyWorker: WorkerCapacityView = {
  schedulable: true, capacity: { cpuMillis: 32_000, memoryMiB: 131_072 }, allocated: { cpuMillis: 0, memoryMiB: 0 },
};

export async function startFakeCluster(opts: FakeClusterOptions = {}): Promise<FakeCluster> {
  const createMs = opts.createMs ?? 5;
  const failEveryNth = opts.failEveryNth ?? 0;
  const functions = new Map<string, FakeFunction>();
  const counters = { registered: 0, deleted: 0, invocations: 0 };
  const clusterUrls: string[] = [];
  const workers = opts.workers ?? [roomyWorker];
  const placementRefusals = { total: 0, lastReason: '' };
  const sandboxIds = Array.from({ length: opts.sandboxIdsPerWorker ?? 0 }, (_, i) => `fn-with-a-long-name-${i}-sb-0123456789`);
  const api = createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/v1/cluster' || req.url?.startsWith('/v1/cluster?'))) {
      // Answered as a CP older than `?sandboxIds=false` would: with the ids, whatever the query.
      clusterUrls.push(req.url);
      if ((opts.refusalsPerClusterRead ?? 0) > 0) {
        placementRefusals.total += opts.refusalsPerClusterRead!;
        placementRefusals.lastReason = `0/${workers.length} workers available: ${workers.length} insufficient cpu`;
      }
      return json(res, 200, {
        leader: null,
        workers: workers.map((w, i) => ({ id: `w-${i}`, address: '', sandboxes: sandboxIds.length, sandboxIds, lastHeartbeatAgoMs: 0, ...w })),
        dataPlanes: [], placementRefusals,
      });
    }
    void handleApi(req, res, functions, counters);
  });
  const proxy = createServer(
    (req, res) => void handleProxy(req, res, functions, counters, { createMs, failEveryNth }));
  const apiUrl = await listen(api);
  const proxyUrl = await listen(proxy);
  const stateDir = await mkdtemp(join(tmpdir(), 'loadgen-fake-'));
  const pid = process.pid;
  await writeFile(join(stateDir, 'cluster.json'), JSON.stringify({
    controlPlane: { pid, apiUrl }, dataPlanes: [{ pid, proxyUrl }],
    workers: [{ pid, id: 'worker-1' }],
  }));
  return {
    apiUrl, proxyUrl, stateDir, functions, counters, clusterUrls,
    async close() {
      api.closeAllConnections();
      proxy.closeAllConnections();
      await Promise.all([new Promise((r) => api.close(r)), new Promise((r) => proxy.close(r))]);
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve(`http://127.0.0.1:${typeof a === 'object' && a !== null ? a.port : 0}`);
    });
  });
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

function json(res: ServerResponse, status: number, body?: unknown, headers = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(text);
}

async function handleApi(req: IncomingMessage, res: ServerResponse,
  functions: Map<string, FakeFunction>, counters: FakeCluster['counters']): Promise<void> {
  const body = await readBody(req);
  const name = decodeURIComponent((req.url ?? '').replace(/^\/v1\/functions\/?/, ''));
  if (req.method === 'POST' && name === '') {
    const spec = JSON.parse(body) as Record<string, unknown>;
    const fnName = String(spec.name ?? '');
    if (!/^[a-z0-9-]{1,63}$/.test(fnName)) {
      const error = { code: 'invalid_field', message: 'bad name', field: 'name' };
      return json(res, 400, { error });
    }
    if (functions.has(fnName)) {
      return json(res, 409, { error: { code: 'already_exists', message: fnName } });
    }
    functions.set(fnName, { body: spec, sandboxes: 0 });
    counters.registered++;
    return json(res, 201, spec);
  }
  const fn = functions.get(name);
  if (fn === undefined) return json(res, 404, { error: { code: 'not_found', message: name } });
  if (req.method === 'DELETE') {
    functions.delete(name);
    counters.deleted++;
    return json(res, 204);
  }
  const min = (fn.body.scaling as { min?: number } | undefined)?.min ?? 0;
  const ready = Math.max(fn.sandboxes, min >= 1 ? 1 : 0);
  return json(res, 200, { function: fn.body, status: { desired: ready, ready, creating: 0,
    queueDepth: 0 } });
}

async function handleProxy(req: IncomingMessage, res: ServerResponse,
  functions: Map<string, FakeFunction>, counters: FakeCluster['counters'],
  { createMs, failEveryNth }: { createMs: number; failEveryNth: number }) {
  await readBody(req);
  const fn = functions.get(req.headers.host ?? '');
  if (fn === undefined) {
    const error = { code: 'function_not_found', message: String(req.headers.host) };
    return json(res, 404, { error });
  }
  counters.invocations++;
  if (failEveryNth > 0 && counters.invocations % failEveryNth === 0) {
    return json(res, 503, { error: { code: 'queue_full', message: 'injected failure' } });
  }
  const min = (fn.body.scaling as { min?: number } | undefined)?.min ?? 0;
  const cold = fn.sandboxes === 0 && min < 1;
  if (cold) {
    fn.sandboxes = 1;
    await sleep(createMs);
  }
  const durationMs = Number(req.headers[Header.emulatedDurationMs] ?? 0);
  await sleep(durationMs);
  json(res, 200, { durationMs }, {
    [Header.coldStart]: String(cold),
    [Header.queueMs]: cold ? String(createMs) : '0',
  });
}

function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}

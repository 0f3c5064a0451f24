/**
 * @module data-plane/async/redis-async-store
 * The shared AsyncStore: Redis (ioredis), so every DP of a cluster sees the same invocations and a
 * surviving DP takes over a dead one's. The queue is a Stream with one consumer group: `claim`
 * reads new entries (XREADGROUP) and takes over entries idle longer than the lease (XAUTOCLAIM),
 * which is what a dead DP's accepted or running invocations look like. Retries wait in a sorted
 * set of due times and move back into the stream when due. Every multi-step change is one Lua
 * script (redis-async-scripts.ts). Durability comes from the server: AOF with appendfsync always,
 * so a reply means the write is on disk.
 *
 * Time: retry due times, retention and idempotency expiry follow the nowMs arguments; the lease
 * is the stream's idle time (wall clock on the server), and TTLs on finished invocations and
 * idempotency keys are wall-clock backstops for when no gc runs.
 */
import { Redis } from 'ioredis';
import * as lua from './redis-async-scripts.js';
import {
  AsyncStoreError, asyncCallbackClaimMax, asyncClaimMax, asyncGcBatchMax, asyncStoreDefaults, finishedStatusOf, pageLimit,
  type AcceptResult, type AsyncCounts, type CallbackUpdate, type AsyncStore, type AsyncStoreOptions, type GcResult, type ListPage,
  type ListQuery, type OwnerWriteResult, type RedriveResult,
} from './store.js';
import { summarize, type AsyncAttempt, type AsyncInvocation, type AsyncResult, type AsyncStatus, type CallbackState } from './types.js';

type Script = (...args: (string | number | Buffer)[]) => Promise<unknown>;
type Meta = Pick<AsyncInvocation, 'id' | 'functionKey' | 'functionUid' | 'idempotencyKey' | 'callbackUrl' | 'acceptedAtMs'> & {
  request: Omit<AsyncInvocation['request'], 'body'>;
};

const scripts = {
  asyncAccept: lua.acceptLua, asyncPromote: lua.promoteLua, asyncTake: lua.takeLua, asyncRenew: lua.renewLua,
  asyncFinish: lua.finishLua, asyncRedrive: lua.redriveLua, asyncGc: lua.gcLua,
  asyncClaimCallbacks: lua.claimCallbacksLua, asyncRecordCallback: lua.recordCallbackLua,
};

export interface RedisAsyncStoreOptions extends AsyncStoreOptions {
  /** Key prefix: one per DP cluster (and per test). */
  keyPrefix: string;
}

export class RedisAsyncStore implements AsyncStore {
  private readonly p: string;
  private readonly stream: string;
  private readonly opts: AsyncStoreOptions;

  constructor(private readonly redis: Redis, options: RedisAsyncStoreOptions) {
    const { keyPrefix, ...rest } = options;
    this.p = keyPrefix;
    this.stream = `${keyPrefix}stream`;
    this.opts = { ...asyncStoreDefaults, ...rest };
    for (const [name, body] of Object.entries(scripts)) redis.defineCommand(name, { numberOfKeys: 0, lua: body });
  }

  /** Creates the consumer group (from the stream's start, so nothing added before is missed). */
  async init(): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', this.stream, lua.streamGroup, '0', 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    }
  }

  async accept(inv: AsyncInvocation): Promise<AcceptResult> {
    const meta: Meta = {
      id: inv.id, functionKey: inv.functionKey, acceptedAtMs: inv.acceptedAtMs,
      request: { method: inv.request.method, path: inv.request.path, query: inv.request.query, headers: inv.request.headers },
    };
    if (inv.functionUid !== undefined) meta.functionUid = inv.functionUid;
    if (inv.idempotencyKey !== undefined) meta.idempotencyKey = inv.idempotencyKey;
    if (inv.callbackUrl !== undefined) meta.callbackUrl = inv.callbackUrl;
    const [kind, id] = (await this.script('asyncAccept')(
      this.p, inv.id, inv.functionKey, inv.idempotencyKey ?? '', inv.acceptedAtMs + this.opts.idempotencyKeyRetentionMs,
      this.opts.idempotencyKeyRetentionMs, JSON.stringify(meta), inv.request.body, inv.nextAttemptAtMs, inv.acceptedAtMs,
      inv.callbackUrl !== undefined ? '1' : '',
    )) as [AcceptResult['kind'], string];
    return { kind, id };
  }

  async claim(consumerId: string, nowMs: number, max: number): Promise<AsyncInvocation[]> {
    const n = Math.min(asyncClaimMax, Math.max(0, Math.floor(max)));
    if (n === 0) return [];
    await this.script('asyncPromote')(this.p, nowMs, n);
    const entries = await this.readNew(consumerId, n);
    if (entries.length < n) entries.push(...(await this.takeOver(consumerId, n - entries.length)));
    const leaseUntilMs = nowMs + this.opts.claimLeaseMs;
    const took = await Promise.all(entries.map(([entry, id]) => this.script('asyncTake')(this.p, consumerId, entry, id, leaseUntilMs)));
    const taken = entries.filter((_, i) => took[i] === 1).map(([, id]) => id);
    const invs = await Promise.all(taken.map((id) => this.get(id)));
    return invs.filter((i): i is AsyncInvocation => i !== undefined);
  }

  async renew(id: string, consumerId: string, nowMs: number): Promise<OwnerWriteResult> {
    return (await this.script('asyncRenew')(this.p, id, consumerId, nowMs + this.opts.claimLeaseMs)) as OwnerWriteResult;
  }

  complete(id: string, consumerId: string, result: AsyncResult, attempt: AsyncAttempt): Promise<OwnerWriteResult> {
    return this.finish(id, consumerId, finishedStatusOf(attempt), attempt, { result });
  }

  scheduleRetry(id: string, consumerId: string, attempt: AsyncAttempt, nextAttemptAtMs: number): Promise<OwnerWriteResult> {
    return this.finish(id, consumerId, 'retry', attempt, { nextAttemptAtMs });
  }

  deadLetter(id: string, consumerId: string, attempt: AsyncAttempt, reason: string, result?: AsyncResult): Promise<OwnerWriteResult> {
    return this.finish(id, consumerId, 'dead', attempt, { reason, result });
  }

  async get(id: string): Promise<AsyncInvocation | undefined> {
    const h = await this.redis.hgetallBuffer(`${this.p}inv:${id}`);
    return h.meta ? decode(h) : undefined;
  }

  async list(q: ListQuery): Promise<ListPage> {
    const limit = pageLimit(q.limit);
    const key = this.indexKey(q.functionKey, q.status);
    const ids = await this.redis.zrangebylex(key, q.cursor ? `(${q.cursor}` : '-', '+', 'LIMIT', 0, limit + 1);
    const page = ids.slice(0, limit);
    const invs = await Promise.all(page.map((id) => this.get(id)));
    // An id whose record expired by its wall-clock TTL before gc cleaned the index is skipped.
    const items = invs.filter((i): i is AsyncInvocation => i !== undefined).map(summarize);
    return ids.length > limit ? { items, nextCursor: page[page.length - 1] } : { items };
  }

  async redrive(id: string, nowMs: number): Promise<RedriveResult> {
    return (await this.script('asyncRedrive')(this.p, id, nowMs)) as RedriveResult;
  }

  async counts(nowMs: number): Promise<AsyncCounts> {
    const [pending, oldest] = await Promise.all([
      this.redis.hgetall(`${this.p}pending`),
      this.redis.zrange(`${this.p}pendingz`, '0', '0', 'WITHSCORES'),
    ]);
    const queuedByFunction: Record<string, number> = {};
    let queuedTotal = 0;
    for (const [fn, n] of Object.entries(pending)) {
      const count = Number(n);
      if (count <= 0) continue;
      queuedByFunction[fn] = count;
      queuedTotal += count;
    }
    const oldestQueuedAgeMs = oldest.length === 2 ? Math.max(0, nowMs - Number(oldest[1])) : 0;
    return { queuedByFunction, queuedTotal, oldestQueuedAgeMs, oldestQueuedAgeMsByFunction: await this.oldestByFunction(Object.keys(queuedByFunction), nowMs) };
  }

  /** One ZRANGE per function with unfinished invocations, in one round trip. */
  private async oldestByFunction(fns: string[], nowMs: number): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    if (fns.length === 0) return out;
    const pipe = this.redis.pipeline();
    for (const fn of fns) pipe.zrange(`${this.p}pendingz:${fn}`, '0', '0', 'WITHSCORES');
    const replies = (await pipe.exec()) ?? [];
    fns.forEach((fn, i) => {
      const r = replies[i]?.[1] as string[] | undefined;
      if (r && r.length === 2) out[fn] = Math.max(0, nowMs - Number(r[1]));
    });
    return out;
  }

  async claimCallbacks(consumerId: string, nowMs: number, leaseMs: number, max: number): Promise<AsyncInvocation[]> {
    const n = Math.min(asyncCallbackClaimMax, Math.max(0, Math.floor(max)));
    if (n === 0) return [];
    const ids = (await this.script('asyncClaimCallbacks')(this.p, consumerId, nowMs, nowMs + leaseMs, n)) as string[];
    const invs = await Promise.all(ids.map((id) => this.get(id)));
    return invs.filter((i): i is AsyncInvocation => i !== undefined);
  }

  async recordCallback(id: string, consumerId: string, update: CallbackUpdate): Promise<OwnerWriteResult> {
    return (await this.script('asyncRecordCallback')(
      this.p, id, consumerId, update.state, update.attempts, update.nextAtMs, update.lastError ?? '',
    )) as OwnerWriteResult;
  }

  async gc(nowMs: number): Promise<GcResult> {
    const [inv, keys] = (await this.script('asyncGc')(
      this.p, nowMs - this.opts.resultRetentionMs, nowMs, asyncGcBatchMax,
    )) as [number, number];
    return { invocationsDropped: inv, idempotencyKeysDropped: keys };
  }

  async close(): Promise<void> {
    await this.redis.quit();
  }

  private async finish(
    id: string, consumerId: string, mode: 'retry' | AsyncStatus, attempt: AsyncAttempt,
    extra: { nextAttemptAtMs?: number; reason?: string; result?: AsyncResult },
  ): Promise<OwnerWriteResult> {
    const result = extra.result;
    return (await this.script('asyncFinish')(
      this.p, id, consumerId, mode, JSON.stringify(attempt), extra.nextAttemptAtMs ?? 0, extra.reason ?? '',
      result ? JSON.stringify({ statusCode: result.statusCode, headers: result.headers }) : '',
      result ? result.body : '', attempt.endedAtMs, this.opts.resultRetentionMs,
    )) as OwnerWriteResult;
  }

  /** New entries for this consumer: [entry id, invocation id]. */
  private async readNew(consumerId: string, n: number): Promise<[string, string][]> {
    const reply = (await this.redis.xreadgroup(
      'GROUP', lua.streamGroup, consumerId, 'COUNT', n, 'STREAMS', this.stream, '>',
    )) as [string, [string, string[]][]][] | null;
    return reply ? entriesOf(reply[0][1]) : [];
  }

  /** Entries idle past the lease in any consumer's pending list (a dead or stalled DP's). */
  private async takeOver(consumerId: string, n: number): Promise<[string, string][]> {
    const reply = (await this.redis.xautoclaim(
      this.stream, lua.streamGroup, consumerId, this.opts.claimLeaseMs, '0-0', 'COUNT', n,
    )) as [string, ([string, string[]] | null)[], string[]?];
    return entriesOf(reply[1].filter((e): e is [string, string[]] => e !== null));
  }

  private indexKey(fn?: string, status?: AsyncStatus): string {
    if (fn !== undefined && status !== undefined) return `${this.p}idx:fs:${fn}\n${status}`;
    if (fn !== undefined) return `${this.p}idx:fn:${fn}`;
    if (status !== undefined) return `${this.p}idx:st:${status}`;
    return `${this.p}idx:all`;
  }

  private script(name: keyof typeof scripts): Script {
    const fn = (this.redis as unknown as Record<string, Script>)[name];
    return fn.bind(this.redis);
  }
}

function entriesOf(raw: [string, string[]][]): [string, string][] {
  const out: [string, string][] = [];
  for (const [entry, fields] of raw) {
    const at = fields.indexOf('id');
    if (at >= 0 && at + 1 < fields.length) out.push([entry, fields[at + 1]]);
  }
  return out;
}

function decode(h: Record<string, Buffer>): AsyncInvocation {
  const meta = JSON.parse(h.meta.toString()) as Meta;
  const text = (k: string): string | undefined => h[k]?.toString();
  const num = (k: string): number | undefined => (h[k] === undefined ? undefined : Number(h[k].toString()));
  const inv: AsyncInvocation = {
    ...meta, request: { ...meta.request, body: h.body },
    status: text('status') as AsyncStatus, attempts: JSON.parse(text('attempts') ?? '[]') as AsyncAttempt[],
    nextAttemptAtMs: num('next')!,
  };
  const optional: [keyof AsyncInvocation, unknown][] = [
    ['owner', text('owner')], ['leaseUntilMs', num('lease')], ['finishedAtMs', num('finished')],
    ['redrivenAtMs', num('redriven')], ['deadReason', text('dead')],
  ];
  for (const [k, v] of optional) if (v !== undefined) (inv as unknown as Record<string, unknown>)[k] = v;
  const cbState = text('cbstate');
  if (cbState !== undefined) {
    inv.callback = { state: cbState as CallbackState['state'], attempts: num('cbattempts')!, nextAtMs: num('cbnext')! };
    if (h.cbowner !== undefined) inv.callback.owner = text('cbowner')!;
    if (h.cberror !== undefined) inv.callback.lastError = text('cberror')!;
  }
  if (h.result) inv.result = { ...(JSON.parse(h.result.toString()) as Omit<AsyncResult, 'body'>), body: h.rbody ?? Buffer.alloc(0) };
  return inv;
}

/** Connects, checks the server answers, and creates the consumer group. */
export async function openRedisAsyncStore(url: string, options: Partial<AsyncStoreOptions> & { keyPrefix?: string } = {}): Promise<RedisAsyncStore> {
  const redis = new Redis(url, { lazyConnect: true });
  try {
    await redis.connect();
    const store = new RedisAsyncStore(redis, { ...asyncStoreDefaults, keyPrefix: 'dirigent:async:', ...options });
    await store.init();
    return store;
  } catch (err) {
    redis.disconnect();
    throw new AsyncStoreError(`async redis store at ${url} unavailable: ${(err as Error).message}`, { cause: err });
  }
}

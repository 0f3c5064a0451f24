/**
 * @module control-plane/store/sqlite-store
 * The embedded Store: SQLite through better-sqlite3, WAL with synchronous=FULL, so a write is on
 * disk when its promise resolves. The database lives in a worker_thread (`sqlite-thread.ts`):
 * commits and their fsyncs never block the CP's event loop, even during a registration burst.
 * Writes arriving together share one transaction (group commit).
 */
import { upgradeFunctionRecord } from './record-upgrade.js';
import { Worker } from 'node:worker_threads';
import type { DataPlaneRecord, FunctionRecord, IdleHistoryRecord, NamespaceRecord, TokenRecord, WorkerNodeRecord } from '../../api/types.js';
import { parseIdleHistories } from './idle-history.js';
import type { LoadedRows, StoreReply, StoreRequest } from './sqlite-protocol.js';
import { StoreError, type Store, type StoreContents } from './store.js';

type Pending = { resolve: (rows: LoadedRows | undefined) => void; reject: (e: Error) => void };
type RequestBody = StoreRequest extends infer R ? (R extends StoreRequest ? Omit<R, 'seq'> : never) : never;

export class SqliteStore implements Store {
  private readonly thread: Worker;
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  /** Requests of this event-loop turn, posted to the thread together (one message per turn). */
  private outbox: StoreRequest[] = [];
  private failure: Error | null = null;
  private commits = 0;
  private writes = 0;

  constructor(path: string) {
    this.thread = new Worker(new URL('./sqlite-thread.js', import.meta.url), { workerData: { path } });
    this.thread.on('message', (r: StoreReply) => this.onReply(r));
    this.thread.on('error', (err) => this.failAll(new StoreError(`sqlite thread failed: ${err.message}`, { cause: err })));
    this.thread.on('exit', () => this.failAll(new StoreError('sqlite thread exited')));
  }

  async load(): Promise<StoreContents> {
    const rows = (await this.request({ op: 'load' }))!;
    return {
      functions: rows.functions.map((body) => upgradeRecord(JSON.parse(body) as FunctionRecord)),
      workers: rows.workers,
      dataPlanes: rows.dataPlanes,
      tokens: rows.tokens.map((body) => JSON.parse(body) as TokenRecord),
      namespaces: rows.namespaces.map((body) => JSON.parse(body) as NamespaceRecord),
      ...parseIdleHistories(rows.idleHistories),
    };
  }

  async putFunction(record: FunctionRecord): Promise<void> {
    await this.request({ op: 'putFunction', name: record.spec.name, body: JSON.stringify(record) });
  }

  async deleteFunction(name: string): Promise<void> {
    await this.request({ op: 'deleteFunction', name });
  }

  async putIdleHistories(records: IdleHistoryRecord[]): Promise<void> {
    await Promise.all(records.map((r) => this.request({ op: 'putIdleHistory', name: r.function, body: JSON.stringify(r) })));
  }

  async deleteIdleHistory(name: string): Promise<void> {
    await this.request({ op: 'deleteIdleHistory', name });
  }

  async putWorker(record: WorkerNodeRecord): Promise<void> {
    await this.request({ op: 'putWorker', id: record.id, address: record.address });
  }

  async deleteWorker(id: string): Promise<void> {
    await this.request({ op: 'deleteWorker', id });
  }

  async putDataPlane(record: DataPlaneRecord): Promise<void> {
    await this.request({ op: 'putDataPlane', id: record.id, proxyAddress: record.proxyAddress, internalAddress: record.internalAddress });
  }

  async deleteDataPlane(id: string): Promise<void> {
    await this.request({ op: 'deleteDataPlane', id });
  }

  async putToken(record: TokenRecord): Promise<void> {
    await this.request({ op: 'putToken', id: record.id, body: JSON.stringify(record) });
  }

  async deleteToken(id: string): Promise<void> {
    await this.request({ op: 'deleteToken', id });
  }

  async putNamespace(record: NamespaceRecord): Promise<void> {
    await this.request({ op: 'putNamespace', name: record.name, body: JSON.stringify(record) });
  }

  async deleteNamespace(name: string): Promise<void> {
    await this.request({ op: 'deleteNamespace', name });
  }

  async close(): Promise<void> {
    if (this.failure) return;
    const exited = new Promise<void>((r) => this.thread.once('exit', () => r()));
    await this.request({ op: 'close' });
    await exited;
  }

  private request(body: RequestBody): Promise<LoadedRows | undefined> {
    if (this.failure) return Promise.reject(this.failure);
    this.seq += 1;
    const seq = this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      if (this.outbox.length === 0) setImmediate(this.flush);
      // seq first: V8 adds a property after a spread on a slow path (7 us per write here).
      this.outbox.push({ seq, ...body } as StoreRequest);
    });
  }

  /** A cross-thread message costs about as much as a small write: one per turn, not per write. */
  private readonly flush = (): void => {
    const requests = this.outbox;
    this.outbox = [];
    if (this.failure) return; // failAll rejected them
    this.thread.postMessage(requests);
  };

  /** Commits and the writes they carried since start (commits per second vs writes per second). */
  stats(): { commits: number; writes: number } {
    return { commits: this.commits, writes: this.writes };
  }

  private onReply(r: StoreReply): void {
    if ('seq' in r) return this.settle(r.seq, (p) => p.resolve(r.contents));
    this.commits += 1;
    this.writes += r.seqs.length;
    const failure = r.ok ? null : new StoreError(`sqlite commit failed: ${r.error}`);
    for (const seq of r.seqs) this.settle(seq, (p) => (failure ? p.reject(failure) : p.resolve(undefined)));
  }

  private settle(seq: number, how: (p: Pending) => void): void {
    const p = this.pending.get(seq);
    if (!p) return;
    this.pending.delete(seq);
    how(p);
  }

  private failAll(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

/** Records written before functions had a uid get a stable one derived from their creation. */
function withUid(r: FunctionRecord): FunctionRecord {
  return r.uid ? r : { ...r, uid: `${r.spec.name}-${r.createdAtMs}` };
}

/** Records written by older versions: fields added since get their defaults. */
function upgradeRecord(r: FunctionRecord): FunctionRecord {
  return upgradeFunctionRecord(withUid(r));
}

/** The CP's store: SQLite at `path`, ready once its schema exists. */
export async function openSqliteStore(path: string): Promise<SqliteStore> {
  return new SqliteStore(path);
}

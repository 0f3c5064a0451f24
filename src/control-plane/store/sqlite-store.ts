/**
 * @module control-plane/store/sqlite-store
 * The embedded Store: SQLite through better-sqlite3, WAL with synchronous=FULL, so a write is on
 * disk when its promise resolves. Writes arriving in the same event-loop turn share one
 * transaction (group commit): one fsync for a burst of registrations instead of one each.
 * better-sqlite3 is synchronous; the commit runs on setImmediate, off any invocation path (the
 * CP is never on the invocation path of a warm request).
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DataPlaneRecord, FunctionRecord, WorkerNodeRecord } from '../../api/types.js';
import { StoreError, type Store, type StoreContents } from './store.js';

type Op = () => void;

/** Writes per transaction at most; larger bursts take several commits. */
const groupCommitOpsMax = 4096;

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly stmts;
  private queue: { op: Op; resolve: () => void; reject: (e: Error) => void }[] = [];
  private scheduled = false;

  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS functions (name TEXT PRIMARY KEY, body TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS workers (id TEXT PRIMARY KEY, address TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS data_planes (
        id TEXT PRIMARY KEY, proxy_address TEXT NOT NULL, internal_address TEXT NOT NULL);
    `);
    this.stmts = {
      putFunction: this.db.prepare('INSERT OR REPLACE INTO functions (name, body) VALUES (?, ?)'),
      deleteFunction: this.db.prepare('DELETE FROM functions WHERE name = ?'),
      putWorker: this.db.prepare('INSERT OR REPLACE INTO workers (id, address) VALUES (?, ?)'),
      deleteWorker: this.db.prepare('DELETE FROM workers WHERE id = ?'),
      deleteDataPlane: this.db.prepare('DELETE FROM data_planes WHERE id = ?'),
      putDataPlane: this.db.prepare(
        'INSERT OR REPLACE INTO data_planes (id, proxy_address, internal_address) VALUES (?, ?, ?)',
      ),
    };
  }

  async load(): Promise<StoreContents> {
    const functions = (this.db.prepare('SELECT body FROM functions').all() as { body: string }[]).map(
      (row) => withUid(JSON.parse(row.body) as FunctionRecord),
    );
    const workers = this.db.prepare('SELECT id, address FROM workers').all() as WorkerNodeRecord[];
    const dataPlanes = (
      this.db.prepare('SELECT id, proxy_address, internal_address FROM data_planes').all() as {
        id: string;
        proxy_address: string;
        internal_address: string;
      }[]
    ).map((r) => ({ id: r.id, proxyAddress: r.proxy_address, internalAddress: r.internal_address }));
    return { functions, workers, dataPlanes };
  }

  putFunction(record: FunctionRecord): Promise<void> {
    const body = JSON.stringify(record);
    return this.enqueue(() => this.stmts.putFunction.run(record.spec.name, body));
  }

  deleteFunction(name: string): Promise<void> {
    return this.enqueue(() => this.stmts.deleteFunction.run(name));
  }

  putWorker(record: WorkerNodeRecord): Promise<void> {
    return this.enqueue(() => this.stmts.putWorker.run(record.id, record.address));
  }

  putDataPlane(record: DataPlaneRecord): Promise<void> {
    return this.enqueue(() =>
      this.stmts.putDataPlane.run(record.id, record.proxyAddress, record.internalAddress),
    );
  }

  deleteWorker(id: string): Promise<void> {
    return this.enqueue(() => this.stmts.deleteWorker.run(id));
  }

  deleteDataPlane(id: string): Promise<void> {
    return this.enqueue(() => this.stmts.deleteDataPlane.run(id));
  }

  async close(): Promise<void> {
    this.commit();
    this.db.close();
  }

  private enqueue(op: Op): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ op, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.commit());
      }
    });
  }

  private commit(): void {
    this.scheduled = false;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, groupCommitOpsMax);
      try {
        this.db.transaction(() => {
          for (const item of batch) item.op();
        })();
        for (const item of batch) item.resolve();
      } catch (cause) {
        const err = new StoreError(`sqlite commit failed: ${(cause as Error).message}`, { cause });
        for (const item of batch) item.reject(err);
      }
    }
  }
}

/** Records written before functions had a uid get a stable one derived from their creation. */
function withUid(r: FunctionRecord): FunctionRecord {
  return r.uid ? r : { ...r, uid: `${r.spec.name}-${r.createdAtMs}` };
}

/** The CP's store: SQLite at `path`. */
export async function openSqliteStore(path: string): Promise<SqliteStore> {
  return new SqliteStore(path);
}

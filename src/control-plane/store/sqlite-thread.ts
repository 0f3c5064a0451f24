/**
 * @module control-plane/store/sqlite-thread
 * The SQLite side of `SqliteStore`, run in a worker_thread so a commit (an fsync with
 * synchronous=FULL) never stalls the CP's event loop. Requests arriving in one turn of this
 * thread's loop share one transaction (group commit); each is answered only after its commit,
 * so a write is durable when the CP's promise resolves.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import type { StoreReply, StoreRequest } from './sqlite-protocol.js';

/** Writes per transaction at most; larger bursts take several commits. */
const groupCommitOpsMax = 4096;

const path = (workerData as { path: string }).path;
mkdirSync(dirname(path), { recursive: true });
const db = new Database(path);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec(`
  CREATE TABLE IF NOT EXISTS functions (name TEXT PRIMARY KEY, body TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS workers (id TEXT PRIMARY KEY, address TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS data_planes (
    id TEXT PRIMARY KEY, proxy_address TEXT NOT NULL, internal_address TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, body TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS namespaces (name TEXT PRIMARY KEY, body TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS idle_histories (name TEXT PRIMARY KEY, body TEXT NOT NULL);
`);
const stmts = {
  putFunction: db.prepare('INSERT OR REPLACE INTO functions (name, body) VALUES (?, ?)'),
  deleteFunction: db.prepare('DELETE FROM functions WHERE name = ?'),
  putIdleHistory: db.prepare('INSERT OR REPLACE INTO idle_histories (name, body) VALUES (?, ?)'),
  deleteIdleHistory: db.prepare('DELETE FROM idle_histories WHERE name = ?'),
  putWorker: db.prepare('INSERT OR REPLACE INTO workers (id, address) VALUES (?, ?)'),
  deleteWorker: db.prepare('DELETE FROM workers WHERE id = ?'),
  putDataPlane: db.prepare('INSERT OR REPLACE INTO data_planes (id, proxy_address, internal_address) VALUES (?, ?, ?)'),
  deleteDataPlane: db.prepare('DELETE FROM data_planes WHERE id = ?'),
  putToken: db.prepare('INSERT OR REPLACE INTO tokens (id, body) VALUES (?, ?)'),
  deleteToken: db.prepare('DELETE FROM tokens WHERE id = ?'),
  putNamespace: db.prepare('INSERT OR REPLACE INTO namespaces (name, body) VALUES (?, ?)'),
  deleteNamespace: db.prepare('DELETE FROM namespaces WHERE name = ?'),
};

let queue: StoreRequest[] = [];
let scheduled = false;
const port = parentPort!;

function reply(r: StoreReply): void {
  port.postMessage(r);
}

function apply(req: StoreRequest): void {
  switch (req.op) {
    case 'putFunction': stmts.putFunction.run(req.name, req.body); break;
    case 'deleteFunction':
      stmts.deleteFunction.run(req.name);
      stmts.deleteIdleHistory.run(req.name);
      break;
    case 'putIdleHistory': stmts.putIdleHistory.run(req.name, req.body); break;
    case 'deleteIdleHistory': stmts.deleteIdleHistory.run(req.name); break;
    case 'putWorker': stmts.putWorker.run(req.id, req.address); break;
    case 'deleteWorker': stmts.deleteWorker.run(req.id); break;
    case 'putDataPlane': stmts.putDataPlane.run(req.id, req.proxyAddress, req.internalAddress); break;
    case 'deleteDataPlane': stmts.deleteDataPlane.run(req.id); break;
    case 'putToken': stmts.putToken.run(req.id, req.body); break;
    case 'deleteToken': stmts.deleteToken.run(req.id); break;
    case 'putNamespace': stmts.putNamespace.run(req.name, req.body); break;
    case 'deleteNamespace': stmts.deleteNamespace.run(req.name); break;
    default: break;
  }
}

function commit(): void {
  scheduled = false;
  while (queue.length > 0) {
    const batch = queue.slice(0, groupCommitOpsMax);
    queue = queue.slice(batch.length);
    try {
      db.transaction(() => {
        for (const req of batch) apply(req);
      })();
      reply({ seqs: batch.map((req) => req.seq), ok: true });
    } catch (err) {
      reply({ seqs: batch.map((req) => req.seq), ok: false, error: (err as Error).message });
    }
  }
}

function load(seq: number): void {
  const functions = (db.prepare('SELECT body FROM functions').all() as { body: string }[]).map((r) => r.body);
  const workers = db.prepare('SELECT id, address FROM workers').all() as { id: string; address: string }[];
  const dataPlanes = (db.prepare('SELECT id, proxy_address, internal_address FROM data_planes').all() as {
    id: string; proxy_address: string; internal_address: string;
  }[]).map((r) => ({ id: r.id, proxyAddress: r.proxy_address, internalAddress: r.internal_address }));
  const bodies = (table: string): string[] => (db.prepare(`SELECT body FROM ${table}`).all() as { body: string }[]).map((r) => r.body);
  reply({ seq, ok: true, contents: { functions, workers, dataPlanes, tokens: bodies('tokens'), namespaces: bodies('namespaces'),
    idleHistories: bodies('idle_histories') } });
}

/** The requests of one CP event-loop turn, in order. */
port.on('message', (requests: StoreRequest[]) => {
  for (const req of requests) {
    if (req.op === 'load') {
      commit();
      load(req.seq);
      continue;
    }
    if (req.op === 'close') {
      commit();
      db.close();
      reply({ seq: req.seq, ok: true });
      port.close();
      return;
    }
    queue.push(req);
  }
  if (!scheduled && queue.length > 0) {
    scheduled = true;
    setImmediate(commit);
  }
});

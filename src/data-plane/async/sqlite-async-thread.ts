/**
 * @module data-plane/async/sqlite-async-thread
 * The SQLite side of `SqliteAsyncStore`, in a worker_thread so commits (fsyncs) never stall the
 * DP's event loop. Requests that arrive in one turn of this thread's loop run in ONE transaction
 * (group commit: a burst of 1,000 accepts costs about one fsync); each is answered only after
 * that commit, so a write is durable when the DP's promise resolves. A request that throws fails
 * alone: the batch is rolled back and run again with a savepoint per request.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteAsyncOps } from './sqlite-async-ops.js';
import type { AsyncThreadData, AsyncThreadReply, AsyncThreadRequest } from './sqlite-async-protocol.js';

/** Requests per transaction at most; a larger burst takes several commits. */
const groupCommitOpsMax = 4096;

const data = workerData as AsyncThreadData;
mkdirSync(dirname(data.path), { recursive: true });
const db = new Database(data.path);
db.pragma('journal_mode = WAL');
// FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on a power cut, and a 202 promises
// the request is stored. Group commit pays for the extra fsync.
db.pragma('synchronous = FULL');
const ops = new SqliteAsyncOps(db, data.options);
const port = parentPort!;

let queue: AsyncThreadRequest[] = [];
let scheduled = false;

function run(req: AsyncThreadRequest): AsyncThreadReply {
  try {
    const fn = (ops as unknown as Record<string, (...a: unknown[]) => unknown>)[req.op];
    const value = db.transaction(() => fn.apply(ops, req.args))();
    return { seq: req.seq, ok: true, value };
  } catch (err) {
    return { seq: req.seq, ok: false, error: (err as Error).message };
  }
}

/** Runs one request in the batch's transaction; a throw rolls the whole batch back. */
function runBare(req: AsyncThreadRequest): AsyncThreadReply {
  const fn = (ops as unknown as Record<string, (...a: unknown[]) => unknown>)[req.op];
  return { seq: req.seq, ok: true, value: fn.apply(ops, req.args) };
}

function commitBatch(batch: AsyncThreadRequest[]): void {
  let replies: AsyncThreadReply[];
  try {
    // The common case: every request succeeds, one transaction and no savepoints.
    replies = db.transaction(() => batch.map(runBare))();
  } catch {
    // One failed and the batch was rolled back: run them again, each in its own savepoint
    // (nested transactions), so the one that throws fails alone.
    try {
      replies = db.transaction(() => batch.map(run))();
    } catch (err) {
      replies = batch.map((r) => ({ seq: r.seq, ok: false, error: (err as Error).message }));
    }
  }
  port.postMessage(replies);
}

function commit(): void {
  scheduled = false;
  while (queue.length > 0) {
    const batch = queue.slice(0, data.groupCommit ? groupCommitOpsMax : 1);
    queue = queue.slice(batch.length);
    commitBatch(batch);
  }
}

// The store sends the requests of one of its turns as one message.
port.on('message', (reqs: AsyncThreadRequest[]) => {
  for (const req of reqs) {
    if (req.op === 'close') {
      commit();
      db.close();
      port.postMessage([{ seq: req.seq, ok: true, value: undefined }] satisfies AsyncThreadReply[]);
      port.close();
      return;
    }
    queue.push(req);
  }
  if (!scheduled) {
    scheduled = true;
    setImmediate(commit);
  }
});

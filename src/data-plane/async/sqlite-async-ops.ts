/**
 * @module data-plane/async/sqlite-async-ops
 * The AsyncStore operations as synchronous functions over one better-sqlite3 database. They run
 * in the store's worker thread inside the group-commit transaction, so each read-modify-write is
 * atomic without further locking. A row keeps the invocation as JSON (`doc`, without bodies),
 * the two bodies as BLOBs, and copies of the fields the queries filter and sort on.
 */
import type Database from 'better-sqlite3';
import {
  asyncCallbackClaimMax, asyncClaimMax, asyncGcBatchMax, finishedStatusOf, pageLimit,
  type AcceptResult, type AsyncCounts, type CallbackUpdate, type AsyncStoreOptions, type GcResult, type ListPage, type ListQuery,
  type OwnerWriteResult, type RedriveResult,
} from './store.js';
import { summarize, type AsyncAttempt, type AsyncInvocation, type AsyncResult } from './types.js';

type Row = { doc: string; body: Buffer; result_body: Buffer | null };

export const schemaSql = `
  CREATE TABLE IF NOT EXISTS invocations (
    id TEXT PRIMARY KEY, fn TEXT NOT NULL, status TEXT NOT NULL, next_attempt_at_ms INTEGER NOT NULL,
    lease_until_ms INTEGER, accepted_at_ms INTEGER NOT NULL, finished_at_ms INTEGER,
    doc TEXT NOT NULL, body BLOB NOT NULL, result_body BLOB);
  CREATE INDEX IF NOT EXISTS invocations_due ON invocations (status, next_attempt_at_ms);
  CREATE INDEX IF NOT EXISTS invocations_lease ON invocations (status, lease_until_ms);
  CREATE INDEX IF NOT EXISTS invocations_fn ON invocations (fn, id);
  CREATE INDEX IF NOT EXISTS invocations_status ON invocations (status, id);
  CREATE INDEX IF NOT EXISTS invocations_finished ON invocations (finished_at_ms) WHERE finished_at_ms IS NOT NULL;
  CREATE TABLE IF NOT EXISTS idempotency_keys (
    fn TEXT NOT NULL, key TEXT NOT NULL, id TEXT NOT NULL, expires_at_ms INTEGER NOT NULL, PRIMARY KEY (fn, key));
  CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency_keys (expires_at_ms);
`;

/** Added after the first schema: due time of a pending callback (NULL otherwise). */
const callbackColumnSql = 'ALTER TABLE invocations ADD COLUMN callback_due_ms INTEGER';
const callbackIndexSql = `CREATE INDEX IF NOT EXISTS invocations_callback ON invocations (callback_due_ms)
  WHERE callback_due_ms IS NOT NULL`;

function migrate(db: Database.Database): void {
  db.exec(schemaSql);
  const columns = db.prepare('PRAGMA table_info(invocations)').all() as { name: string }[];
  if (!columns.some((c) => c.name === 'callback_due_ms')) db.exec(callbackColumnSql);
  db.exec(callbackIndexSql);
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

export class SqliteAsyncOps {
  private readonly stmts;

  constructor(private readonly db: Database.Database, private readonly opts: AsyncStoreOptions) {
    migrate(db);
    this.stmts = {
      insert: db.prepare(`INSERT INTO invocations
        (id, fn, status, next_attempt_at_ms, lease_until_ms, accepted_at_ms, finished_at_ms, doc, body, result_body, callback_due_ms)
        VALUES (@id, @fn, @status, @next, @lease, @accepted, @finished, @doc, @body, @resultBody, @callbackDue)`),
      // A change of state: the identity columns and the request body stay, so their indexes do too.
      update: db.prepare(`UPDATE invocations SET status = @status, next_attempt_at_ms = @next, lease_until_ms = @lease,
        finished_at_ms = @finished, doc = @doc, result_body = @resultBody, callback_due_ms = @callbackDue WHERE id = @id`),
      dueCallbacks: db.prepare(`SELECT doc, body, result_body FROM invocations
        WHERE callback_due_ms IS NOT NULL AND callback_due_ms <= ? ORDER BY callback_due_ms, id LIMIT ?`),
      get: db.prepare('SELECT doc, body, result_body FROM invocations WHERE id = ?'),
      idemGet: db.prepare('SELECT id, expires_at_ms FROM idempotency_keys WHERE fn = ? AND key = ?'),
      idemPut: db.prepare('INSERT OR REPLACE INTO idempotency_keys (fn, key, id, expires_at_ms) VALUES (?, ?, ?, ?)'),
      due: db.prepare(`SELECT doc, body, result_body FROM invocations
        WHERE status = 'queued' AND next_attempt_at_ms <= ? ORDER BY next_attempt_at_ms, id LIMIT ?`),
      expired: db.prepare(`SELECT doc, body, result_body FROM invocations
        WHERE status = 'running' AND lease_until_ms <= ? ORDER BY lease_until_ms, id LIMIT ?`),
      countsByFn: db.prepare(`SELECT fn, COUNT(*) AS n, MIN(accepted_at_ms) AS t FROM invocations
        WHERE status IN ('queued', 'running') GROUP BY fn`),
      oldest: db.prepare(`SELECT MIN(accepted_at_ms) AS t FROM invocations WHERE status IN ('queued', 'running')`),
      gcRows: db.prepare('SELECT id FROM invocations WHERE finished_at_ms IS NOT NULL AND finished_at_ms <= ? LIMIT ?'),
      delete: db.prepare('DELETE FROM invocations WHERE id = ?'),
      gcKeys: db.prepare(`DELETE FROM idempotency_keys WHERE rowid IN
        (SELECT rowid FROM idempotency_keys WHERE expires_at_ms <= ? LIMIT ?)`),
    };
  }

  accept(inv: AsyncInvocation): AcceptResult {
    if (inv.idempotencyKey !== undefined) {
      const held = this.stmts.idemGet.get(inv.functionKey, inv.idempotencyKey) as { id: string; expires_at_ms: number } | undefined;
      if (held && held.expires_at_ms > inv.acceptedAtMs) return { kind: 'duplicate', id: held.id };
      this.stmts.idemPut.run(inv.functionKey, inv.idempotencyKey, inv.id, inv.acceptedAtMs + this.opts.idempotencyKeyRetentionMs);
    }
    this.insert({ ...inv, status: 'queued', owner: undefined, leaseUntilMs: undefined });
    return { kind: 'accepted', id: inv.id };
  }

  claim(consumerId: string, nowMs: number, max: number): AsyncInvocation[] {
    const n = Math.min(asyncClaimMax, Math.max(0, Math.floor(max)));
    if (n === 0) return [];
    const rows = this.stmts.due.all(nowMs, n) as Row[];
    if (rows.length < n) rows.push(...(this.stmts.expired.all(nowMs, n - rows.length) as Row[]));
    return rows.map((r) => {
      const inv: AsyncInvocation = { ...this.decode(r), status: 'running', owner: consumerId, leaseUntilMs: nowMs + this.opts.claimLeaseMs };
      this.save(inv);
      return inv;
    });
  }

  renew(id: string, consumerId: string, nowMs: number): OwnerWriteResult {
    return this.ownerWrite(id, consumerId, (inv) => ({ ...inv, leaseUntilMs: nowMs + this.opts.claimLeaseMs }));
  }

  complete(id: string, consumerId: string, result: AsyncResult, attempt: AsyncAttempt): OwnerWriteResult {
    return this.ownerWrite(id, consumerId, (inv) => finished(inv, attempt, finishedStatusOf(attempt), result));
  }

  scheduleRetry(id: string, consumerId: string, attempt: AsyncAttempt, nextAttemptAtMs: number): OwnerWriteResult {
    return this.ownerWrite(id, consumerId, (inv) => ({
      ...inv, status: 'queued', attempts: [...inv.attempts, attempt], nextAttemptAtMs, owner: undefined, leaseUntilMs: undefined,
    }));
  }

  deadLetter(id: string, consumerId: string, attempt: AsyncAttempt, reason: string, result?: AsyncResult): OwnerWriteResult {
    return this.ownerWrite(id, consumerId, (inv) => ({ ...finished(inv, attempt, 'dead', result ?? inv.result), deadReason: reason }));
  }

  get(id: string): AsyncInvocation | undefined {
    const row = this.stmts.get.get(id) as Row | undefined;
    return row ? this.decode(row) : undefined;
  }

  list(q: ListQuery): ListPage {
    const limit = pageLimit(q.limit);
    const where: string[] = ['id > ?'];
    const args: (string | number)[] = [q.cursor ?? ''];
    if (q.functionKey !== undefined) { where.push('fn = ?'); args.push(q.functionKey); }
    if (q.status !== undefined) { where.push('status = ?'); args.push(q.status); }
    const sql = `SELECT doc, body, result_body FROM invocations WHERE ${where.join(' AND ')} ORDER BY id LIMIT ?`;
    const rows = this.db.prepare(sql).all(...args, limit + 1) as Row[];
    const items = rows.slice(0, limit).map((r) => summarize(this.decode(r)));
    return rows.length > limit ? { items, nextCursor: items[items.length - 1].id } : { items };
  }

  redrive(id: string, nowMs: number): RedriveResult {
    const inv = this.get(id);
    if (!inv) return 'not_found';
    if (inv.status !== 'dead' && inv.status !== 'failed') return 'not_redrivable';
    this.save({
      ...inv, status: 'queued', nextAttemptAtMs: nowMs, redrivenAtMs: nowMs,
      finishedAtMs: undefined, deadReason: undefined, owner: undefined, leaseUntilMs: undefined, callback: undefined,
    });
    return 'ok';
  }

  claimCallbacks(consumerId: string, nowMs: number, leaseMs: number, max: number): AsyncInvocation[] {
    const n = Math.min(asyncCallbackClaimMax, Math.max(0, Math.floor(max)));
    if (n === 0) return [];
    return (this.stmts.dueCallbacks.all(nowMs, n) as Row[]).map((r) => {
      const inv = this.decode(r);
      const claimed: AsyncInvocation = { ...inv, callback: { ...inv.callback!, owner: consumerId, nextAtMs: nowMs + leaseMs } };
      this.save(claimed);
      return claimed;
    });
  }

  recordCallback(id: string, consumerId: string, update: CallbackUpdate): OwnerWriteResult {
    const inv = this.get(id);
    if (!inv) return 'not_found';
    // A DP whose lease ran out (another took the callback over) must not overwrite its record.
    if (inv.callback?.state !== 'pending' || inv.callback.owner !== consumerId) return 'not_owner';
    this.save({ ...inv, callback: { ...update } });
    return 'ok';
  }

  counts(nowMs: number): AsyncCounts {
    const queuedByFunction: Record<string, number> = {};
    const oldestQueuedAgeMsByFunction: Record<string, number> = {};
    let queuedTotal = 0;
    for (const r of this.stmts.countsByFn.all() as { fn: string; n: number; t: number }[]) {
      queuedByFunction[r.fn] = r.n;
      oldestQueuedAgeMsByFunction[r.fn] = Math.max(0, nowMs - r.t);
      queuedTotal += r.n;
    }
    const oldest = (this.stmts.oldest.get() as { t: number | null }).t;
    return { queuedByFunction, queuedTotal, oldestQueuedAgeMs: oldest === null ? 0 : Math.max(0, nowMs - oldest), oldestQueuedAgeMsByFunction };
  }

  gc(nowMs: number): GcResult {
    const ids = this.stmts.gcRows.all(nowMs - this.opts.resultRetentionMs, asyncGcBatchMax) as { id: string }[];
    for (const { id } of ids) this.stmts.delete.run(id);
    const keys = this.stmts.gcKeys.run(nowMs, asyncGcBatchMax).changes;
    return { invocationsDropped: ids.length, idempotencyKeysDropped: keys };
  }

  private ownerWrite(id: string, consumerId: string, change: (inv: AsyncInvocation) => AsyncInvocation): OwnerWriteResult {
    const inv = this.get(id);
    if (!inv) return 'not_found';
    // A consumer whose lease ran out and was taken over must not overwrite the new owner's work.
    if (inv.status !== 'running' || inv.owner !== consumerId) return 'not_owner';
    this.save(change(inv));
    return 'ok';
  }

  /** Writes a new invocation (accept); its id must not be stored yet. */
  private insert(inv: AsyncInvocation): void {
    this.stmts.insert.run({ ...this.stateColumns(inv), fn: inv.functionKey, accepted: inv.acceptedAtMs, body: asBuffer(inv.request.body) });
  }

  /** Writes a stored invocation's new state; its function, accept time and request never change. */
  private save(inv: AsyncInvocation): void {
    this.stmts.update.run(this.stateColumns(inv));
  }

  private stateColumns(inv: AsyncInvocation) {
    const { request, result, ...rest } = inv;
    const { body: _body, ...req } = request;
    const doc = { ...rest, request: req, result: result ? { statusCode: result.statusCode, headers: result.headers } : undefined };
    return {
      id: inv.id, status: inv.status, next: inv.nextAttemptAtMs, lease: inv.leaseUntilMs ?? null,
      finished: inv.finishedAtMs ?? null, doc: JSON.stringify(doc), resultBody: result ? asBuffer(result.body) : null,
      callbackDue: inv.callback?.state === 'pending' ? inv.callback.nextAtMs : null,
    };
  }

  private decode(row: Row): AsyncInvocation {
    const doc = JSON.parse(row.doc) as Omit<AsyncInvocation, 'request' | 'result'> & {
      request: Omit<AsyncInvocation['request'], 'body'>; result?: Omit<AsyncResult, 'body'>;
    };
    const inv: AsyncInvocation = { ...doc, request: { ...doc.request, body: row.body }, result: undefined };
    if (doc.result) inv.result = { ...doc.result, body: row.result_body ?? Buffer.alloc(0) };
    else delete inv.result;
    return inv;
  }
}

function finished(inv: AsyncInvocation, attempt: AsyncAttempt, status: AsyncInvocation['status'], result?: AsyncResult): AsyncInvocation {
  return {
    ...inv, status, attempts: [...inv.attempts, attempt], finishedAtMs: attempt.endedAtMs,
    result, owner: undefined, leaseUntilMs: undefined,
    // In the same write as the finish: a DP that dies right after still leaves the callback due.
    callback: inv.callbackUrl !== undefined ? { state: 'pending', attempts: 0, nextAtMs: attempt.endedAtMs } : undefined,
  };
}

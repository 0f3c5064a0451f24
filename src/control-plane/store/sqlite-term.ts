/**
 * @module control-plane/store/sqlite-term
 * The single-CP layout's leader term: a counter in the CP's SQLite file, +1 (durably) per start,
 * so the term still grows across restarts and workers fence off commands of an older run.
 * Runs once at start-up, before the store thread serves requests (WAL allows the second handle).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

export function nextSqliteTerm(path: string): number {
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE IF NOT EXISTS cp_term (k INTEGER PRIMARY KEY CHECK (k = 0), term INTEGER NOT NULL)');
    const row = db.prepare('INSERT INTO cp_term (k, term) VALUES (0, 1) ON CONFLICT (k) DO UPDATE SET term = term + 1 RETURNING term').get() as { term: number };
    return row.term;
  } finally {
    db.close();
  }
}

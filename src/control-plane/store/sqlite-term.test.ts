/**
 * Goal: the single-CP term grows across restarts (workers fence off an older run's commands).
 * Method: take the next term three times from one SQLite file, and once from a fresh file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { nextSqliteTerm } from './sqlite-term.js';

it('grows by one on every start and starts at 1', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dirigent-term-'));
  try {
    const path = join(dir, 'control-plane.db');
    assert.deepEqual([nextSqliteTerm(path), nextSqliteTerm(path), nextSqliteTerm(path)], [1, 2, 3]);
    assert.equal(nextSqliteTerm(join(dir, 'other.db')), 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

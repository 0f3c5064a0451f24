/**
 * Goal: the SQLite store (in its worker thread) meets the Store contract; a malformed idle
 * history in the file (written by something else) is dropped and counted, not thrown on.
 * Method: the shared contract suite against a store in a fresh temporary directory; then rows
 * written into the file directly, behind the store's back.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import Database from 'better-sqlite3';
import { openSqliteStore } from './sqlite-store.js';
import { storeContract } from './store.contract.js';

storeContract('sqlite', (dir) => openSqliteStore(join(dir, 'control-plane.db')));

it('sqlite: a malformed idle history in the file is dropped and counted', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dirigent-store-'));
  try {
    const path = join(dir, 'control-plane.db');
    await (await openSqliteStore(path)).close(); // makes the tables
    const good = { function: 'a', functionUid: 'a-u', windowS: 60, bins: [2], samples: 2, outOfRange: 0 };
    const db = new Database(path);
    const put = db.prepare('INSERT INTO idle_histories (name, body) VALUES (?, ?)');
    put.run('a', JSON.stringify(good));
    put.run('b', JSON.stringify({ ...good, function: 'b', samples: 3 }));
    put.run('c', 'not json');
    db.close();
    const s = await openSqliteStore(path);
    try {
      const c = await s.load();
      assert.deepEqual([c.idleHistories, c.idleHistoriesDropped], [[good], 2]);
    } finally {
      await s.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

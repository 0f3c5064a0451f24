/**
 * Goal: the embedded SQLite async store meets the AsyncStore contract.
 * Method: the shared contract suite against a store in a fresh temporary directory; and a
 * batch (requests of one turn, one transaction) in which one request fails.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { asyncStoreContract } from './async-store.contract.js';
import { openSqliteAsyncStore } from './sqlite-async-store.js';
import type { AsyncInvocation } from './types.js';

asyncStoreContract('sqlite', {
  open: async (dir, options) => openSqliteAsyncStore(join(dir, 'async.db'), options),
  leaseIsWallClock: false,
});

describe('SqliteAsyncStore group commit', () => {
  it('a request that fails fails alone: the others of its batch are committed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'adp-batch-'));
    const store = openSqliteAsyncStore(join(dir, 'async.db'));
    try {
      const inv = (id: string): AsyncInvocation => ({
        id, functionKey: 'echo', request: { method: 'POST', path: '/', query: '', headers: {}, body: Buffer.from(id) },
        status: 'queued', attempts: [], nextAttemptAtMs: 1_000, acceptedAtMs: 1_000,
      });
      await store.accept(inv('taken'));
      // One turn: three requests travel and commit together; the second reuses a stored id.
      const results = await Promise.allSettled([store.accept(inv('first')), store.accept(inv('taken')), store.accept(inv('third'))]);
      assert.equal(results[0].status, 'fulfilled');
      assert.equal(results[1].status, 'rejected');
      assert.match(String((results[1] as PromiseRejectedResult).reason), /UNIQUE/);
      assert.equal(results[2].status, 'fulfilled');
      assert.equal((await store.get('first'))?.request.body.toString(), 'first');
      assert.equal((await store.get('third'))?.request.body.toString(), 'third');
      // The stored invocation was not overwritten by the refused one.
      assert.equal((await store.get('taken'))?.status, 'queued');
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Goal: the embedded SQLite async store meets the AsyncStore contract.
 * Method: the shared contract suite against a store in a fresh temporary directory.
 */
import { join } from 'node:path';
import { asyncStoreContract } from './async-store.contract.js';
import { openSqliteAsyncStore } from './sqlite-async-store.js';

asyncStoreContract('sqlite', {
  open: async (dir, options) => openSqliteAsyncStore(join(dir, 'async.db'), options),
  leaseIsWallClock: false,
});

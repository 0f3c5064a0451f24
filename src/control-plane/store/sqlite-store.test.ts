/**
 * Goal: the SQLite store (in its worker thread) meets the Store contract.
 * Method: the shared contract suite against a store in a fresh temporary directory.
 */
import { join } from 'node:path';
import { openSqliteStore } from './sqlite-store.js';
import { storeContract } from './store.contract.js';

storeContract('sqlite', (dir) => openSqliteStore(join(dir, 'control-plane.db')));

/**
 * @module control-plane/store/store.contract
 * The behaviour every Store backend must have, as a reusable suite: call `storeContract` with a
 * name and a factory from a test file of the backend (today SQLite; an etcd backend adds its
 * own one-line test file). `open(dir)` must return a store whose data lives under `dir`, so
 * opening the same dir again shows what was durably written before.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { FunctionRecord, NamespaceRecord, TokenRecord } from '../../api/types.js';
import { scalingDefaults } from '../../config/defaults.js';
import type { Store } from './store.js';

function fnRecord(name: string, generation = 1): FunctionRecord {
  return {
    spec: {
      name, image: '', command: ['node', 'a.js'], workingDir: '', port: 8080, env: { K: 'v' }, egress: false, auth: 'none',
      resources: { cpuMillis: 100, memoryMiB: 128 }, concurrency: 1, timeoutMs: 1000, scaling: { ...scalingDefaults },
    },
    uid: `${name}-uid`, generation, createdAtMs: 1, updatedAtMs: 2,
  };
}

function tokenRecord(id: string, description = ''): TokenRecord {
  return { id, sha256Hex: 'ab'.repeat(32), scope: 'deploy', namespace: 'team-a', description, createdAtMs: 5 };
}

function nsRecord(name: string, functions: number): NamespaceRecord {
  return { name, quotas: { functions, sandboxes: 2, cpuMillis: 0, memoryMiB: 512 } };
}

type Open = (dir: string) => Promise<Store>;
type Case = (open: Open, freshDir: () => string) => Promise<void>;

const cases: [string, Case][] = [
  ['starts empty', async (open, freshDir) => {
    const s = await open(freshDir());
    try {
      assert.deepEqual(await s.load(), { functions: [], workers: [], dataPlanes: [], tokens: [], namespaces: [], idleHistories: [], idleHistoriesDropped: 0 });
    } finally {
      await s.close();
    }
  }],
  ['puts, overwrites, loads and deletes every record kind', async (open, freshDir) => {
    const s = await open(freshDir());
    try {
      await s.putFunction(fnRecord('a'));
      await s.putFunction(fnRecord('a', 2));
      await s.putFunction(fnRecord('b'));
      await s.putWorker({ id: 'w1', address: 'h:1' });
      await s.putWorker({ id: 'w1', address: 'h:2' });
      await s.putDataPlane({ id: 'dp1', proxyAddress: 'p:1', internalAddress: 'i:1' });
      let c = await s.load();
      assert.deepEqual(c.functions.sort((x, y) => x.spec.name.localeCompare(y.spec.name)), [fnRecord('a', 2), fnRecord('b')]);
      assert.deepEqual(c.workers, [{ id: 'w1', address: 'h:2' }]);
      assert.deepEqual(c.dataPlanes, [{ id: 'dp1', proxyAddress: 'p:1', internalAddress: 'i:1' }]);
      await s.deleteFunction('a');
      await s.deleteWorker('w1');
      await s.deleteDataPlane('dp1');
      await s.deleteFunction('never-there');
      c = await s.load();
      assert.deepEqual(c, { functions: [fnRecord('b')], workers: [], dataPlanes: [], tokens: [], namespaces: [], idleHistories: [], idleHistoriesDropped: 0 });
    } finally {
      await s.close();
    }
  }],
  ['keeps what was written across a reopen', async (open, freshDir) => {
    const dir = freshDir();
    const s1 = await open(dir);
    await s1.putFunction(fnRecord('kept'));
    await s1.putWorker({ id: 'w9', address: 'h:9' });
    await s1.close();
    const s2 = await open(dir);
    try {
      const c = await s2.load();
      assert.deepEqual(c.functions, [fnRecord('kept')]);
      assert.deepEqual(c.workers, [{ id: 'w9', address: 'h:9' }]);
    } finally {
      await s2.close();
    }
  }],
  ['applies many concurrent writes of one turn, the last write of a key winning', async (open, freshDir) => {
    const s = await open(freshDir());
    try {
      const writes: Promise<void>[] = [];
      for (let i = 0; i < 500; i += 1) writes.push(s.putFunction(fnRecord(`f${i % 100}`, i)));
      writes.push(s.deleteFunction('f0'));
      await Promise.all(writes);
      const c = await s.load();
      assert.equal(c.functions.length, 99);
      const f1 = c.functions.find((f) => f.spec.name === 'f1')!;
      assert.equal(f1.generation, 401);
    } finally {
      await s.close();
    }
  }],
  ['a load asked for in the same turn as writes sees them', async (open, freshDir) => {
    const s = await open(freshDir());
    try {
      const writes = [s.putFunction(fnRecord('a', 1)), s.putFunction(fnRecord('b', 1)), s.deleteFunction('a')];
      const loaded = await s.load();
      assert.deepEqual(loaded.functions.map((f) => f.spec.name), ['b']);
      await Promise.all(writes);
    } finally {
      await s.close();
    }
  }],
  ['puts, overwrites, deletes and keeps tokens and namespaces across a reopen', async (open, freshDir) => {
    const dir = freshDir();
    const s1 = await open(dir);
    await Promise.all([s1.putToken(tokenRecord('0123456789ab')), s1.putToken(tokenRecord('ba9876543210')), s1.putNamespace(nsRecord('team-a', 3))]);
    await Promise.all([s1.putToken(tokenRecord('0123456789ab', 'ci')), s1.putNamespace(nsRecord('team-a', 4)), s1.putNamespace(nsRecord('team-b', 1))]);
    await Promise.all([s1.deleteToken('ba9876543210'), s1.deleteNamespace('team-b'), s1.deleteToken('never-there')]);
    await s1.close();
    const s2 = await open(dir);
    try {
      const c = await s2.load();
      assert.deepEqual(c.tokens, [tokenRecord('0123456789ab', 'ci')]);
      assert.deepEqual(c.namespaces, [nsRecord('team-a', 4)]);
    } finally {
      await s2.close();
    }
  }],
  ['forgets one idle history on its own, keeping its function; a missing one is not an error', async (open, freshDir) => {
    const dir = freshDir();
    const idle = (fn: string) => ({ function: fn, functionUid: `${fn}-u`, windowS: 120, bins: [2, 0], samples: 2, outOfRange: 0 });
    const s1 = await open(dir);
    await Promise.all([s1.putFunction(fnRecord('a', 1)), s1.putFunction(fnRecord('b', 1))]);
    await s1.putIdleHistories([idle('a'), idle('b')]);
    await Promise.all([s1.deleteIdleHistory('a'), s1.deleteIdleHistory('never-stored')]);
    await s1.close();
    const s2 = await open(dir);
    try {
      const c = await s2.load();
      assert.deepEqual(c.idleHistories, [idle('b')]);
      assert.deepEqual(c.functions.map((f) => f.spec.name).sort(), ['a', 'b']);
    } finally {
      await s2.close();
    }
  }],
  ['keeps idle histories across a reopen: the latest per function, deleted with its function', async (open, freshDir) => {
    const dir = freshDir();
    const idle = (fn: string, samples: number) => ({ function: fn, functionUid: `${fn}-u`, windowS: 120, bins: [samples, 0], samples, outOfRange: 1 });
    const s1 = await open(dir);
    await Promise.all([s1.putFunction(fnRecord('a', 1)), s1.putFunction(fnRecord('b', 1)), s1.putFunction(fnRecord('c', 1))]);
    await s1.putIdleHistories([idle('a', 1), idle('b', 1), idle('c', 1)]);
    await s1.putIdleHistories([idle('a', 3)]);
    await Promise.all([s1.deleteFunction('b'), s1.putIdleHistories([])]);
    await s1.close();
    const s2 = await open(dir);
    try {
      const c = await s2.load();
      assert.deepEqual(c.idleHistories.sort((x, y) => x.function.localeCompare(y.function)), [idle('a', 3), idle('c', 1)]);
      assert.deepEqual(c.functions.map((f) => f.spec.name).sort(), ['a', 'c']);
    } finally {
      await s2.close();
    }
  }],
];

export function storeContract(backend: string, open: Open): void {
  describe(`Store contract: ${backend}`, () => {
    const dirs: string[] = [];
    const freshDir = (): string => {
      const d = mkdtempSync(join(tmpdir(), 'dirigent-store-'));
      dirs.push(d);
      return d;
    };
    after(() => {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });
    for (const [title, run] of cases) it(title, () => run(open, freshDir));
  });
}

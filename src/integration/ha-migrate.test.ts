/**
 * Goal: `dirigent store migrate --from sqlite:... --to etcd://...` copies every record.
 * Method: fill a SQLite store, run the command in-process (runCli) against a real etcd started by
 * the test, and load the etcd store under the same prefix.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { scalingDefaults } from '../config/defaults.js';
import { runCli } from '../cli/program.js';
import { openEtcdStore } from '../control-plane/store/etcd-store.js';
import { SqliteStore } from '../control-plane/store/sqlite-store.js';
import { TestEtcd } from './etcd.js';

describe('dirigent store migrate', { timeout: 60_000 }, () => {
  const etcd = new TestEtcd();
  const dir = mkdtempSync(join(tmpdir(), 'dirigent-migrate-'));
  before(() => etcd.start());
  after(async () => {
    await etcd.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies functions, workers, data planes, tokens, namespaces and idle histories from SQLite to etcd', async () => {
    const path = join(dir, 'control-plane.db');
    const src = new SqliteStore(path);
    const fn = (name: string) => ({
      spec: { name, image: 'emulated', command: [], workingDir: '', port: 8080, env: {}, egress: false, auth: 'none' as const, resources: { cpuMillis: 100, memoryMiB: 64 },
        concurrency: 1, timeoutMs: 1000, scaling: { ...scalingDefaults } },
      uid: `${name}-uid`, generation: 3, createdAtMs: 1, updatedAtMs: 2,
    });
    const token = { id: '0123456789ab', sha256Hex: 'cd'.repeat(32), scope: 'read' as const, namespace: 'team-a', description: 'x', createdAtMs: 9 };
    const ns = { name: 'team-a', quotas: { functions: 3, sandboxes: 0, cpuMillis: 0, memoryMiB: 0 } };
    const idle = { function: 'a', functionUid: 'a-uid', windowS: 180, bins: [0, 4, 1], samples: 5, outOfRange: 2 };
    await Promise.all([src.putFunction(fn('a')), src.putFunction(fn('b')), src.putWorker({ id: 'w1', address: 'h:1' }),
      src.putDataPlane({ id: 'dp1', proxyAddress: 'p:1', internalAddress: 'i:1' }), src.putToken(token), src.putNamespace(ns), src.putIdleHistories([idle])]);
    await src.close();
    const out: string[] = [];
    const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => out.push(s) } };
    const code = await runCli(['store', 'migrate', '--from', `sqlite:${path}`, '--to', etcd.url, '--store-prefix', '/migrated/'], io);
    assert.equal(code, 0, out.join(''));
    assert.match(out.join(''), /copied 2 functions, 1 workers, 1 data planes, 1 tokens, 1 namespaces, 1 idle histories/);
    const dst = openEtcdStore([etcd.endpoint], '/migrated/');
    try {
      const c = await dst.load();
      assert.deepEqual(c.functions.sort((x, y) => x.spec.name.localeCompare(y.spec.name)), [fn('a'), fn('b')]);
      assert.deepEqual(c.workers, [{ id: 'w1', address: 'h:1' }]);
      assert.deepEqual(c.dataPlanes, [{ id: 'dp1', proxyAddress: 'p:1', internalAddress: 'i:1' }]);
      assert.deepEqual([c.tokens, c.namespaces, c.idleHistories], [[token], [ns], [idle]]);
    } finally {
      await dst.close();
    }
  });
});

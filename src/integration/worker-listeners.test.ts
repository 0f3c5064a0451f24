/**
 * Goal: a worker's health and metrics port (plain HTTP, no auth) listens where `internalHost`
 * says, loopback by default, whatever address `--host` gives its sandboxes: a worker started
 * with `--host 0.0.0.0` for a multi-node cluster does not serve its metrics to the network.
 * Method: real emulated workers started in-process with host 127.0.0.2 (a loopback address
 * other than 127.0.0.1, so no test listens beyond loopback) and no CP to reach (the health port
 * comes up before the link); raw connects to both hosts.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkerConfig } from '../config/compile.js';
import { workerDefaults } from '../config/defaults.js';
import { silentLogger } from '../shared/logger.js';
import { readOrCreateTokenFile } from '../shared/secrets.js';
import { startWorker, type RunningWorker } from '../worker/main.js';
import { accepts } from './harness.js';

describe('worker listeners', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dirigent-worker-listeners-'));
  readOrCreateTokenFile(join(dir, 'cluster.token'));
  const running: RunningWorker[] = [];
  const start = async (over: Partial<WorkerConfig> & { id: string }): Promise<RunningWorker> => {
    const cfg: WorkerConfig = {
      ...workerDefaults, logLevel: 'info', runtime: 'emulated', controlPlane: '127.0.0.1:1', port: 0, host: '127.0.0.2',
      stateDir: join(dir, over.id), clusterTokenFile: join(dir, 'cluster.token'), ...over,
    } as WorkerConfig;
    const w = await startWorker(cfg, silentLogger);
    running.push(w);
    return w;
  };
  after(async () => {
    for (const w of running) await w.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the health and metrics port on loopback by default when --host is another address', async () => {
    const w = await start({ id: 'w-default' });
    assert.equal(await accepts('127.0.0.1', w.port), true, 'health and metrics on 127.0.0.1');
    assert.equal(await accepts('127.0.0.2', w.port), false, 'not on the sandboxes\' host');
    const health = await fetch(`http://127.0.0.1:${w.port}/health`);
    assert.equal(health.status, 200);
  });

  it('listens on internalHost when one is set', async () => {
    const w = await start({ id: 'w-internal-host', internalHost: '127.0.0.2' });
    assert.equal(await accepts('127.0.0.2', w.port), true);
    assert.equal(await accepts('127.0.0.1', w.port), false);
  });
});

/**
 * Goal: a data plane's health and metrics port (the internal port) listens where `internalHost`
 * says, loopback by default, whatever address the invocation port takes: a DP that serves
 * invocations to the network does not serve its unauthenticated metrics there too. The hello
 * tells the CP the address the internal port really has.
 * Method: real data planes started in-process on 127.0.0.2 (a loopback address other than
 * 127.0.0.1, so no test listens beyond loopback) against a fake CP; raw connects to both hosts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataPlaneConfig } from '../config/compile.js';
import { dataPlaneDefaults } from '../config/defaults.js';
import { startDataPlane, type RunningDataPlane } from '../data-plane/main.js';
import { silentLogger } from '../shared/logger.js';
import { readOrCreateTokenFile } from '../shared/secrets.js';
import { FakeControlPlane } from './fake-cp.js';
import { accepts, waitFor } from './harness.js';

describe('data plane listeners', { timeout: 60_000 }, () => {
  const cp = new FakeControlPlane();
  const dir = mkdtempSync(join(tmpdir(), 'dirigent-dp-listeners-'));
  readOrCreateTokenFile(join(dir, 'cluster.token'));
  const running: RunningDataPlane[] = [];
  const start = async (over: Partial<DataPlaneConfig> & { id: string }): Promise<RunningDataPlane> => {
    const cfg: DataPlaneConfig = {
      ...dataPlaneDefaults, logLevel: 'info', controlPlane: `127.0.0.1:${cp.port}`, proxyPort: 0, internalPort: 0,
      clusterTokenFile: join(dir, 'cluster.token'), stateDir: join(dir, `dp-${running.length}`), host: '127.0.0.2', auth: 'token', ...over,
    };
    const dp = await startDataPlane(cfg, silentLogger);
    running.push(dp);
    return dp;
  };
  before(() => cp.start());
  after(async () => {
    for (const dp of running) await dp.close();
    cp.server.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the internal port on loopback by default when the invocation port is elsewhere', async () => {
    const dp = await start({ id: 'dp-default' });
    assert.equal(await accepts('127.0.0.2', dp.proxyPort), true, 'invocations on the DP host');
    assert.equal(await accepts('127.0.0.1', dp.proxyPort), false);
    assert.equal(await accepts('127.0.0.1', dp.internalPort), true, 'health and metrics on 127.0.0.1');
    assert.equal(await accepts('127.0.0.2', dp.internalPort), false, 'not on the invocation host');
    const health = await fetch(`http://127.0.0.1:${dp.internalPort}/health`);
    assert.ok(health.status === 200 || health.status === 503, String(health.status));
    await waitFor(() => cp.count('hello') >= 1, 10_000, 'hello');
    const hello = cp.events.find((e) => e.case === 'hello')!;
    assert.equal(hello.value.internalAddress, `127.0.0.1:${dp.internalPort}`);
    assert.equal(hello.value.proxyAddress, `127.0.0.2:${dp.proxyPort}`);
  });

  it('listens on internalHost when one is set', async () => {
    const dp = await start({ id: 'dp-internal-host', internalHost: '127.0.0.2' });
    assert.equal(await accepts('127.0.0.2', dp.internalPort), true);
    assert.equal(await accepts('127.0.0.1', dp.internalPort), false);
  });
});

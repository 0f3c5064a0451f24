/**
 * Goal: the data plane's link to the control plane validates what it receives: a malformed
 * routing update is logged (`cp_link.invalid_message` naming the field) and answered with a
 * resync, never applied or thrown; a stream the CP ends is reconnected with a new hello.
 * Method: a fake CP (a real gRPC server on loopback serving `dataPlaneStream`) talking to a real
 * data plane started in-process, with an in-memory logger.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataPlaneConfig } from '../config/compile.js';
import { dataPlaneDefaults } from '../config/defaults.js';
import { startDataPlane, type RunningDataPlane } from '../data-plane/main.js';
import { memoryLogger, type RecordedLog } from '../shared/logger.js';
import { readOrCreateTokenFile } from '../shared/secrets.js';
import { FakeControlPlane } from './fake-cp.js';
import { waitFor } from './harness.js';

const spec = { name: 'f', uid: 'u1', generation: 1, command: ['x'], concurrency: 1, timeoutMs: 1000 };

describe('data plane CP link', { timeout: 60_000 }, () => {
  const cp = new FakeControlPlane();
  const logs: RecordedLog[] = [];
  let dp: RunningDataPlane;
  const tokenDir = mkdtempSync(join(tmpdir(), 'dirigent-dp-link-'));
  const { token } = readOrCreateTokenFile(join(tokenDir, 'cluster.token'));
  before(async () => {
    await cp.start();
    const cfg: DataPlaneConfig = {
      ...dataPlaneDefaults, reconnectBackoffMs: [50, 200] as unknown as DataPlaneConfig['reconnectBackoffMs'], id: 'dp-test', logLevel: 'info',
      controlPlane: `127.0.0.1:${cp.port}`, proxyPort: 0, internalPort: 0, clusterTokenFile: join(tokenDir, 'cluster.token'),
    };
    dp = await startDataPlane(cfg, memoryLogger(logs));
  });
  after(async () => {
    await dp.close();
    cp.server.forceShutdown();
    rmSync(tokenDir, { recursive: true, force: true });
  });

  it('sends the cluster token on its stream', async () => {
    await waitFor(() => cp.calls.length > 0, 5_000, 'a stream');
    assert.deepEqual(cp.calls[0]!.metadata.get('authorization'), [`Bearer ${token}`]);
  });

  it('applies a snapshot, then answers a malformed delta with a logged resync and keeps its table', async () => {
    await waitFor(() => cp.count('hello') === 1, 10_000, 'hello');
    const call = cp.calls[0]!;
    cp.send(call, { updates: [{ update: { case: 'snapshot', value: { version: 1, functions: [spec], endpoints: [] } } }] });
    await waitFor(() => cp.count('ack') >= 1, 10_000, 'ack of the snapshot');
    assert.equal(dp.core.version, 1);
    cp.send(call, { updates: [{ update: { case: 'delta', value: { version: 2, drainEndpoints: [''] } } }] });
    await waitFor(() => cp.count('resync') === 1, 10_000, 'resync');
    const resync = cp.events.find((e) => e.case === 'resync')!;
    assert.equal(resync.value.haveVersion, 1);
    const logged = logs.find((l) => l.event === 'cp_link.invalid_message');
    assert.equal(logged?.fields.field, 'delta.drainEndpoints[0]');
    assert.equal(dp.core.version, 1);
    assert.ok(dp.core.functions.has('f'));
  });

  it('a CP that keeps sending bad updates gets a bounded number of resyncs, not a busy loop', async () => {
    const call = cp.calls[0]!;
    const before = cp.count('resync');
    for (let i = 0; i < 20; i++) cp.send(call, { updates: [{ update: { case: 'delta', value: { version: 2, removeEndpoints: [''] } } }] });
    await waitFor(() => logs.filter((l) => l.event === 'cp_link.invalid_message').length >= 21, 10_000, 'all bad updates seen');
    await waitFor(() => cp.count('resync') > before, 10_000, 'a resync');
    await new Promise((r) => setTimeout(r, 2_500));
    const sent = cp.count('resync') - before;
    assert.ok(sent >= 1 && sent <= 3, `resyncs for 20 bad updates: ${sent}`);
  });

  it('reconnects with a new hello when the CP ends the stream', async () => {
    cp.calls[0]!.end();
    await waitFor(() => cp.count('hello') === 2, 10_000, 'second hello');
    const call = cp.calls.at(-1)!;
    cp.send(call, { updates: [{ update: { case: 'snapshot', value: { version: 5, functions: [spec], endpoints: [] } } }] });
    await waitFor(() => dp.core.version === 5, 10_000, 'snapshot after reconnect');
  });
});

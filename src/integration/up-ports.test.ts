/**
 * Goal: `dirigent up` on a port another process holds (a second `npm start`, another service)
 * stops at once with an error naming the port, the component and the flag that moves it. Before,
 * the component died on EADDRINUSE, was restarted with backoff, and `up` reported "fewer than N
 * workers registered" after 30 s; with a cluster already on the API port its health check even
 * passed against the other cluster, and `--fresh` had already deleted the state directory.
 * A component started on its own (`dirigent data-plane`, ...) on a taken port says so in one line
 * and exits 1; before, it logged an "unhandled rejection" and exited 70, as for a bug.
 * Method: a plain TCP server holds the port; the rest are free.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { readOrCreateTokenFile } from '../shared/secrets.js';
import { freePort } from './harness.js';

const mainJs = fileURLToPath(new URL('../cli/main.js', import.meta.url));
/** `up` must give up well before its 30 s start-up waits would. */
const upExitWaitMs = 15_000;

function holdPort(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer((sock) => sock.destroy());
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

function runDirigent(args: string[]): Promise<{ code: number | null; err: string; elapsedMs: number }> {
  return new Promise((resolve) => {
    const startMs = Date.now();
    const p = spawn(process.execPath, [mainJs, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
    const killer = setTimeout(() => p.kill('SIGINT'), upExitWaitMs);
    p.once('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, err, elapsedMs: Date.now() - startMs });
    });
  });
}

describe('dirigent up on a port in use', { timeout: 60_000 }, () => {
  const workDir = mkdtempSync(join(tmpdir(), 'dirigent-up-ports-'));
  const held: Server[] = [];
  after(async () => {
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
    rmSync(workDir, { recursive: true, force: true });
  });

  it('stops at once, names the port, the component and the flag, and keeps the state directory', async () => {
    const [api, rpc, proxy, internal, worker] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    held.push(await holdPort(rpc));
    const stateDir = join(workDir, 'state');
    mkdirSync(stateDir);
    const keep = join(stateDir, 'keep-me');
    writeFileSync(keep, 'another cluster may own this');
    const r = await runDirigent(['up', '--runtime', 'emulated', '--workers', '1', '--state-dir', stateDir, '--fresh', '--api-port', String(api), '--rpc-port', String(rpc),
      '--proxy-port', String(proxy), '--internal-port', String(internal), '--worker-port', String(worker)]);
    assert.equal(r.code, 1, `exit code; stderr: ${r.err}`);
    assert.ok(r.elapsedMs < upExitWaitMs, `up gave up after ${r.elapsedMs} ms`);
    assert.match(r.err, new RegExp(`127\\.0\\.0\\.1:${rpc}`));
    assert.match(r.err, /control-plane/);
    assert.match(r.err, /--rpc-port/);
    assert.ok(existsSync(keep), '--fresh must not delete a state directory before up knows it can start');
    assert.ok(!existsSync(join(stateDir, 'logs', 'control-plane.log')), 'no component was started');
  });

  it('a data plane started on its own on a taken port exits 1 with one line naming it', async () => {
    const [proxy, internal, cp] = await Promise.all([freePort(), freePort(), freePort()]);
    held.push(await holdPort(proxy));
    readOrCreateTokenFile(join(workDir, 'cluster.token'));
    const r = await runDirigent(['data-plane', '--proxy-port', String(proxy), '--internal-port', String(internal), '--control-plane', `127.0.0.1:${cp}`,
      '--state-dir', join(workDir, 'dp'), '--cluster-token-file', join(workDir, 'cluster.token'), '--log-level', 'error']);
    assert.equal(r.code, 1, `exit code; stderr: ${r.err}`);
    assert.match(r.err, new RegExp(`^error: data plane: cannot listen on 127\\.0\\.0\\.1:${proxy}: address already in use$`, 'm'));
  });
});

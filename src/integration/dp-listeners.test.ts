/**
 * Goal: a data plane's health and metrics port (the internal port) listens where `internalHost`
 * says, loopback by default, whatever address the invocation port takes: a DP that serves
 * invocations to the network does not serve its unauthenticated metrics there too. The hello
 * tells the CP the address the internal port really has. A burst of new client connections
 * while the DP's loop is busy waits in the kernel's accept queue (as long as net.core.somaxconn
 * allows), instead of losing handshakes that clients retry only a second later.
 * Method: real data planes started in-process on 127.0.0.2 (a loopback address other than
 * 127.0.0.1, so no test listens beyond loopback) against a fake CP; raw connects to both hosts;
 * for the burst, a child process connects while this process's loop is blocked.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataPlaneConfig } from '../config/compile.js';
import { dataPlaneDefaults } from '../config/defaults.js';
import { startDataPlane, type RunningDataPlane } from '../data-plane/main.js';
import { silentLogger } from '../shared/logger.js';
import { readOrCreateTokenFile } from '../shared/secrets.js';
import { FakeControlPlane } from './fake-cp.js';
import { accepts, waitFor } from './harness.js';

const burstConnections = 1_000;
/** Well below the 1 s a client waits before it sends a lost SYN again. */
const burstWindowMs = 600;
const burstBlockMs = 1_000;

/** A burst this large needs a kernel queue of at least that many (net.core.somaxconn). */
function burstSkip(): string | false {
  let somaxconn = 0;
  try {
    somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim());
  } catch {
    // not Linux: no such limit to read
  }
  if (somaxconn > burstConnections) return false;
  const why = `net.core.somaxconn is ${somaxconn}: raise it above ${burstConnections} (sysctl -w net.core.somaxconn=4096)`;
  if (process.env.CI === 'true') throw new Error(why);
  return why;
}

/** Opens N connections at once; prints how many completed their handshake within the window. */
const burstClient = `
const net = require('node:net');
const [host, port, n] = process.argv.slice(1);
const sockets = [];
let connected = 0;
process.stdout.write('connecting\\n');
for (let i = 0; i < Number(n); i++) {
  const s = net.connect({ host, port: Number(port) }, () => { connected++; });
  s.on('error', () => {});
  sockets.push(s);
}
setTimeout(() => process.stdout.write('connected ' + connected + '\\n'), ${burstWindowMs});
process.stdin.on('end', () => { for (const s of sockets) s.destroy(); process.exit(0); });
process.stdin.resume();
`;

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

  it('holds a burst of 1,000 connections in the accept queue while its loop is busy (Node\'s default queue: 511)', { skip: burstSkip() }, async () => {
    const dp = await start({ id: 'dp-burst' });
    const child = spawn(process.execPath, ['-e', burstClient, '127.0.0.2', String(dp.proxyPort), String(burstConnections)], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      await waitFor(() => out.includes('connecting'), 10_000, 'the client connecting');
      // The DP's loop (this process's) accepts nothing for a while: the kernel alone answers.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, burstBlockMs);
      await waitFor(() => /connected \d+/.test(out), 10_000, 'the client\'s count');
      const connected = Number(/connected (\d+)/.exec(out)![1]);
      assert.equal(connected, burstConnections, `handshakes done within ${burstWindowMs} ms`);
    } finally {
      child.stdin.end();
      await exited;
    }
  });
});

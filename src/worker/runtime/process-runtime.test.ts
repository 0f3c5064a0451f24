/**
 * Process runtime: the shared contract with a real Node fixture server, then the behaviours only
 * real processes have (bad commands, crashes, grandchildren, environment, readiness timeout,
 * busy ports, orphans of a previous run). Method: fixtures in test/fixtures/ run as sandboxes on
 * 127.0.0.1, ports 31000-31599 (kept apart from other suites); every check reads /proc or the
 * network, never runtime internals. Each test closes its runtime, which kills what it started.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { FunctionSpec } from '../../api/types.js';
import {
  fixtureSpec,
  groupMembers,
  makeRuntime,
  pidsWithEnv,
  portSlices,
  processAlive,
  withRuntime,
} from './process-runtime.testkit.js';
import { connectRefused, expectCreated, httpGet, runRuntimeContract } from './runtime.contract.js';
import { ensureStateDirs, sandboxPaths } from './sandbox-records.js';
import { testIsolation } from './isolation-setup.js';

const testTimeoutMs = 30_000;
/** 31000-31599 is this file's; the cgroup tests use 31600-31999. */
const nextPortRange = portSlices(31_000, 31_599).next;

runRuntimeContract('process', async () => {
  const h = await makeRuntime({ portRange: nextPortRange() });
  const fnSpec = (name: string): FunctionSpec => fixtureSpec(name, 'echo-server.js');
  return { runtime: h.runtime, fnSpec, cleanup: h.cleanup };
});

describe('process runtime: failures', () => {
  const opts = { timeout: testTimeoutMs };

  it('fails a create whose command does not exist, naming it', opts, () =>
    withRuntime({ portRange: nextPortRange() }, async ({ runtime }) => {
      const fn = { ...fixtureSpec('f', 'echo-server.js'), command: ['nodex-no-such-command'] };
      const result = await runtime.create({ sandboxId: 'sb-1', fn });
      assert.equal(result.ok, false);
      assert.match(!result.ok ? result.reason : '', /ENOENT.*'nodex-no-such-command'/);
      assert.deepEqual(runtime.list(), []);
    }),
  );

  it('fails a create whose workingDir does not exist, naming the directory (not a spawn ENOENT)', opts, () =>
    withRuntime({ portRange: nextPortRange() }, async ({ runtime }) => {
      const missing = join(tmpdir(), 'dirigent-no-such-dir', 'app');
      const fn = { ...fixtureSpec('f', 'echo-server.js'), workingDir: missing };
      const result = await runtime.create({ sandboxId: 'sb-1', fn });
      assert.equal(result.ok, false);
      assert.equal(!result.ok ? result.reason : '', `workingDir '${missing}' does not exist or is not a directory`);
      assert.deepEqual(runtime.list(), []);
    }),
  );

  it('fails a create whose process exits before listening, quoting stderr', opts, () =>
    withRuntime({ portRange: nextPortRange() }, async ({ runtime }) => {
      const fn = fixtureSpec('f', 'exits-at-start.js');
      const result = await runtime.create({ sandboxId: 'sb-1', fn });
      assert.deepEqual(result, {
        ok: false,
        reason: 'exited during start: exit code 1: boom before listen',
      });
    }),
  );

  it('reports a crash after start to exit listeners, with the last stderr line', opts, () =>
    withRuntime({ portRange: nextPortRange() }, async ({ runtime, stateDir }) => {
      const exited = new Promise<[string, string]>((resolve) =>
        runtime.onExit((id, reason) => resolve([id, reason])),
      );
      const fn = fixtureSpec('f', 'crash-after-start.js', { CRASH_AFTER_MS: '200' });
      const sandbox = expectCreated(await runtime.create({ sandboxId: 'sb-1', fn }));
      assert.deepEqual(await exited, ['sb-1', 'exit code 3: crashing on purpose']);
      assert.deepEqual(runtime.list(), []);
      assert.equal(await connectRefused(sandbox.address), true);
      const log = await readFile(sandboxPaths(stateDir, 'sb-1').log, 'utf8');
      assert.match(log, /crashing on purpose/);
    }),
  );

});

describe('process runtime: isolation', () => {
  const opts = { timeout: testTimeoutMs };

  // Unisolated on purpose: checks the process-group kill by the host pids the fixture reports
  // (under bwrap it reports pids of its own namespace); the next test covers bwrap.
  it('kills grandchildren with the sandbox', opts, () =>
    withRuntime({ portRange: nextPortRange(), isolation: 'none' }, async ({ runtime }) => {
      const fn = fixtureSpec('f', 'spawns-grandchild.js');
      const sandbox = expectCreated(await runtime.create({ sandboxId: 'sb-1', fn }));
      const answer = await httpGet(sandbox.address, 'sb-1');
      const { pid, grandchildPid } = JSON.parse(answer.body) as Record<string, number>;
      assert.equal(pid, sandbox.pid);
      assert.deepEqual(await groupMembers(pid), [pid, grandchildPid].sort((a, b) => a - b));
      await runtime.delete('sb-1');
      // Killed processes may linger as zombies until PID 1 reaps them; those hold nothing.
      assert.deepEqual(await groupMembers(pid), []);
      assert.equal(await processAlive(grandchildPid), false);
    }),
  );

  it('kills grandchildren with an isolated sandbox', opts, () =>
    withRuntime({ portRange: nextPortRange() }, async ({ runtime }) => {
      const fn = fixtureSpec('f', 'spawns-grandchild.js');
      expectCreated(await runtime.create({ sandboxId: 'sb-gc', fn }));
      // The fixture and its grandchild both carry the sandbox id in their environment.
      assert.ok((await pidsWithEnv('DIRIGENT_SANDBOX_ID=sb-gc')).length >= 2);
      await runtime.delete('sb-gc');
      const alive = [];
      for (const pid of await pidsWithEnv('DIRIGENT_SANDBOX_ID=sb-gc')) {
        if (await processAlive(pid)) alive.push(pid);
      }
      assert.deepEqual(alive, []);
    }),
  );

  it('gives the sandbox a minimal environment', opts, () =>
    withRuntime({ portRange: nextPortRange() }, async ({ runtime }) => {
      process.env.DIRIGENT_TEST_SECRET = 'must-not-leak';
      try {
        const fn = fixtureSpec('f', 'echo-server.js', { GREETING: 'hello' });
        const sandbox = expectCreated(await runtime.create({ sandboxId: 'sb-1', fn }));
        const env = JSON.parse((await httpGet(sandbox.address, 'sb-1', {}, '/env')).body);
        assert.equal(env.PORT, sandbox.address.split(':')[1]);
        assert.equal(env.DIRIGENT_SANDBOX_ID, 'sb-1');
        assert.equal(env.DIRIGENT_FUNCTION, 'f');
        assert.equal(env.GREETING, 'hello');
        // Isolated: the sandbox's private tmpfs; unisolated: its scratch dir in the state dir.
        if ((await testIsolation()) === 'bwrap') assert.equal(env.HOME, '/tmp');
        else assert.match(env.HOME, /sb-1/);
        assert.equal(env.PATH, process.env.PATH);
        assert.equal(env.DIRIGENT_TEST_SECRET, undefined);
        assert.equal(env.NODE_EXTRA_CA_CERTS, undefined);
        const expected = ['DIRIGENT_FUNCTION', 'DIRIGENT_SANDBOX_ID', 'GREETING', 'HOME', 'PATH', 'PORT'];
        assert.deepEqual(Object.keys(env).filter((k) => k !== 'PWD').sort(), expected);
      } finally {
        delete process.env.DIRIGENT_TEST_SECRET;
      }
    }),
  );

});

describe('process runtime: start-up', () => {
  const opts = { timeout: testTimeoutMs };

  it('times out a process that never listens, and kills it', opts, () =>
    withRuntime({ portRange: nextPortRange(), readinessTimeoutMs: 300 }, async ({ runtime }) => {
      const fn = fixtureSpec('f', 'never-listens.js');
      const result = await runtime.create({ sandboxId: 'sb-slow', fn });
      assert.deepEqual(result, { ok: false, reason: 'readiness timeout after 300 ms' });
      assert.deepEqual(await pidsWithEnv('DIRIGENT_SANDBOX_ID=sb-slow'), []);
    }),
  );

  // Unisolated on purpose: the fixture's mark of its first attempt lives in $HOME, which under
  // bwrap is a /tmp made fresh for every attempt.
  it('retries on another port when the function reports EADDRINUSE', opts, () =>
    withRuntime({ portRange: nextPortRange(), isolation: 'none' }, async ({ runtime, logs }) => {
      const fn = fixtureSpec('f', 'port-taken-once.js');
      const sandbox = expectCreated(await runtime.create({ sandboxId: 'sb-1', fn }));
      assert.equal((await httpGet(sandbox.address, 'sb-1')).status, 200);
      const retried = logs.filter((log) => log.event === 'sandbox.port_in_use');
      assert.equal(retried.length, 1);
      assert.notEqual(`127.0.0.1:${String(retried[0].fields.port)}`, sandbox.address);
    }),
  );

  it('skips a port a foreign process listens on', opts, async () => {
    const range = nextPortRange();
    const foreign = await listenOn(range[0]);
    try {
      await withRuntime({ portRange: [range[0], range[0] + 1] }, async ({ runtime }) => {
        const fn = fixtureSpec('f', 'echo-server.js');
        const sandbox = expectCreated(await runtime.create({ sandboxId: 'sb-1', fn }));
        assert.equal(sandbox.address, `127.0.0.1:${range[0] + 1}`);
      });
    } finally {
      await new Promise((done) => foreign.close(done));
    }
  });
});

describe('process runtime: orphans of a previous run', () => {
  const opts = { timeout: testTimeoutMs };
  it('kills recorded groups that are still ours, and only those', opts, async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'dirigent-process-runtime-'));
    const started: ChildProcess[] = [];
    try {
      await ensureStateDirs(stateDir);
      const orphan = startSleeper({ DIRIGENT_SANDBOX_ID: 'orphan-1' }, started);
      const imposter = startSleeper({ DIRIGENT_SANDBOX_ID: 'someone-else' }, started);
      await writeRecord(stateDir, 'orphan-1', orphan.pid!);
      await writeRecord(stateDir, 'imposter-1', imposter.pid!);
      await writeFile(join(stateDir, 'sandboxes', 'torn.json'), '{"sandboxId": "to');
      await waitForEnv(orphan.pid!, 'DIRIGENT_SANDBOX_ID=orphan-1');
      const h = await makeRuntime({ portRange: nextPortRange(), stateDir });
      try {
        assert.deepEqual(await h.runtime.orphansReaped, { reaped: 1, stale: 1 });
        assert.equal(await processAlive(orphan.pid!), false);
        assert.equal(await processAlive(imposter.pid!), true);
        assert.deepEqual(await readdir(join(stateDir, 'sandboxes')), []);
      } finally {
        await h.cleanup();
      }
    } finally {
      for (const child of started) if (child.exitCode === null) child.kill('SIGKILL');
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});

function startSleeper(env: Record<string, string>, started: ChildProcess[]): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
    env: { PATH: process.env.PATH ?? '', ...env },
    detached: true,
    stdio: 'ignore',
  });
  started.push(child);
  assert.ok(child.pid !== undefined);
  return child;
}

async function writeRecord(stateDir: string, sandboxId: string, pid: number): Promise<void> {
  const record = { sandboxId, function: 'f', pid, pgid: pid, port: 0, createdAtMs: 0 };
  await writeFile(sandboxPaths(stateDir, sandboxId).record, JSON.stringify(record));
}

/** A freshly spawned process shows its new environ only after exec; wait for that. */
async function waitForEnv(pid: number, entry: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await pidsWithEnv(entry)).includes(pid)) return;
    await new Promise((done) => setTimeout(done, 5));
  }
  assert.fail(`pid ${pid} never showed ${entry}`);
}

function listenOn(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port }, () => resolve(server));
  });
}

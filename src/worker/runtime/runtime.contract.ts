/**
 * @module worker/runtime/runtime.contract
 * The conformance suite every SandboxRuntime runs (style guide §4): a runtime's test file is a
 * call to `runRuntimeContract`. Method: make a fresh runtime per test, drive it through the
 * port only, and check what a caller can observe (results, list(), HTTP on the address, the
 * port refusing connections after delete for runtimes whose sandboxes own their port).
 * Imported by tests only.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import type { FunctionSpec } from '../../api/types.js';
import type { CreateResult, RuntimeSandbox, SandboxRuntime } from './runtime.js';

/** Every contract test ends well within this, or fails. */
const contractTestTimeoutMs = 30_000;
/** One HTTP exchange or one connect attempt. */
const ioTimeoutMs = 5_000;
/** How long we watch for exit events that must not come. */
const quietWatchMs = 100;
/** Concurrent creates in the burst test. */
const burstSize = 10;

export interface RuntimeHarness {
  runtime: SandboxRuntime;
  /** A spec of a function that serves HTTP 200 on any path. */
  fnSpec: (name: string) => FunctionSpec;
  cleanup: () => Promise<void>;
}

/** `opts.skip`: why this implementation cannot run here (every skip names its reason). */
export function runRuntimeContract(
  name: string,
  make: () => Promise<RuntimeHarness>,
  opts: { skip?: string } = {},
): void {
  const withHarness = (body: (h: RuntimeHarness) => Promise<void>) => async () => {
    const h = await make();
    try {
      await body(h);
    } finally {
      await h.runtime.close();
      await h.cleanup();
    }
  };
  const t = { timeout: contractTestTimeoutMs };

  describe(`SandboxRuntime contract: ${name}`, { skip: opts.skip }, () => {
    it('creates, lists, serves, deletes', t, withHarness(contractLifecycle));
    it('delete is idempotent and concurrent-safe', t, withHarness(contractDeleteTwice));
    it('rejects a duplicate sandbox id', t, withHarness(contractDuplicate));
    it('runs concurrent creates', t, withHarness(contractBurst));
    it('does not report deletes as exits', t, withHarness(contractQuietDelete));
    it('delete during create fails the create', t, withHarness(contractDeleteEarly));
    it('close deletes everything', t, withHarness(contractClose));
  });
}

async function contractLifecycle(h: RuntimeHarness): Promise<void> {
  const sandbox = expectCreated(await h.runtime.create({ sandboxId: 'sb-1', fn: h.fnSpec('f') }));
  assert.equal(sandbox.sandboxId, 'sb-1');
  assert.equal(sandbox.function, 'f');
  assert.deepEqual(
    h.runtime.list().map((s) => s.sandboxId),
    ['sb-1'],
  );
  const answer = await httpGet(sandbox.address, 'sb-1');
  assert.equal(answer.status, 200);
  await h.runtime.delete('sb-1');
  assert.deepEqual(h.runtime.list(), []);
  if (h.runtime.name === 'process') assert.equal(await connectRefused(sandbox.address), true);
}

async function contractDeleteTwice(h: RuntimeHarness): Promise<void> {
  expectCreated(await h.runtime.create({ sandboxId: 'sb-1', fn: h.fnSpec('f') }));
  await Promise.all([h.runtime.delete('sb-1'), h.runtime.delete('sb-1')]);
  await h.runtime.delete('sb-1');
  await h.runtime.delete('never-existed');
  assert.deepEqual(h.runtime.list(), []);
}

async function contractDuplicate(h: RuntimeHarness): Promise<void> {
  const [first, second] = await Promise.all([
    h.runtime.create({ sandboxId: 'sb-1', fn: h.fnSpec('f') }),
    h.runtime.create({ sandboxId: 'sb-1', fn: h.fnSpec('f') }),
  ]);
  assert.equal(first.ok, true);
  assert.equal(second.ok, false);
  assert.equal(h.runtime.list().length, 1);
}

async function contractBurst(h: RuntimeHarness): Promise<void> {
  const ids = Array.from({ length: burstSize }, (_, i) => `sb-${i}`);
  const results = await Promise.all(
    ids.map((sandboxId) => h.runtime.create({ sandboxId, fn: h.fnSpec('f') })),
  );
  const sandboxes = results.map(expectCreated);
  assert.deepEqual(h.runtime.list().map((s) => s.sandboxId).sort(), [...ids].sort());
  if (h.runtime.name === 'process') {
    assert.equal(new Set(sandboxes.map((s) => s.address)).size, burstSize, 'distinct addresses');
  }
  const answers = await Promise.all(sandboxes.map((s) => httpGet(s.address, s.sandboxId)));
  assert.deepEqual(
    answers.map((a) => a.status),
    ids.map(() => 200),
  );
  await Promise.all(ids.map((id) => h.runtime.delete(id)));
  assert.deepEqual(h.runtime.list(), []);
}

async function contractQuietDelete(h: RuntimeHarness): Promise<void> {
  const exits: string[] = [];
  h.runtime.onExit((sandboxId, reason) => exits.push(`${sandboxId}: ${reason}`));
  expectCreated(await h.runtime.create({ sandboxId: 'sb-1', fn: h.fnSpec('f') }));
  await h.runtime.delete('sb-1');
  await sleep(quietWatchMs);
  assert.deepEqual(exits, []);
}

async function contractDeleteEarly(h: RuntimeHarness): Promise<void> {
  const creating = h.runtime.create({ sandboxId: 'sb-1', fn: h.fnSpec('f') });
  await h.runtime.delete('sb-1');
  const result = await creating;
  assert.equal(result.ok, false);
  assert.deepEqual(h.runtime.list(), []);
  // The id is free again.
  expectCreated(await h.runtime.create({ sandboxId: 'sb-1', fn: h.fnSpec('f') }));
}

async function contractClose(h: RuntimeHarness): Promise<void> {
  const results = await Promise.all(
    ['sb-a', 'sb-b', 'sb-c'].map((sandboxId) => h.runtime.create({ sandboxId, fn: h.fnSpec('f') })),
  );
  const sandboxes = results.map(expectCreated);
  await h.runtime.close();
  assert.deepEqual(h.runtime.list(), []);
  const late = await h.runtime.create({ sandboxId: 'sb-late', fn: h.fnSpec('f') });
  assert.equal(late.ok, false);
  if (h.runtime.name === 'process') {
    for (const s of sandboxes) assert.equal(await connectRefused(s.address), true, s.address);
  }
}

export function expectCreated(result: CreateResult): RuntimeSandbox {
  if (!result.ok) assert.fail(`create failed: ${result.reason}`);
  assert.ok(result.totalMs >= 0 && result.startMs >= 0 && result.readinessMs >= 0);
  return result.sandbox;
}

export interface HttpAnswer {
  status: number;
  body: string;
}

/** One GET on a fresh connection, bounded by `ioTimeoutMs`. */
export function httpGet(
  address: string,
  sandboxId: string,
  headers: Record<string, string> = {},
  path = '/',
): Promise<HttpAnswer> {
  const { host, port } = splitAddress(address);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host,
        port,
        path,
        agent: false,
        timeout: ioTimeoutMs,
        headers: { 'x-dirigent-sandbox': sandboxId, ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${address} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** True when a TCP connect to the address is refused (nobody listens). */
export function connectRefused(address: string): Promise<boolean> {
  const { host, port } = splitAddress(address);
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(ioTimeoutMs, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

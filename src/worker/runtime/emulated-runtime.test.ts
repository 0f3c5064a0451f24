/**
 * Emulated runtime: the shared contract, then the responder's behaviour (duration header,
 * 400 on a bad header, body drained, keep-alive) and crash(). Method: one responder on an
 * ephemeral 127.0.0.1 port per runtime; sleeps are checked within a loose tolerance only, since
 * these are not benchmarks.
 */
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import type { FunctionSpec } from '../../api/types.js';
import { scalingDefaults } from '../../config/defaults.js';
import { systemClock } from '../../shared/clock.js';
import {
  createEmulatedRuntime,
  parseEmulatedDurationMs,
  startEmulatedResponder,
  type EmulatedResponder,
} from './emulated-runtime.js';
import { expectCreated, httpGet, runRuntimeContract } from './runtime.contract.js';

const testTimeoutMs = 10_000;
/** A timer may fire late under load, never early; this is how late we accept. */
const sleepToleranceMs = 200;

function emulatedSpec(name: string): FunctionSpec {
  return {
    name,
    image: '',
    command: [],
    workingDir: '',
    port: 0,
    env: {},
    egress: false, auth: 'none',
    resources: { cpuMillis: 100, memoryMiB: 128 },
    concurrency: 1,
    timeoutMs: 60_000,
    scaling: { ...scalingDefaults },
  };
}

runRuntimeContract('emulated', async () => {
  const responder = await startEmulatedResponder({ host: '127.0.0.1', port: 0 });
  const runtime = createEmulatedRuntime({ createMs: 5, responder, clock: systemClock });
  return { runtime, fnSpec: emulatedSpec, cleanup: () => responder.close() };
});

async function withResponder(body: (responder: EmulatedResponder) => Promise<void>) {
  const responder = await startEmulatedResponder({ host: '127.0.0.1', port: 0 });
  try {
    await body(responder);
  } finally {
    await responder.close();
  }
}

describe('emulated runtime', () => {
  const opts = { timeout: testTimeoutMs };

  it('create waits createMs and returns the responder address', opts, () =>
    withResponder(async (responder) => {
      const runtime = createEmulatedRuntime({ createMs: 40, responder, clock: systemClock });
      const result = await runtime.create({ sandboxId: 'sb-1', fn: emulatedSpec('f') });
      const sandbox = expectCreated(result);
      assert.equal(sandbox.address, responder.address);
      assert.ok(result.ok && result.totalMs >= 39, `totalMs ${result.ok && result.totalMs}`);
      await runtime.close();
    }),
  );

  it('a sandbox deleted while it starts fails its creation; a starting one is neither listed nor crashable; its id is free again', opts, () =>
    withResponder(async (responder) => {
      const runtime = createEmulatedRuntime({ createMs: 60_000, responder, clock: systemClock });
      const creating = runtime.create({ sandboxId: 'sb-1', fn: emulatedSpec('f') });
      assert.deepEqual(await runtime.create({ sandboxId: 'sb-1', fn: emulatedSpec('f') }), { ok: false, reason: "sandbox 'sb-1' already exists" });
      assert.deepEqual(runtime.list(), []);
      assert.equal(runtime.crash('sb-1', 'injected'), false);
      await runtime.delete('sb-1');
      // The 60 s timer is cleared: the creation settles now, and the test ends without waiting for it.
      assert.deepEqual(await creating, { ok: false, reason: 'deleted during start' });
      const second = runtime.create({ sandboxId: 'sb-1', fn: emulatedSpec('g') });
      await runtime.close();
      assert.deepEqual(await second, { ok: false, reason: 'deleted during start' });
    }),
  );

  it('crash() fires exit listeners and forgets the sandbox', opts, () =>
    withResponder(async (responder) => {
      const runtime = createEmulatedRuntime({ createMs: 0, responder, clock: systemClock });
      const exits: string[] = [];
      runtime.onExit((id, reason) => exits.push(`${id}: ${reason}`));
      expectCreated(await runtime.create({ sandboxId: 'sb-1', fn: emulatedSpec('f') }));
      assert.equal(runtime.crash('sb-1', 'injected'), true);
      assert.equal(runtime.crash('sb-1', 'again'), false);
      assert.deepEqual(exits, ['sb-1: injected']);
      assert.deepEqual(runtime.list(), []);
      await runtime.close();
    }),
  );
});

describe('emulated responder', () => {
  const opts = { timeout: testTimeoutMs };

  it('answers with the sandbox header and sleeps the requested duration', opts, () =>
    withResponder(async (responder) => {
      const t0Ms = performance.now();
      const answer = await httpGet(responder.address, 'sb-7', { 'x-emulated-duration-ms': '150' });
      const elapsedMs = performance.now() - t0Ms;
      assert.equal(answer.status, 200);
      assert.deepEqual(JSON.parse(answer.body), { sandbox: 'sb-7', durationMs: 150 });
      assert.ok(elapsedMs >= 149 && elapsedMs < 150 + sleepToleranceMs, `took ${elapsedMs} ms`);
    }),
  );

  it('answers 400 naming the header when the duration is bad', opts, () =>
    withResponder(async (responder) => {
      for (const bad of ['soon', '-5', '1e3', '99999999999']) {
        const answer = await httpGet(responder.address, 'sb-1', { 'x-emulated-duration-ms': bad });
        assert.equal(answer.status, 400, bad);
        const body = JSON.parse(answer.body);
        assert.equal(body.error.code, 'invalid_field');
        assert.equal(body.error.field, 'x-emulated-duration-ms');
        assert.match(body.error.message, /x-emulated-duration-ms/);
      }
    }),
  );

  it('drains request bodies and keeps the connection alive', opts, () =>
    withResponder(async (responder) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const ports = new Set<number>();
        for (let i = 0; i < 3; i++) {
          const { status, localPort } = await postOnce(responder, agent, 'x'.repeat(100_000));
          assert.equal(status, 200);
          ports.add(localPort);
        }
        assert.equal(ports.size, 1, 'one connection served all three requests');
      } finally {
        agent.destroy();
      }
    }),
  );

  it('answers plain requests on the lean path and hands the others to Node, with the same answers', opts, () =>
    withResponder(async (responder) => {
      const plain = await httpGet(responder.address, 'sb-lean', { 'x-emulated-duration-ms': '5' });
      assert.equal(plain.status, 200);
      assert.deepEqual(JSON.parse(plain.body), { sandbox: 'sb-lean', durationMs: 5 });
      assert.equal(responder.lean.requests, 1);
      assert.equal(responder.lean.handOffs.size, 0);
      // A chunked body is not read whole by the lean path: Node's server takes the connection.
      const chunked = await rawExchange(responder, [
        'POST / HTTP/1.1\r\nhost: x\r\nx-dirigent-sandbox: sb-node\r\nx-emulated-duration-ms: soon\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
      ], 1);
      assert.match(chunked[0]!, /^HTTP\/1\.1 400 /);
      assert.match(chunked[0]!, /"field":"x-emulated-duration-ms"/);
      assert.equal(responder.lean.requests, 1);
      assert.deepEqual([...responder.lean.handOffs.keys()], ['transfer-encoding']);
    }),
  );

  it('answers pipelined requests in order on one connection, a slow one first', opts, () =>
    withResponder(async (responder) => {
      const head = (sandbox: string, ms: number): string =>
        `GET / HTTP/1.1\r\nhost: x\r\nx-dirigent-sandbox: ${sandbox}\r\nx-emulated-duration-ms: ${ms}\r\n\r\n`;
      const answers = await rawExchange(responder, [head('sb-slow', 50) + head('sb-fast', 0)], 2);
      assert.equal(answers.length, 2);
      assert.match(answers[0]!, /"sandbox":"sb-slow"/);
      assert.match(answers[1]!, /"sandbox":"sb-fast"/);
      assert.equal(responder.lean.requests, 2);
    }),
  );

  it('parses the duration header', () => {
    assert.deepEqual(parseEmulatedDurationMs(undefined), { ok: true, durationMs: 0 });
    assert.deepEqual(parseEmulatedDurationMs(' 12.5 '), { ok: true, durationMs: 12.5 });
    assert.equal(parseEmulatedDurationMs('').ok, false);
    assert.equal(parseEmulatedDurationMs(['1', '2']).ok, false);
  });
});

function postOnce(
  responder: EmulatedResponder,
  agent: Agent,
  body: string,
): Promise<{ status: number; localPort: number }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: responder.host, port: responder.port, method: 'POST', path: '/', agent },
      (res) => {
        const localPort = res.socket.localPort ?? 0;
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, localPort }));
      },
    );
    req.setTimeout(testTimeoutMs / 2, () => req.destroy(new Error('POST timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Writes `writes` on one raw connection and collects `answers` whole responses (each a
 * Content-Length answer: head and body as text).
 */
function rawExchange(responder: EmulatedResponder, writes: string[], answers: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(responder.port, responder.host);
    let text = '';
    const done: string[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`got ${done.length} of ${answers} answers: ${JSON.stringify(text)}`));
    }, testTimeoutMs / 2);
    socket.setEncoding('latin1');
    socket.on('error', reject);
    socket.on('data', (chunk: string) => {
      text += chunk;
      for (;;) {
        const end = text.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/content-length: (\d+)/i.exec(text.slice(0, end))?.[1] ?? NaN);
        assert.ok(Number.isFinite(length), `an answer without content-length: ${text.slice(0, end)}`);
        if (text.length < end + 4 + length) return;
        done.push(text.slice(0, end + 4 + length));
        text = text.slice(end + 4 + length);
        if (done.length === answers) {
          clearTimeout(timer);
          socket.destroy();
          resolve(done);
          return;
        }
      }
    });
    for (const w of writes) socket.write(w);
  });
}

/**
 * Goal: the example functions the CLI's help points at do what their READMEs say: hello
 * greets and echoes, trace-function spins for the requested time and reports it, and both exit
 * 0 on SIGTERM. Method: start each with `node` on PORT=0 (it prints the port it got), call it
 * over loopback, then SIGTERM it. About 100 ms of process start-up per example.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** dist/cli/ -> the repository's examples/. */
const examplesDir = fileURLToPath(new URL('../../examples/', import.meta.url));

interface Running {
  child: ChildProcess;
  url: string;
}

async function start(example: string, env: Record<string, string>): Promise<Running> {
  const child = spawn(process.execPath, [`${examplesDir}${example}/server.js`], {
    env: { PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const match = /listening on (127\.0\.0\.1:\d+)/.exec(line.toString());
  assert.ok(match, `unexpected first line: ${line.toString()}`);
  return { child, url: `http://${match[1]}` };
}

async function stop(running: Running): Promise<number | null> {
  const exited = once(running.child, 'exit');
  running.child.kill('SIGTERM');
  const [code] = (await exited) as [number | null];
  return code;
}

describe('examples', { timeout: 15_000 }, () => {
  test('hello greets with DIRIGENT_FUNCTION, echoes the body, exits 0 on SIGTERM', async () => {
    const hello = await start('hello', { DIRIGENT_FUNCTION: 'greeter' });
    try {
      const echoed = await fetch(`${hello.url}/any/path`, { method: 'POST', body: 'world' });
      assert.equal(echoed.status, 200);
      assert.equal(await echoed.text(), 'Hello from greeter! world');
      const empty = await fetch(hello.url);
      assert.equal(await empty.text(), 'Hello from greeter! ');
    } finally {
      assert.equal(await stop(hello), 0);
    }
  });

  test('hello defaults its name to "hello"', async () => {
    const hello = await start('hello', {});
    try {
      assert.equal(await (await fetch(hello.url)).text(), 'Hello from hello! ');
    } finally {
      await stop(hello);
    }
  });

  test('trace-function spins for the requested ms and reports the measured time', async () => {
    const trace = await start('trace-function', { DIRIGENT_FUNCTION: 'trace' });
    try {
      const started = performance.now();
      const spun = await fetch(trace.url, { headers: { 'x-emulated-duration-ms': '30' } });
      const elapsedMs = performance.now() - started;
      const reply = (await spun.json()) as Record<string, number | string>;
      assert.deepEqual(Object.keys(reply), ['function', 'requestedMs', 'durationMs']);
      assert.equal(reply.function, 'trace');
      assert.equal(reply.requestedMs, 30);
      assert.ok(Number(reply.durationMs) >= 30 && elapsedMs >= 30, JSON.stringify(reply));
      const invitro = await fetch(trace.url, { headers: { requested_cpu: '5' } });
      assert.equal(((await invitro.json()) as { requestedMs: number }).requestedMs, 5);
      const bad = await fetch(trace.url, { headers: { 'x-emulated-duration-ms': 'soon' } });
      assert.equal(bad.status, 400);
      const error = ((await bad.json()) as { error: { field: string } }).error;
      assert.equal(error.field, 'x-emulated-duration-ms');
    } finally {
      assert.equal(await stop(trace), 0);
    }
  });
});

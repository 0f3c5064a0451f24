/**
 * Goal: `dirigent fn invoke` routes by Host, sends the body, method, path and headers asked
 * for, prints the function's bytes to stdout and the data plane's status headers to stderr,
 * and exits 1 on a non-2xx answer. Method: a fake data plane on 127.0.0.1 records requests
 * and answers with canned statuses and headers; runCli runs in-process.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runCli } from './program.js';
import {
  captureIo,
  closedPortUrl,
  startFakeServer,
  type CannedReply,
  type FakeServer,
} from './fake-http.js';
import { describeReply, parseHeaderFlags } from './invoke.js';

let dp: FakeServer;
let next: CannedReply;
let dir: string;

before(async () => {
  dp = await startFakeServer(() => next);
  dir = await mkdtemp(join(tmpdir(), 'dirigent-invoke-'));
});
after(async () => {
  await dp.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  dp.requests.length = 0;
  next = {
    status: 200,
    body: 'Hello from hello! world',
    headers: { 'x-dirigent-cold-start': 'true', 'x-dirigent-queue-ms': '12' },
  };
});

async function run(argv: string[], env: Record<string, string> = {}) {
  const io = captureIo({ cwd: dir, env });
  const code = await runCli(['fn', 'invoke', ...argv], io);
  return { code, out: io.out(), err: io.err() };
}

describe('fn invoke: requests and output', { timeout: 10_000 }, () => {
  test('--data is POSTed with Host: <name>; body to stdout, status to stderr', async () => {
    const { code, out, err } = await run(['hello', '--data', 'world', '--proxy', dp.url]);
    assert.equal(code, 0);
    assert.equal(out, 'Hello from hello! world\n');
    assert.equal(err, 'HTTP 200 OK, cold start: yes, queued: 12 ms\n');
    const [req] = dp.requests;
    assert.equal(req.method, 'POST');
    assert.equal(req.url, '/');
    assert.equal(req.headers.host, 'hello');
    assert.equal(req.body, 'world');
  });

  test('without a body the default is GET; --method, --path and --header apply', async () => {
    await run(['hello', '--proxy', dp.url]);
    assert.equal(dp.requests[0].method, 'GET');
    assert.equal(dp.requests[0].body, '');
    await run(['hello', '--proxy', dp.url, '--method', 'put', '--path', '/items?id=3',
      '--header', 'x-emulated-duration-ms: 50', '--header', 'Content-Type:text/plain']);
    const req = dp.requests[1];
    assert.equal(req.method, 'PUT');
    assert.equal(req.url, '/items?id=3');
    assert.equal(req.headers['x-emulated-duration-ms'], '50');
    assert.equal(req.headers['content-type'], 'text/plain');
    assert.equal(req.headers.host, 'hello');
  });

  test('--data-file is read relative to the cwd', async () => {
    await writeFile(join(dir, 'input.json'), '{"n":1}');
    const { code } = await run(['hello', '--data-file', 'input.json', '--proxy', dp.url]);
    assert.equal(code, 0);
    assert.equal(dp.requests[0].body, '{"n":1}');
    assert.equal(dp.requests[0].method, 'POST');
  });

  test('output ends with a newline even when piped, so stdout and stderr never glue', async () => {
    next = { status: 503, body: '{"error":{"code":"queue_full","message":"full"}}' };
    const io = captureIo({ cwd: dir, env: {} });
    const both: string[] = [];
    const stdoutWrite = io.stdout.write.bind(io.stdout);
    const stderrWrite = io.stderr.write.bind(io.stderr);
    io.stdout.write = ((chunk: string | Uint8Array) => (both.push(String(chunk)), stdoutWrite(chunk))) as typeof io.stdout.write;
    io.stderr.write = ((chunk: string | Uint8Array) => (both.push(String(chunk)), stderrWrite(chunk))) as typeof io.stderr.write;
    const code = await runCli(['fn', 'invoke', 'hello', '--proxy', dp.url], io);
    assert.equal(code, 1);
    const lines = both.join('').split('\n');
    assert.equal(lines[0], '{"error":{"code":"queue_full","message":"full"}}');
    assert.equal(lines[1], 'HTTP 503 Service Unavailable');
    assert.ok(both.join('').endsWith('\n'));
  });

  test('--raw prints the body byte for byte (no newline added)', async () => {
    const { code, out } = await run(['hello', '--raw', '--proxy', dp.url]);
    assert.equal(code, 0);
    assert.equal(out, 'Hello from hello! world');
  });

  test('the proxy URL comes from DIRIGENT_PROXY when --proxy is absent', async () => {
    const { code } = await run(['hello'], { DIRIGENT_PROXY: dp.url });
    assert.equal(code, 0);
    assert.equal(dp.requests.length, 1);
  });

});

describe('fn invoke: failures', { timeout: 10_000 }, () => {
  test('a data-plane error prints the body, the status and one error line; exit 1', async () => {
    next = { status: 404, body: { error: { code: 'function_not_found',
      message: 'no function named "nope"', field: 'host' } } };
    const { code, out, err } = await run(['nope', '--proxy', dp.url]);
    assert.equal(code, 1);
    assert.equal(JSON.parse(out).error.code, 'function_not_found');
    assert.equal(err, 'HTTP 404 Not Found\nerror: no function named "nope" (field: host)\n');
  });

  test('a function failing with a plain body exits 1 too', async () => {
    next = { status: 500, body: 'boom', headers: { 'x-dirigent-cold-start': 'false' } };
    const { code, out, err } = await run(['hello', '--proxy', dp.url]);
    assert.equal(code, 1);
    assert.equal(out, 'boom\n');
    assert.equal(err, `HTTP 500 Internal Server Error, cold start: no\n` +
      `error: HTTP 500 from ${dp.url}/: boom\n`);
  });

  test('a stopped data plane gets the `dirigent up` hint', async () => {
    const url = await closedPortUrl();
    const { code, err } = await run(['hello', '--proxy', url]);
    assert.equal(code, 1);
    assert.equal(err,
      `error: cannot reach the data plane at ${url}: is \`dirigent up\` running?\n`);
  });

  test('--request-timeout-ms bounds a silent data plane', async () => {
    const silent = createServer(() => { /* never answers */ });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      const { code, err } = await run(['hello', '--proxy', url, '--request-timeout-ms', '100']);
      assert.equal(code, 1);
      assert.equal(err, `error: no answer from the data plane at ${url} within 100 ms\n`);
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  const usageCases: [string, string[]][] = [
    ['--data with --data-file', ['--data', 'x', '--data-file', 'y']],
    ['a missing --data-file', ['--data-file', 'does-not-exist']],
    ['a header without a colon', ['--header', 'nocolon']],
    ['a path without /', ['--path', 'items']],
    ['a method with spaces', ['--method', 'GET X']],
  ];
  for (const [what, flags] of usageCases) {
    test(`usage error: ${what} -> exit 2, nothing sent`, async () => {
      const { code, err } = await run(['hello', '--proxy', dp.url, ...flags]);
      assert.equal(code, 2, err);
      assert.equal(dp.requests.length, 0);
    });
  }
});

describe('invoke helpers', () => {
  test('describeReply shows what the headers say and skips what they do not', () => {
    assert.equal(describeReply({ status: 204, headers: {} }), 'HTTP 204 No Content');
    assert.equal(describeReply({ status: 200, headers: {
      'x-dirigent-cold-start': '0', 'x-dirigent-queue-ms': '0.4', 'x-dirigent-sandbox': 's-7',
    } }), 'HTTP 200 OK, cold start: no, queued: 0.4 ms, sandbox: s-7');
    assert.equal(describeReply({ status: 599, headers: {} }), 'HTTP 599');
  });

  test('parseHeaderFlags splits at the first colon and lower-cases names', () => {
    assert.deepEqual(parseHeaderFlags(['X-A: 1', 'b:c:d']), { 'x-a': '1', b: 'c:d' });
    assert.throws(() => parseHeaderFlags([': v']), /--header must be Name:value/);
  });
});

describe('fn invoke: functions with auth: token', { timeout: 10_000 }, () => {
  test('sends no token first; on a 401 unauthorized resends once with the CLI token, body and all', async () => {
    const guarded = await startFakeServer((req) => (req.headers.authorization === 'Bearer dgt_secret'
      ? { status: 200, body: 'in' }
      : { status: 401, body: { error: { code: 'unauthorized', message: 'needs a token' } } }));
    try {
      const { code, out } = await run(['g', '--namespace', 'team-a', '--data', 'x', '--proxy', guarded.url], { DIRIGENT_TOKEN: 'dgt_secret' });
      assert.equal(code, 0);
      assert.equal(out, 'in\n');
      assert.deepEqual(guarded.requests.map((r) => [r.headers.host, r.headers.authorization, r.body]),
        [['g.team-a', undefined, 'x'], ['g.team-a', 'Bearer dgt_secret', 'x']]);
    } finally {
      await guarded.close();
    }
  });

  test('a public function never sees the token', async () => {
    const { code } = await run(['hello', '--proxy', dp.url], { DIRIGENT_TOKEN: 'dgt_secret' });
    assert.equal(code, 0);
    assert.equal(dp.requests.length, 1);
    assert.equal(dp.requests[0]!.headers.authorization, undefined);
  });
});

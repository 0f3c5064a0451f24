/**
 * Goal: `dirigent fn deploy|list|get|update|delete` send the right requests to the management
 * API and print the right things, with the documented exit codes. Method: run the CLI
 * in-process with `runCli` against a fake control plane on 127.0.0.1 that uses the real
 * validators (so a 400 carries the exact error the real API would send), then assert on the
 * recorded requests and the captured output.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Command } from 'commander';
import { runCli } from './program.js';
import { CliError } from './context.js';
import {
  captureIo,
  closedPortUrl,
  startFakeServer,
  type CannedReply,
  type FakeServer,
  type RecordedRequest,
} from './fake-http.js';
import { validateFunctionCreate, validateFunctionPatch } from '../api/validate.js';
import type { FunctionSpec, FunctionStatus } from '../api/types.js';

const cwd = '/home/user/project';
const status: FunctionStatus = {
  desired: 2, ready: 1, creating: 1, draining: 0, queueDepth: 3, inflight: 1,
  panicking: false, lastScaleReason: 'demand 3 over target 1',
};

/** A control plane in memory: POST/GET/PATCH/DELETE over a map, validated for real. */
function fakeControlPlane(functions: Map<string, FunctionSpec>) {
  return (req: RecordedRequest): CannedReply => {
    const match = /^\/v1\/functions(?:\/([^/?]+))?$/.exec(req.url);
    const name = match?.[1] === undefined ? undefined : decodeURIComponent(match[1]);
    const body = req.body === '' ? undefined : JSON.parse(req.body);
    if (match === null) {
      return { status: 404, body: { error: { code: 'not_found', message: 'no route' } } };
    }
    if (name === undefined && req.method === 'POST') {
      const result = validateFunctionCreate(body);
      if (!result.ok) return { status: 400, body: { error: result.error } };
      if (functions.has(result.value.name)) {
        return { status: 409, body: { error: { code: 'already_exists',
          message: `function "${result.value.name}" already exists`, field: 'name' } } };
      }
      functions.set(result.value.name, result.value);
      return { status: 201, body: { function: result.value, status } };
    }
    if (name === undefined) {
      const listed = [...functions.values()].map((spec) => ({ function: spec, status }));
      return { status: 200, body: { functions: listed } };
    }
    const existing = functions.get(name);
    if (existing === undefined) {
      return { status: 404, body: { error: { code: 'not_found',
        message: `function "${name}" not found` } } };
    }
    if (req.method === 'GET') return { status: 200, body: { function: existing, status } };
    if (req.method === 'DELETE') {
      functions.delete(name);
      return { status: 204 };
    }
    const result = validateFunctionPatch(existing, body);
    if (!result.ok) return { status: 400, body: { error: result.error } };
    functions.set(name, result.value);
    return { status: 200, body: { function: result.value, status } };
  };
}

const functions = new Map<string, FunctionSpec>();
let cp: FakeServer;

before(async () => {
  cp = await startFakeServer(fakeControlPlane(functions));
});
after(async () => {
  await cp.close();
});
beforeEach(() => {
  functions.clear();
  cp.requests.length = 0;
});

async function run(argv: string[], env: Record<string, string> = {}) {
  const io = captureIo({ cwd, env });
  const code = await runCli(argv, io);
  return { code, out: io.out(), err: io.err() };
}
const api = () => ['--api', cp.url];
const sentBody = (index = 0) => JSON.parse(cp.requests[index].body) as Record<string, unknown>;

describe('fn deploy', { timeout: 10_000 }, () => {
  test('deploy --command splits on whitespace and sends the cwd as workingDir', async () => {
    const { code, out, err } = await run(
      ['fn', 'deploy', 'hello', '--command', 'node  examples/hello/server.js', ...api()]);
    assert.equal(err, '');
    assert.equal(code, 0);
    assert.equal(cp.requests[0].method, 'POST');
    assert.equal(cp.requests[0].url, '/v1/functions');
    assert.equal(cp.requests[0].headers['content-type'], 'application/json');
    assert.deepEqual(sentBody(), {
      name: 'hello', command: ['node', 'examples/hello/server.js'], workingDir: cwd,
    });
    assert.match(out, /^deployed function hello\n/);
    assert.match(out, /command: +node examples\/hello\/server\.js\n/);
    assert.match(out, /dirigent fn invoke hello --data 'hi'/);
    assert.match(out, /curl -H 'Host: hello' --data 'hi' http:\/\/127\.0\.0\.1:8080\//);
  });

  test('deploy --command accepts a JSON array and --working-dir resolves against cwd', async () => {
    const { code } = await run(['fn', 'deploy', 'py', '--command', '["python3", "my app.py"]',
      '--working-dir', 'apps/py', ...api()]);
    assert.equal(code, 0);
    assert.deepEqual(sentBody(), {
      name: 'py', command: ['python3', 'my app.py'], workingDir: `${cwd}/apps/py`,
    });
  });

  test('deploy sends every spec flag; --min/--max/--keep-alive win over --scaling', async () => {
    const { code, err } = await run(['fn', 'deploy', 'img', '--image', 'r/img:1', '--port', '80',
      '--env', 'A=1', '--env', 'B=x=y', '--cpu', '250', '--memory', '256', '--concurrency', '4',
      '--timeout-ms', '5000', '--min', '1', '--max', '3', '--keep-alive', '1200', '--preset', 'knative',
      '--scaling', '{"stableWindowS":30,"min":0}', ...api()]);
    assert.equal(err, '');
    assert.equal(code, 0);
    assert.deepEqual(sentBody(), {
      name: 'img', image: 'r/img:1', port: 80, env: { A: '1', B: 'x=y' },
      resources: { cpuMillis: 250, memoryMiB: 256 }, concurrency: 4, timeoutMs: 5000,
      scalingPreset: 'knative', scaling: { stableWindowS: 30, min: 1, max: 3, keepAliveWindowS: 1200 },
    });
  });

  test('deploy --async-* flags send the async object; fn get shows it, unset keys as DP defaults', async () => {
    const { code, err } = await run(['fn', 'deploy', 'hello', '--command', 'node s.js', '--async-retry-on-4xx',
      '--async-attempts-max', '5', ...api()]);
    assert.equal(err, '');
    assert.equal(code, 0);
    assert.deepEqual(sentBody().async, { retryOn4xx: true, attemptsMax: 5 });
    const got = await run(['fn', 'get', 'hello', ...api()]);
    assert.match(got.out, /async: +retry on 4xx yes, attempts 5, max event age DP default\n/);
    const upd = await run(['fn', 'update', 'hello', '--no-async-retry-on-4xx', '--async-event-age-ms-max', '60000', ...api()]);
    assert.equal(upd.code, 0);
    assert.deepEqual(sentBody(2), { async: { retryOn4xx: false, eventAgeMsMax: 60_000 } });
    assert.deepEqual(functions.get('hello')?.async, { retryOn4xx: false, attemptsMax: 5, eventAgeMsMax: 60_000 });
  });

  test('a 400 prints the API error as one line and exits 1', async () => {
    const { code, out, err } = await run(['fn', 'deploy', 'hello', '--command', 'node s.js',
      '--scaling', '{"stableWindowS":0}', ...api()]);
    assert.equal(code, 1);
    assert.equal(out, '');
    assert.equal(err, 'error: scaling.stableWindowS must be a number in [1, 3600], got 0 ' +
      '(field: scaling.stableWindowS)\n');
  });

  test('a 409 says how to change or remove the function', async () => {
    await run(['fn', 'deploy', 'hello', '--command', 'node s.js', ...api()]);
    const { code, err } = await run(['fn', 'deploy', 'hello', '--image', 'x', ...api()]);
    assert.equal(code, 1);
    assert.equal(err, 'error: function "hello" already exists (field: name); change it with ' +
      '`dirigent fn update hello ...` or remove it with `dirigent fn delete hello`\n');
  });

});

describe('fn deploy: usage errors', { timeout: 10_000 }, () => {
  const usageCases: [string, string[]][] = [
    ['both --command and --image', ['--command', 'node s.js', '--image', 'x']],
    ['neither --command nor --image', []],
    ['--env without =', ['--command', 'x', '--env', 'FOO']],
    ['--scaling not JSON', ['--command', 'x', '--scaling', '{stable']],
    ['--scaling not an object', ['--command', 'x', '--scaling', '[1]']],
    ['--port not a number', ['--command', 'x', '--port', 'eighty']],
    ['--preset unknown', ['--command', 'x', '--preset', 'fast']],
    ['--command empty', ['--command', '  ']],
    ['--command JSON of numbers', ['--command', '[1,2]']],
    ['unknown option', ['--command', 'x', '--replicas', '3']],
  ];
  for (const [what, flags] of usageCases) {
    test(`deploy usage error: ${what} -> exit 2, nothing sent`, async () => {
      const { code, err } = await run(['fn', 'deploy', 'hello', ...flags, ...api()]);
      assert.equal(code, 2, err);
      assert.match(err, /^error: /);
      assert.equal(cp.requests.length, 0);
    });
  }

});

describe('fn: where the API is', { timeout: 10_000 }, () => {
  test('the API URL comes from DIRIGENT_API when --api is absent', async () => {
    const { code } = await run(['fn', 'list'], { DIRIGENT_API: `${cp.url}/` });
    assert.equal(code, 0);
    assert.equal(cp.requests[0].url, '/v1/functions');
  });

  test('a malformed --api is a usage error', async () => {
    const { code, err } = await run(['fn', 'list', '--api', 'ftp://x']);
    assert.equal(code, 2);
    assert.match(err, /--api \/ DIRIGENT_API must be an http or https URL/);
  });

});

describe('fn list and get', { timeout: 10_000 }, () => {
  test('list prints a table, --json the API answer, and an empty list says so', async () => {
    const empty = await run(['fn', 'list', ...api()]);
    assert.equal(empty.out, 'no functions deployed (see `dirigent fn deploy --help`)\n');
    await run(['fn', 'deploy', 'hello', '--command', 'node s.js', ...api()]);
    await run(['fn', 'deploy', 'a-much-longer-name', '--image', 'x', ...api()]);
    const table = await run(['fn', 'list', ...api()]);
    assert.equal(table.code, 0);
    assert.equal(table.out,
      'NAME                DESIRED  READY  CREATING  QUEUE\n' +
      'hello               2        1      1         3\n' +
      'a-much-longer-name  2        1      1         3\n');
    const json = await run(['fn', 'list', '--json', ...api()]);
    const parsed = JSON.parse(json.out) as { functions: { function: FunctionSpec }[] };
    assert.deepEqual(parsed.functions.map((f) => f.function.name), ['hello', 'a-much-longer-name']);
  });

  test('get prints spec and status; --json prints the answer; 404 is one line', async () => {
    await run(['fn', 'deploy', 'hello', '--command', 'node s.js', '--env', 'A=1', ...api()]);
    const got = await run(['fn', 'get', 'hello', ...api()]);
    assert.equal(got.code, 0);
    assert.equal(cp.requests[1].url, '/v1/functions/hello');
    assert.match(got.out, /^name: +hello\n/);
    assert.match(got.out, /working dir: +\/home\/user\/project\n/);
    assert.match(got.out, /env: +A=1\n/);
    assert.match(got.out, /resources: +100 milli-CPU, 128 MiB\n/);
    assert.match(got.out, /scale: +min 0, max 10000, initial 0\n/);
    assert.match(got.out,
      /status: +desired 2, ready 1, creating 1, draining 0, queue 3, in flight 1\n/);
    assert.match(got.out, /last scaling: +demand 3 over target 1\n/);
    assert.doesNotMatch(got.out, /port:/, 'a process function listens on $PORT, not spec.port');
    assert.doesNotMatch(got.out, /keep-alive|scale-down delay/, 'knobs that are off are not listed');
    await run(['fn', 'deploy', 'kept', '--command', 'node s.js', '--keep-alive', '1200', '--scaling', '{"scaleDownDelayS":30}', ...api()]);
    const kept = await run(['fn', 'get', 'kept', ...api()]);
    assert.match(kept.out, /autoscaler: .*, keep-alive histogram over 1200 s\n/);
    assert.match(kept.out, /windows: .*, scale-down delay 30 s\n/);
    const json = await run(['fn', 'get', 'hello', '--json', ...api()]);
    assert.deepEqual(JSON.parse(json.out), { function: functions.get('hello'), status });
    const missing = await run(['fn', 'get', 'nope', ...api()]);
    assert.equal(missing.code, 1);
    assert.equal(missing.err, 'error: function "nope" not found\n');
  });

});

describe('fn list and get: unschedulable functions', { timeout: 10_000 }, () => {
  test('the placement reason shows in get and in a REASON column of list', async () => {
    const spec = validateFunctionCreate({ name: 'img', image: 'docker.io/x/y:1', port: 80 });
    assert.ok(spec.ok);
    const stuck = { ...status, desired: 1, ready: 0, creating: 0,
      unschedulableReason: 'no worker supports runtime oci' };
    const server = await startFakeServer((req) => (req.url === '/v1/functions'
      ? { status: 200, body: { functions: [{ function: spec.value, status: stuck }] } }
      : { status: 200, body: { function: spec.value, status: stuck } }));
    try {
      const got = await run(['fn', 'get', 'img', '--api', server.url]);
      assert.match(got.out, /unschedulable: +no worker supports runtime oci\n/);
      assert.match(got.out, /port: +80\n/, 'an image function shows the port it listens on');
      const list = await run(['fn', 'list', '--api', server.url]);
      assert.equal(list.out,
        'NAME  DESIRED  READY  CREATING  QUEUE  REASON\n' +
        'img   1        0      0         3      no worker supports runtime oci\n');
    } finally {
      await server.close();
    }
  });
});

describe('fn update and delete', { timeout: 10_000 }, () => {
  test('update sends only the flags given as a PATCH', async () => {
    await run(['fn', 'deploy', 'hello', '--command', 'node s.js', ...api()]);
    const { code, out } = await run(
      ['fn', 'update', 'hello', '--max', '10', '--concurrency', '4', ...api()]);
    assert.equal(code, 0);
    assert.equal(cp.requests[1].method, 'PATCH');
    assert.equal(cp.requests[1].url, '/v1/functions/hello');
    assert.deepEqual(sentBody(1), { concurrency: 4, scaling: { max: 10 } });
    assert.match(out, /^updated function hello\n/);
    assert.equal(functions.get('hello')?.scaling.max, 10);
  });

  test('update errors: no flags is usage (2), a rejected patch is 1', async () => {
    const none = await run(['fn', 'update', 'hello', ...api()]);
    assert.equal(none.code, 2);
    assert.equal(cp.requests.length, 0);
    await run(['fn', 'deploy', 'hello', '--command', 'node s.js', ...api()]);
    const bad = await run(['fn', 'update', 'hello', '--min', '5', '--max', '3', ...api()]);
    assert.equal(bad.code, 1);
    assert.equal(bad.err,
      'error: scaling.min must be <= scaling.max (3), got 5 (field: scaling.min)\n');
  });

  test('delete sends DELETE and confirms', async () => {
    await run(['fn', 'deploy', 'hello', '--command', 'node s.js', ...api()]);
    const { code, out } = await run(['fn', 'delete', 'hello', ...api()]);
    assert.equal(code, 0);
    assert.equal(cp.requests[1].method, 'DELETE');
    assert.equal(out, 'deleted function hello\n');
    assert.equal(functions.size, 0);
  });

});

describe('fn: transport and answer errors', { timeout: 10_000 }, () => {
  test('a stopped control plane gets the `dirigent up` hint and exit 1', async () => {
    const url = await closedPortUrl();
    const { code, err } = await run(['fn', 'list', '--api', url]);
    assert.equal(code, 1);
    assert.equal(err,
      `error: cannot reach the control plane at ${url}: is \`dirigent up\` running?\n`);
  });

  test('an answer of the wrong shape is one line, not a crash', async () => {
    const odd = await startFakeServer(() => ({ status: 200, body: { functions: [{ x: 1 }] } }));
    try {
      const { code, err } = await run(['fn', 'list', '--api', odd.url]);
      assert.equal(code, 1);
      assert.match(err, /^error: unexpected answer from .* at functions\.0\.function: Required\n$/);
    } finally {
      await odd.close();
    }
  });

  test('a non-API error body shows the status and the body', async () => {
    const proxy = await startFakeServer(() => ({ status: 502, body: 'Bad Gateway\n' }));
    try {
      const { code, err } = await run(['fn', 'get', 'x', '--api', proxy.url]);
      assert.equal(code, 1);
      assert.equal(err, `error: HTTP 502 from ${proxy.url}/v1/functions/x: Bad Gateway\n`);
    } finally {
      await proxy.close();
    }
  });
});

describe('runCli: help, usage and extra commands', { timeout: 10_000 }, () => {
  test('--help exits 0 and shows examples', async () => {
    for (const argv of [['--help'], ['fn', 'deploy', '--help'], ['fn', 'invoke', '--help']]) {
      const io = captureIo();
      assert.equal(await runCli(argv, io), 0);
      assert.match(io.out(), /Examples:/, argv.join(' '));
    }
  });

  test('--version and -V print the version from package.json and exit 0', async () => {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    for (const flag of ['--version', '-V']) {
      const io = captureIo();
      assert.equal(await runCli([flag], io), 0, flag);
      assert.equal(io.out(), `${pkg.version}\n`);
    }
  });

  test('no command, a bare group and an unknown command are usage errors (2)', async () => {
    for (const argv of [[], ['fn'], ['fn', 'scale'], ['cluster', 'status', 'extra']]) {
      const io = captureIo();
      assert.equal(await runCli(argv, io), 2, argv.join(' '));
    }
  });

  test('extra commands are mounted, configured, and may fail with CliError', async () => {
    const install = (program: Command) => {
      program.command('up').option('--fail').action((flags: { fail?: boolean }) => {
        if (flags.fail) throw new CliError('port 9091 is taken');
      });
    };
    const io = captureIo();
    assert.equal(await runCli(['up'], io, [install]), 0);
    const failing = captureIo();
    assert.equal(await runCli(['up', '--fail'], failing, [install]), 1);
    assert.equal(failing.err(), 'error: port 9091 is taken\n');
    const unknown = captureIo();
    assert.equal(await runCli(['up', '--bogus'], unknown, [install]), 2);
    assert.match(unknown.err(), /unknown option '--bogus'/);
  });
});

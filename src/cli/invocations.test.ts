/**
 * Goal: `fn invoke --async` asks for an async answer and prints the id; `invocation get|list|retry`
 * call the DP's /v1/invocations API and print what it said (get --wait polls to the end, list
 * --all follows the cursor). Method: a fake data plane on 127.0.0.1; runCli runs in-process.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from './program.js';
import { captureIo, startFakeServer, type CannedReply, type FakeServer, type RecordedRequest } from './fake-http.js';

let dp: FakeServer;
let route: (req: RecordedRequest) => CannedReply;

before(async () => {
  dp = await startFakeServer((req) => route(req));
});
after(async () => {
  await dp.close();
});
beforeEach(() => {
  dp.requests.length = 0;
});

const done = {
  id: 'inv-1', function: 'hello', namespace: 'default', status: 'succeeded', acceptedAt: '2026-12-02T14:00:00.000Z',
  attempts: [{ startedAt: '2026-12-02T14:00:00.010Z', endedAt: '2026-12-02T14:00:00.020Z', outcome: 'ok', statusCode: 200 }],
  result: { statusCode: 200, headers: {}, body: 'Hello async' },
};

async function run(argv: string[]) {
  const io = captureIo();
  const code = await runCli([...argv, '--proxy', dp.url], io);
  return { code, out: io.out(), err: io.err() };
}

describe('fn invoke --async', () => {
  test('sends Prefer: respond-async and prints the id and Location', async () => {
    route = () => ({ status: 202, body: { id: 'inv-7' }, headers: { location: '/v1/invocations/inv-7' } });
    const r = await run(['fn', 'invoke', 'hello', '--data', 'x', '--async']);
    assert.equal(r.code, 0, r.err);
    assert.equal(dp.requests[0].headers.prefer, 'respond-async');
    assert.equal(dp.requests[0].headers.host, 'hello');
    assert.equal(r.out, 'inv-7\n');
    assert.match(r.err, /Location: \/v1\/invocations\/inv-7/);
  });

  test('a refusal (429 queue full) fails with the DP message', async () => {
    route = () => ({ status: 429, body: { error: { code: 'async_queue_full', message: 'queue of hello is full (asyncQueuePerFunctionMax 100000)' } } });
    const r = await run(['fn', 'invoke', 'hello', '--async']);
    assert.equal(r.code, 1);
    assert.match(r.err, /asyncQueuePerFunctionMax/);
  });
});

describe('invocation get', () => {
  test('prints status, attempts and the result body', async () => {
    route = () => ({ status: 200, body: done });
    const r = await run(['invocation', 'get', 'inv-1']);
    assert.equal(r.code, 0, r.err);
    assert.equal(dp.requests[0].url, '/v1/invocations/inv-1');
    assert.match(r.out, /status: +succeeded/);
    assert.match(r.out, /ok +200/);
    assert.match(r.out, /result: HTTP 200\nHello async\n$/);
  });

  test('--wait polls until the invocation is finished', async () => {
    let calls = 0;
    route = () => (++calls < 3 ? { status: 200, body: { ...done, status: 'running', attempts: [], result: undefined } } : { status: 200, body: done });
    const r = await run(['invocation', 'get', 'inv-1', '--wait']);
    assert.equal(r.code, 0, r.err);
    assert.equal(calls, 3);
    assert.match(r.out, /succeeded/);
  });

  test('a dead invocation exits 1; an unknown one shows the DP error', async () => {
    route = () => ({ status: 200, body: { ...done, status: 'dead', result: undefined } });
    assert.equal((await run(['invocation', 'get', 'inv-1'])).code, 1);
    route = () => ({ status: 404, body: { error: { code: 'invocation_not_found', message: 'no invocation inv-9' } } });
    const r = await run(['invocation', 'get', 'inv-9']);
    assert.equal(r.code, 1);
    assert.match(r.err, /no invocation inv-9/);
  });
});

describe('invocation list', () => {
  test('sends the filters and prints a table', async () => {
    route = () => ({ status: 200, body: { items: [{ ...done, attempts: 1 }] } });
    const r = await run(['invocation', 'list', '--function', 'hello', '--status', 'succeeded', '--limit', '5']);
    assert.equal(r.code, 0, r.err);
    const url = new URL(dp.requests[0].url, dp.url);
    assert.equal(url.pathname, '/v1/invocations');
    assert.equal(url.searchParams.get('function'), 'hello');
    assert.equal(url.searchParams.get('status'), 'succeeded');
    assert.equal(url.searchParams.get('limit'), '5');
    assert.match(r.out, /inv-1 +hello +succeeded +1/);
  });

  test('--all follows nextCursor to the end', async () => {
    route = (req) => (req.url.includes('cursor=c1')
      ? { status: 200, body: { items: [{ ...done, id: 'inv-2', attempts: 1 }] } }
      : { status: 200, body: { items: [{ ...done, attempts: 1 }], nextCursor: 'c1' } });
    const r = await run(['invocation', 'list', '--all', '--json']);
    assert.equal(r.code, 0, r.err);
    assert.equal(dp.requests.length, 2);
    const items = (JSON.parse(r.out) as { items: { id: string }[] }).items.map((i) => i.id);
    assert.deepEqual(items, ['inv-1', 'inv-2']);
  });

  test('a bad --status is a usage error before any request', async () => {
    const r = await run(['invocation', 'list', '--status', 'lost']);
    assert.equal(r.code, 2);
    assert.equal(dp.requests.length, 0);
  });
});

describe('invocation retry', () => {
  test('POSTs the retry and reports it queued', async () => {
    route = () => ({ status: 202, body: { id: 'inv-1', status: 'queued' } });
    const r = await run(['invocation', 'retry', 'inv-1']);
    assert.equal(r.code, 0, r.err);
    assert.equal(dp.requests[0].method, 'POST');
    assert.equal(dp.requests[0].url, '/v1/invocations/inv-1/retry');
    assert.match(r.out, /queued again/);
  });

  test('409 not_redrivable says which invocations can be retried', async () => {
    route = () => ({ status: 409, body: { error: { code: 'not_redrivable', message: 'invocation inv-1 is running' } } });
    const r = await run(['invocation', 'retry', 'inv-1']);
    assert.equal(r.code, 1);
    assert.match(r.err, /only failed and dead/);
  });
});

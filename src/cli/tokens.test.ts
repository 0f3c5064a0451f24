/**
 * Goal: the CLI's side of tokens: every management call carries the CLI's token; a 401 prints
 * one line saying where it looked; `token create` prints the token alone; `--namespace` reaches
 * the API. Method: a fake control plane on 127.0.0.1 records requests; runCli runs in-process.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { runCli } from './program.js';
import { captureIo, startFakeServer, type CannedReply, type FakeServer } from './fake-http.js';

let cp: FakeServer;
let next: CannedReply;

before(async () => {
  cp = await startFakeServer(() => next);
});
after(() => cp.close());
beforeEach(() => {
  cp.requests.length = 0;
});

async function run(argv: string[], env: Record<string, string> = {}) {
  const io = captureIo({ cwd: '/nonexistent-dir', env: { DIRIGENT_API: cp.url, ...env } });
  const code = await runCli(argv, io);
  return { code, out: io.out(), err: io.err() };
}

describe('CLI tokens', { timeout: 10_000 }, () => {
  test('token create sends the CLI token and prints the new one alone', async () => {
    next = { status: 201, body: { id: 'abc', token: 'dgt_new', scope: 'deploy', namespace: 'team-a', description: '', createdAt: 'x' } };
    const r = await run(['token', 'create', '--scope', 'deploy', '--namespace', 'team-a'], { DIRIGENT_TOKEN: 'dgt_mine' });
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'dgt_new\n');
    assert.equal(cp.requests[0]!.headers.authorization, 'Bearer dgt_mine');
    assert.deepEqual(JSON.parse(cp.requests[0]!.body), { scope: 'deploy', namespace: 'team-a' });
  });

  test('a 401 is one line naming where the CLI looked and how to get a token', async () => {
    next = { status: 401, body: { error: { code: 'unauthorized', message: 'no bearer token' } } };
    const r = await run(['fn', 'list']);
    assert.equal(r.code, 1);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
    assert.match(r.err, /DIRIGENT_TOKEN.*admin\.token.*dirigent token create/);
  });

  test('fn get --namespace asks for that namespace', async () => {
    next = { status: 404, body: { error: { code: 'not_found', message: 'function x not found in namespace team-b' } } };
    await run(['fn', 'get', 'x', '--namespace', 'team-b'], { DIRIGENT_TOKEN: 't' });
    assert.equal(cp.requests[0]!.url, '/v1/functions/x?namespace=team-b');
  });
});

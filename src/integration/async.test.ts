/**
 * Goal: async invocations (issue #11) seen from outside on a real cluster: submit -> 202 ->
 * poll -> the function's answer; idempotency; named limits; retries on 5xx (not 4xx); dead
 * letters listed and re-driven; the async share of slots; a SIGKILLed DP restarted on the same
 * SQLite store still completes what it accepted.
 * Method: real CP, DP and worker processes (process runtime); the async-probe fixture. Bounds are
 * generous; nothing asserts a duration.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { fixture, stopProc, TestCluster, waitFor, type Resp } from './harness.js';

const one = { min: 1, max: 1 };
const asyncHeader = { prefer: 'respond-async' };

interface View { id: string; status: string; attempts: { outcome: string; statusCode?: number }[]; result?: { statusCode: number; headers: Record<string, string>; body?: string }; deadReason?: string }

describe('async invocations on a real cluster', { timeout: 180_000 }, () => {
  const c = new TestCluster({ workers: 1, dpArgs: ['--async-body-bytes-max', '1024', '--async-queue-per-function-max', '4', '--async-claim-lease-ms', '2000', '--async-callback-allow-private', 'true'] });
  before(async () => {
    await c.start().catch((err: Error) => { throw new Error(`${err.message}\n${c.dumpLogs()}`); });
    assert.equal((await c.deploy({ name: 'probe', command: ['node', fixture('async-probe.js')], concurrency: 4, scaling: one })).status, 201);
    await waitFor(async () => (await c.invoke('probe')).status === 200, 30_000, 'probe serves');
  });
  after(() => c.stop());

  const submit = (path: string, headers: Record<string, string> = {}, body?: string, fn = 'probe'): Promise<Resp> =>
    c.invoke(fn, { path, method: 'POST', headers: { ...asyncHeader, ...headers }, ...(body !== undefined ? { body } : {}) });
  // The DP may be restarting: an unreachable DP reads as an unknown status.
  const view = async (id: string): Promise<View> => ((await c.get(`${c.proxy}/v1/invocations/${id}`).catch(() => null))?.json ?? { status: '?' }) as View;
  const until = async (id: string, statuses: string[], ms = 30_000): Promise<View> => {
    let v: View | null = null;
    await waitFor(async () => statuses.includes((v = await view(id)).status), ms, `${id} reaches ${statuses.join('|')}`);
    return v!;
  };

  it('submit answers 202 with the id and Location; the result is the function answer', async () => {
    const r = await submit('/echo?x=1', {}, 'hello');
    assert.equal(r.status, 202, r.text);
    const { id } = r.json as { id: string };
    assert.equal(r.headers.location, `/v1/invocations/${id}`);
    const v = await until(id, ['succeeded']);
    assert.equal(v.result!.statusCode, 200);
    assert.equal(v.result!.body, 'hello');
    assert.equal(v.result!.headers['x-echo-url'], '/echo?x=1');
    assert.equal(v.attempts.length, 1);
  });

  it('X-Callback-Url gets the finished invocation POSTed (private addresses allowed by the DP knob here)', async () => {
    const got: string[] = [];
    const server = createServer((req, res) => {
      let text = '';
      req.on('data', (d: Buffer) => { text += d.toString(); });
      req.on('end', () => { got.push(text); res.end(); });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const r = await submit('/cb', { 'x-callback-url': `http://127.0.0.1:${port}/done` }, 'to-callback');
      assert.equal(r.status, 202, r.text);
      await waitFor(() => got.length > 0, 20_000, 'callback received');
      const v = JSON.parse(got[0]!) as View;
      assert.equal(v.id, (r.json as { id: string }).id);
      assert.equal(v.status, 'succeeded');
      assert.equal(v.result!.body, 'to-callback');
      // The invocation says where its callback stands once delivered.
      let cb: { state?: string; attempts?: number } = {};
      await waitFor(async () => (cb = ((await view(v.id)) as View & { callback?: typeof cb }).callback ?? {}).state === 'sent', 10_000, 'callback recorded as sent');
      assert.equal(cb.attempts, 1);
    } finally {
      server.close();
    }
  });

  it('an X-Callback-Url that is not http(s) is refused with 400 naming the header', async () => {
    const r = await submit('/', { 'x-callback-url': 'file:///etc/passwd' });
    assert.equal(r.status, 400);
    assert.match(r.text, /X-Callback-Url/);
  });

  it('a repeated Idempotency-Key returns the same id', async () => {
    const a = await submit('/', { 'idempotency-key': 'k-1' });
    const b = await submit('/', { 'idempotency-key': 'k-1' });
    assert.equal(a.status, 202);
    assert.equal(b.status, 202);
    assert.equal((a.json as { id: string }).id, (b.json as { id: string }).id);
  });

  it('limits: body too large is 413 naming asyncBodyBytesMax; an unknown function is 404', async () => {
    const big = await submit('/', {}, 'x'.repeat(2048));
    assert.equal(big.status, 413);
    assert.match(big.text, /async_body_too_large.*asyncBodyBytesMax/);
    assert.equal((await submit('/', {}, undefined, 'nope')).status, 404);
  });

  it('500 twice then 200: succeeded after 3 attempts', async () => {
    const r = await submit('/flaky/a/2');
    const v = await until((r.json as { id: string }).id, ['succeeded', 'dead', 'failed']);
    assert.equal(v.status, 'succeeded');
    assert.deepEqual(v.attempts.map((a) => a.outcome), ['http_5xx', 'http_5xx', 'ok']);
  });

  it('a 4xx is not retried: failed after 1 attempt', async () => {
    const r = await submit('/status/404');
    const v = await until((r.json as { id: string }).id, ['succeeded', 'dead', 'failed']);
    assert.equal(v.status, 'failed');
    assert.equal(v.attempts.length, 1);
    assert.equal(v.result!.statusCode, 404);
  });

  it('always 500: dead, listed as dead, re-driven by POST .../retry', async () => {
    const r = await submit('/status/503');
    const id = (r.json as { id: string }).id;
    const v = await until(id, ['succeeded', 'dead', 'failed']);
    assert.equal(v.status, 'dead');
    assert.equal(v.deadReason, 'attempts_exhausted');
    const listed = await c.get(`${c.proxy}/v1/invocations?function=probe&status=dead`);
    assert.ok((listed.json as { items: { id: string }[] }).items.some((i) => i.id === id), listed.text);
    const retried = await c.send('POST', `${c.proxy}/v1/invocations/${id}/retry`);
    assert.equal(retried.status, 202, retried.text);
    assert.equal((retried.json as { status: string }).status, 'queued');
    const again = await until(id, ['dead'], 30_000);
    assert.equal(again.attempts.length, 6);
    assert.equal((await c.send('POST', `${c.proxy}/v1/invocations/nope/retry`)).status, 404);
  });

  it('async executions stay within the share (2 of 4 slots) while sync requests are served; the queue limit is 429', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i += 1) ids.push(((await submit('/', { 'x-kind': 'async', 'x-sleep-ms': '1500' })).json as { id: string }).id);
    const full = await submit('/', { 'x-kind': 'async' });
    assert.equal(full.status, 429, full.text);
    assert.match(full.text, /asyncQueuePerFunctionMax/);
    await new Promise((r) => setTimeout(r, 500));
    const sync = await c.invoke('probe', { headers: { 'x-kind': 'sync' } });
    assert.equal(sync.status, 200);
    for (const id of ids) await until(id, ['succeeded']);
    const stats = (await c.invoke('probe', { path: '/stats' })).json as Record<string, number>;
    assert.ok(stats.async! <= 2 && stats.async! >= 1, JSON.stringify(stats));
  });

  it('a SIGKILLed DP restarted on the same state dir completes what it accepted', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i += 1) ids.push(((await submit('/', { 'x-sleep-ms': '3000' })).json as { id: string }).id);
    const dp = c.procs.find((p) => p.name === 'data-plane')!;
    await stopProc(dp, 'SIGKILL');
    c.spawn('data-plane-2', ['data-plane', '--control-plane', `127.0.0.1:${c.rpcPort}`, '--proxy-port', String(c.proxyPort),
      '--internal-port', String(c.internalPort), '--cluster-token-file', c.clusterTokenFile, '--state-dir', `${c.stateDir}/dp`,
      '--async-claim-lease-ms', '2000']);
    await waitFor(async () => (await c.get(`http://127.0.0.1:${c.internalPort}/health`).catch(() => ({ status: 0 }))).status === 200, 15_000, 'dp back');
    for (const id of ids) await until(id, ['succeeded'], 60_000);
  });
});

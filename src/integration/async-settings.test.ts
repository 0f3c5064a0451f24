/**
 * Goal: per-function async settings, async metrics and result retention seen from outside
 * (issue #11 parts 3, 7 and 4): a function with `async.retryOn4xx` has a 404 retried up to its
 * own attemptsMax (over the DP's default), a PATCH turning it off reaches the DP; dead letters
 * are counted by function and the oldest unfinished invocation's age is labelled by function on
 * /metrics; finished invocations and dead letters read 200, then 404 invocation_not_found once
 * the (short) retention ran out and the GC ran.
 * Method: real CP, DP and worker processes (process runtime) with the async-probe fixture; the DP
 * runs with --async-retention-ms 10000 and --async-gc-period-ms 200. A callback left pending
 * (its target answered 503) when the DP is SIGKILLed is delivered by the DP restarted on the same
 * state dir. Bounds are generous; nothing asserts a duration.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createServer } from 'node:http';
import { fixture, stopProc, TestCluster, waitFor, type Resp } from './harness.js';

const one = { min: 1, max: 1 };
const retentionMs = 10_000;

interface View { id: string; status: string; attempts: { outcome: string; statusCode?: number }[]; deadReason?: string }

const dpArgs = ['--async-attempts-max', '2', '--async-retention-ms', String(retentionMs), '--async-gc-period-ms', '200', '--async-callback-allow-private', 'true'];

describe('async settings, metrics and retention on a real cluster', { timeout: 180_000 }, () => {
  const c = new TestCluster({
    workers: 1,
    dpArgs,
  });
  before(async () => {
    await c.start();
    const probe = ['node', fixture('async-probe.js')];
    assert.equal((await c.deploy({ name: 'probe', command: probe, concurrency: 1, scaling: one })).status, 201);
    const r4 = await c.deploy({ name: 'r4', command: probe, concurrency: 2, scaling: one, async: { retryOn4xx: true, attemptsMax: 3 } });
    assert.equal(r4.status, 201, r4.text);
    assert.deepEqual((r4.json as { function: { async: unknown } }).function.async, { retryOn4xx: true, attemptsMax: 3 });
    for (const fn of ['probe', 'r4']) await waitFor(async () => (await c.invoke(fn)).status === 200, 30_000, `${fn} serves`);
  });
  after(() => c.stop());

  const submit = async (fn: string, path: string, headers: Record<string, string> = {}): Promise<string> => {
    const r: Resp = await c.invoke(fn, { path, method: 'POST', headers: { prefer: 'respond-async', ...headers } });
    assert.equal(r.status, 202, r.text);
    return (r.json as { id: string }).id;
  };
  const read = (id: string): Promise<Resp> => c.get(`${c.proxy}/v1/invocations/${id}`);
  const until = async (id: string, statuses: string[]): Promise<View> => {
    let v: View | null = null;
    await waitFor(async () => statuses.includes((v = (await read(id)).json as View).status), 30_000, `${id} reaches ${statuses.join('|')}`);
    return v!;
  };
  const done = ['succeeded', 'failed', 'dead'];
  const metrics = async (): Promise<string> => (await c.get(`http://127.0.0.1:${c.internalPort}/metrics`)).text;

  it('retryOn4xx: a 404 is retried up to the function\'s attemptsMax (3, over the DP default 2), then dead and counted', async () => {
    const v = await until(await submit('r4', '/status/404'), done);
    assert.equal(v.status, 'dead');
    assert.equal(v.deadReason, 'attempts_exhausted');
    assert.deepEqual(v.attempts.map((a) => [a.outcome, a.statusCode]), [['http_4xx', 404], ['http_4xx', 404], ['http_4xx', 404]]);
    assert.match(await metrics(), /dirigent_dp_async_dead_letters_total\{function="r4"\} 1\b/);
  });

  it('without settings a 404 is not retried; a PATCH turning retryOn4xx off reaches the DP', async () => {
    const plain = await until(await submit('probe', '/status/404'), done);
    assert.deepEqual([plain.status, plain.attempts.length], ['failed', 1]);
    const patched = await c.send('PATCH', `${c.api}/v1/functions/r4`, JSON.stringify({ async: { retryOn4xx: false } }), { 'content-type': 'application/json' });
    assert.equal(patched.status, 200, patched.text);
    assert.deepEqual((patched.json as { function: { async: unknown } }).function.async, { retryOn4xx: false, attemptsMax: 3 });
    // The routing delta is asynchronous: an attempt that raced it is retried, so ask again.
    await waitFor(async () => (await until(await submit('r4', '/status/404'), done)).status === 'failed', 30_000, 'r4 stops retrying 4xx');
  });

  it('the oldest unfinished invocation\'s age is labelled by function', async () => {
    // probe has one slot, so async may run one at a time: the others wait (unfinished).
    const ids = [];
    for (let i = 0; i < 3; i += 1) ids.push(await submit('probe', '/', { 'x-sleep-ms': '1500' }));
    await waitFor(async () => /dirigent_dp_async_oldest_queued_age_seconds\{function="probe"\} (0\.\d*[1-9]|[1-9])/.test(await metrics()), 10_000, 'probe age > 0');
    assert.doesNotMatch(await metrics(), /dirigent_dp_async_oldest_queued_age_seconds\{function="r4"\}/);
    for (const id of ids) await until(id, ['succeeded']);
    await waitFor(async () => !/dirigent_dp_async_oldest_queued_age_seconds\{function="probe"\}/.test(await metrics()), 10_000, 'probe has no unfinished');
  });

  it('results and dead letters read 200, then 404 invocation_not_found after the retention', async () => {
    const ok = await submit('probe', '/');
    const dead = await submit('r4', '/status/500');
    assert.equal((await until(ok, ['succeeded'])).status, 'succeeded');
    assert.equal((await until(dead, done)).status, 'dead');
    assert.equal((await read(dead)).status, 200);
    for (const id of [ok, dead]) {
      await waitFor(async () => (await read(id)).status === 404, 10 * retentionMs, `${id} expires`);
      const gone = await read(id);
      assert.match(gone.text, /invocation_not_found/);
    }
  });

  it('a callback still pending when the DP is SIGKILLed is delivered by the DP restarted on its state dir', async () => {
    let open = false;
    const got: string[] = [];
    const server = createServer((req, res) => {
      let text = '';
      req.on('data', (d: Buffer) => { text += d.toString(); });
      req.on('end', () => { got.push(text); res.statusCode = open ? 200 : 503; res.end(); });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const id = await submit('probe', '/', { 'x-callback-url': `http://127.0.0.1:${port}/done` });
      await waitFor(() => got.length >= 1, 20_000, 'first callback POST (answered 503)');
      // Let the 503 be recorded (pending, due in a second), then kill the DP before it retries.
      await new Promise((r) => setTimeout(r, 300));
      await stopProc(c.procs.find((p) => p.name === 'data-plane')!, 'SIGKILL');
      const before = got.length;
      open = true;
      c.spawn('data-plane-2', ['data-plane', '--control-plane', `127.0.0.1:${c.rpcPort}`, '--proxy-port', String(c.proxyPort),
        '--internal-port', String(c.internalPort), '--cluster-token-file', c.clusterTokenFile, '--state-dir', `${c.stateDir}/dp`, ...dpArgs]);
      await waitFor(() => got.length > before, 30_000, 'callback delivered by the restarted DP');
      const v = JSON.parse(got[got.length - 1]!) as View;
      assert.deepEqual([v.id, v.status], [id, 'succeeded']);
    } finally {
      server.close();
    }
  });
});

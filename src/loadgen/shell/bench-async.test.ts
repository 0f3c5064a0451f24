/**
 * Goal: `bench async` sends async submits at the asked rate, counts only 202s with an id,
 * and measures completion through the callback URL it names. Method: a fake data plane that
 * answers 202 {"id"} (or 429 for every fourth request) and POSTs the result to the callback.
 */
import { strict as assert } from 'node:assert';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runAsyncBench } from './bench-async.js';

describe('bench async against a fake data plane', () => {
  const seen: IncomingHttpHeaders[] = [];
  let n = 0;
  let warm = 0;
  const fake = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.headers.host === 'strict') {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end('{"error":{"code":"invalid_callback_url","message":"X-Callback-Url: loopback and private addresses are refused"}}');
        return;
      }
      if (/\/cb\/(preflight|w\d+)$/.test(String(req.headers['x-callback-url']))) {
        if (String(req.headers['x-callback-url']).includes('/cb/w')) warm += 1;
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'pre' }));
        return;
      }
      seen.push(req.headers);
      n++;
      if (n % 4 === 0) {
        res.writeHead(429, { 'content-type': 'application/json' });
        res.end('{"error":{"code":"async_queue_full","message":"full"}}');
        return;
      }
      res.writeHead(202, { 'content-type': 'application/json', location: `/v1/invocations/i${n}` });
      res.end(JSON.stringify({ id: `i${n}` }));
      const callback = req.headers['x-callback-url'] as string;
      setTimeout(() => void fetch(callback, { method: 'POST', body: JSON.stringify({ id: `i${n}`, status: 'succeeded', result: { statusCode: 200 } }) }), 5);
    });
  });
  let url: string;
  let stateDir: string;
  before(async () => {
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
    stateDir = await mkdtemp(join(tmpdir(), 'bench-async-'));
  });
  after(async () => {
    fake.closeAllConnections();
    await new Promise<void>((resolve) => fake.close(() => resolve()));
    await rm(stateDir, { recursive: true, force: true });
  });

  it('reports accepts, refusals and completions', async () => {
    const s = await runAsyncBench({
      proxyUrl: url, stateDir, functionName: 'hello', rateRps: 40, durationS: 0.5, warmupS: 0.25, connections: 4, timeoutMs: 5_000, drainS: 5, bodyBytes: 8,
    });
    assert.equal(warm, 10, 'the warm-up sent at the same rate, with callbacks the bench does not count');
    assert.equal(s.warmupS, 0.25);
    assert.equal(s.sent, 20);
    assert.equal(s.accepted, 15);
    assert.deepEqual(s.errors, { 429: 5 });
    assert.equal(s.completed, 15);
    assert.equal(s.notCompleted, 0);
    assert.ok(s.acceptedRps <= 40 && s.acceptedRps > 0, `accepted rate ${s.acceptedRps}`);
    assert.equal(seen[0]!.host, 'hello');
    assert.equal(seen[0]!.prefer, 'respond-async');
    assert.match(String(seen[0]!['x-callback-url']), /^http:\/\/127\.0\.0\.1:\d+\/cb\/\d+$/);
    assert.equal(s.cpuMsPerInvocation, null, 'no cluster.json: cluster CPU unknown');
  });

  it('a data plane that refuses its callbacks stops the bench before the run, naming the flag', async () => {
    const before = seen.length;
    await assert.rejects(runAsyncBench({
      proxyUrl: url, stateDir, functionName: 'strict', rateRps: 40, durationS: 0.5, warmupS: 0, connections: 4, timeoutMs: 5_000, drainS: 5, bodyBytes: 8,
    }), /--async-callback-allow-private/);
    assert.equal(seen.length, before, 'nothing was sent after the failed preflight');
  });
});

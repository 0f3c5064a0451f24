/**
 * Goal (issue #11 parts 2 and 4): on a real cluster, (a) the reference's async mode answers 200
 * with an id on the proxy port and the results port gives 204 until done, then 200 with the
 * function's body; (b) `dirigent fn invoke --async` prints an id that `dirigent invocation get
 * --wait` follows to succeeded, and `invocation list` shows it. Method: real CP, DP and worker
 * processes; the CLI runs in-process.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { captureIo } from '../cli/fake-http.js';
import { runCli } from '../cli/program.js';
import { fixture, freePort, TestCluster, waitFor } from './harness.js';

const one = { min: 1, max: 1 };

describe('async compatibility mode on a real cluster', { timeout: 120_000 }, () => {
  let resultsPort = 0;
  let c: TestCluster;
  before(async () => {
    resultsPort = await freePort();
    c = new TestCluster({ workers: 1, dpArgs: ['--async-mode', 'all', '--async-results-port', String(resultsPort), '--auth', 'none'] });
    await c.start();
  });
  after(() => c.stop());

  it('proxy port: 200 with the id; results port: 204 while pending, then 200 with the body', async () => {
    assert.equal((await c.deploy({ name: 'compat', command: ['node', fixture('sleep-server.js')], scaling: one })).status, 201);
    const submit = await c.invoke('compat', { body: 'abc', headers: { 'x-sleep-ms': '500' } });
    assert.equal(submit.status, 200, submit.text);
    const id = submit.text.trim();
    assert.match(id, /^[0-9a-z-]+$/);
    const results = `http://127.0.0.1:${resultsPort}/`;
    const first = await c.send('POST', results, id);
    assert.ok(first.status === 204 || first.status === 200, `first read ${first.status}`);
    let last = first;
    await waitFor(async () => {
      last = await c.send('POST', results, id);
      return last.status === 200;
    }, 60_000, 'result ready');
    assert.equal((JSON.parse(last.text) as { bytes: number }).bytes, 3);
  });
});

describe('fn invoke --async and dirigent invocation on a real cluster', { timeout: 120_000 }, () => {
  const c = new TestCluster({ workers: 1 });
  before(() => c.start());
  after(() => c.stop());

  it('submits, waits for the result and lists it', async () => {
    assert.equal((await c.deploy({ name: 'later', command: ['node', fixture('sleep-server.js')], scaling: one })).status, 201);
    const env = { DIRIGENT_PROXY: c.proxy, DIRIGENT_API: c.api, DIRIGENT_TOKEN: c.adminToken() };
    const submit = captureIo({ env });
    assert.equal(await runCli(['fn', 'invoke', 'later', '--data', 'abcd', '--async'], submit), 0, submit.err());
    const id = submit.out().trim();
    const get = captureIo({ env });
    assert.equal(await runCli(['invocation', 'get', id, '--wait', '--json'], get), 0, get.err());
    const inv = JSON.parse(get.out()) as { status: string; result: { statusCode: number; body: string } };
    assert.equal(inv.status, 'succeeded');
    assert.equal(inv.result.statusCode, 200);
    assert.equal((JSON.parse(inv.result.body) as { bytes: number }).bytes, 4);
    const list = captureIo({ env });
    assert.equal(await runCli(['invocation', 'list', '--function', 'later', '--json'], list), 0, list.err());
    assert.ok((JSON.parse(list.out()) as { items: { id: string }[] }).items.some((i) => i.id === id));
  });
});

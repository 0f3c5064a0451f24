/**
 * Goal: every component's /metrics (the CP's API port, the DP's internal port, a worker's health
 * port) serves only the metrics named with `?name=`, which is how the bench polls the event-loop
 * delay without making each process collect everything; a malformed name is a 400 naming the
 * field; without a name the whole registry is served.
 * Method: a real cluster on loopback (one emulated worker).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loopDelayQuery, parseLoopDelayMetrics } from '../loadgen/core/loop-delay.js';
import { TestCluster } from './harness.js';

const windows = 'dirigent_event_loop_windows_total';

describe('/metrics?name= on every component', { timeout: 60_000 }, () => {
  const c = new TestCluster({ workers: 1, runtime: 'emulated' });
  const urls = (): Record<string, string> => ({
    controlPlane: `${c.api}/metrics`,
    dataPlane: `http://127.0.0.1:${c.internalPort}/metrics`,
    worker: `http://127.0.0.1:${c.workerPorts.get('worker-1')}/metrics`,
  });
  before(() => c.start());
  after(() => c.stop());

  it('serves only the named metrics, and everything without a name', async () => {
    for (const [kind, url] of Object.entries(urls())) {
      const some = await c.get(`${url}?name=${windows}&name=no_such_metric`);
      assert.equal(some.status, 200, `${kind}: ${some.text}`);
      const names = new Set(some.text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(/[ {]/)[0]));
      assert.deepEqual([...names], [windows], `${kind}: ${some.text}`);
      const all = await c.get(url);
      assert.equal(all.status, 200);
      assert.match(all.text, new RegExp(`^${windows} \\d`, 'm'), kind);
      assert.match(all.text, /nodejs_heap_size_used_bytes/, `${kind}: the default metrics too`);
      assert.match(all.text, /process_cpu_user_seconds_total/, kind);
      assert.match(all.text, /^# TYPE dirigent_[a-z]+_nodejs_gc_duration_seconds histogram$/m, kind);
      // One event-loop monitor per process (ours, every 2 ms): prom-client's own would be a
      // second timer waking the process every 10 ms for the same figure.
      assert.doesNotMatch(all.text, /nodejs_eventloop_lag/, `${kind}: no second loop monitor`);
    }
  });

  it("answers the bench's loop-delay poll with all it reads, GC time included, and nothing else", async () => {
    for (const [kind, url] of Object.entries(urls())) {
      const r = await c.get(url + loopDelayQuery);
      assert.equal(r.status, 200, `${kind}: ${r.text}`);
      const parsed = parseLoopDelayMetrics(r.text);
      assert.ok(parsed !== null && parsed.gcMs !== undefined, `${kind}: ${r.text}`);
      assert.doesNotMatch(r.text, /heap_size|process_cpu|lean_http/, kind);
    }
  });

  it('answers a malformed name with a 400 naming the field', async () => {
    for (const [kind, url] of Object.entries(urls())) {
      const bad = await c.get(`${url}?name=9lives`);
      assert.equal(bad.status, 400, `${kind}: ${bad.text}`);
      const body = JSON.parse(bad.text) as { error: { code: string; field?: string } };
      assert.equal(body.error.field, 'name', kind);
      assert.equal(body.error.code, 'invalid_field', kind);
    }
  });
});

/**
 * Goal: issue #3's outside view of the autoscaler. With the emulated runtime, a function with
 * stable window 6 s and panic window 2 s held at 8 concurrent 500 ms requests shows 8 ready
 * sandboxes (at least 8, at most 10) within 4 s, and 0 within 12 s after the load stops.
 * Method: a real cluster on loopback; 8 closed-loop clients; the status is polled every 100 ms.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Pool } from 'undici';
import { sleep, TestCluster } from './harness.js';

describe('autoscaling seen from outside (emulated runtime)', { timeout: 60_000 }, () => {
  const c = new TestCluster({ workers: 1, runtime: 'emulated', cpArgs: ['--monitor-period-ms', '100'] });
  before(async () => {
    await c.start();
  });
  after(async () => {
    await c.stop();
  });

  it('reaches 8 ready within 4 s under 8 concurrent 500 ms requests, and 0 within 12 s after', async () => {
    const r = await c.deploy({ name: 'held', image: 'emulated', scaling: { stableWindowS: 6, panicWindowS: 2 } });
    assert.equal(r.status, 201, r.text);
    const pool = new Pool(c.proxy, { connections: 8 });
    let running = true;
    let failures = 0;
    let answered = 0;
    const loop = async (): Promise<void> => {
      while (running) {
        const res = await pool.request({ method: 'GET', path: '/', headers: { host: 'held', 'x-emulated-duration-ms': '500' } });
        await res.body.text();
        if (res.statusCode !== 200) failures += 1;
        else answered += 1;
      }
    };
    const startedMs = Date.now();
    const clients = Array.from({ length: 8 }, loop);
    let reachedAtMs = -1;
    let peak = 0;
    while (Date.now() - startedMs < 6_000) {
      const s = await c.status('held');
      peak = Math.max(peak, s.ready);
      if (reachedAtMs < 0 && s.ready >= 8) reachedAtMs = Date.now() - startedMs;
      await sleep(100);
    }
    running = false;
    await Promise.all(clients);
    const stoppedMs = Date.now();
    assert.equal(failures, 0);
    // Every answer came from the emulated responder's lean HTTP/1.1 path; none went to Node's.
    const workerMetrics = (await c.get(`http://127.0.0.1:${c.workerPorts.get('worker-1')}/metrics`)).text;
    const lean = /dirigent_worker_responder_lean_http\{what="requests"\} (\d+)/.exec(workerMetrics);
    assert.equal(Number(lean?.[1]), answered, workerMetrics.split('\n').filter((l) => l.includes('lean')).join('\n'));
    assert.doesNotMatch(workerMetrics, /dirigent_worker_responder_lean_http\{what="hand_off/);
    assert.ok(reachedAtMs >= 0 && reachedAtMs <= 4_000, `8 ready after ${reachedAtMs} ms`);
    assert.ok(peak <= 10, `peak ${peak} ready sandboxes`);
    let zeroAtMs = -1;
    while (Date.now() - stoppedMs < 14_000) {
      const s = await c.status('held');
      if (s.ready + s.creating + s.draining === 0) {
        zeroAtMs = Date.now() - stoppedMs;
        break;
      }
      await sleep(100);
    }
    await pool.close();
    assert.ok(zeroAtMs >= 0 && zeroAtMs <= 12_000, `0 sandboxes ${zeroAtMs} ms after the load stopped`);
    // The decisions are counted on /metrics: one from zero up (at least), and down to zero.
    const metrics = (await c.get(`${c.api}/metrics`)).text;
    const count = (direction: string): number => Number(new RegExp(`dirigent_scale_decisions_total\\{direction="${direction}"\\} (\\d+)`).exec(metrics)?.[1] ?? -1);
    assert.equal(count('from_zero'), 1, metrics.slice(0, 200));
    assert.equal(count('to_zero'), 1);
    assert.ok(count('up') >= 1 && count('down') >= 1);
  });
});

/**
 * Goal: `bench async` counts only 202s with an id as accepts, computes the achieved accept rate
 * over the real window, and measures accept and completion latency from the send time.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { acceptRateRps, AsyncBenchRecorder, cpuMsPerInvocation, formatAsyncBench } from './async-bench.js';

const cpu = { controlPlane: 0.1, dataPlane: 2, workers: 0.5, loadgen: 1 };

describe('async bench arithmetic', () => {
  it('accept rate: accepted over the longer of the schedule and the real window', () => {
    assert.equal(acceptRateRps(1000, 0, 1000, 1), 1000);
    assert.equal(acceptRateRps(1000, 0, 2000, 1), 500);
    assert.equal(acceptRateRps(10, 0, 100, 1), 10);
    assert.equal(acceptRateRps(0, 0, 100, 1), 0);
  });

  it('errors never count as accepts; completion latency runs from the send', () => {
    const r = new AsyncBenchRecorder();
    for (let i = 0; i < 4; i++) r.onSend(i, i * 10);
    r.onAnswer(0, 202, '', true, 2);
    r.onAnswer(1, 429, '', false, 13);
    r.onAnswer(2, 0, 'ECONNRESET', false, 25);
    r.onAnswer(3, 202, '', false, 31);
    r.onCompleted(0, 200, 50);
    r.onCompleted(0, 200, 60); // a retried callback
    r.onCompleted(1, 200, 70); // never accepted
    const s = r.summarize(100, 0.04, cpu, '');
    assert.equal(s.sent, 4);
    assert.equal(s.accepted, 1);
    assert.deepEqual(s.errors, { 429: 1, ECONNRESET: 1, no_id: 1 });
    assert.equal(s.acceptLatencyMs.p50, 2);
    assert.equal(s.completed, 1);
    assert.ok(Math.abs(s.completionLatencyMs.p50 - 50) < 0.1, 'HDR keeps 3 significant digits');
    assert.equal(s.notCompleted, 0);
    assert.equal(s.acceptedRps, 25);
    assert.ok(r.allCompleted());
    assert.match(formatAsyncBench(s), /accepted: 1 \(25\/s durable\), errors: 429: 1, ECONNRESET: 1, no_id: 1/);
  });

  it('counts invocations still pending and non-2xx results', () => {
    const r = new AsyncBenchRecorder();
    r.onSend(0, 0);
    r.onSend(1, 1);
    r.onAnswer(0, 202, '', true, 1);
    r.onAnswer(1, 202, '', true, 2);
    r.onCompleted(1, 500, 9);
    assert.equal(r.allCompleted(), false);
    const s = r.summarize(2, 1, cpu, '');
    assert.equal(s.notCompleted, 1);
    assert.equal(s.completedFailed, 1);
  });

  it('CPU per invocation is DP plus workers over accepts', () => {
    assert.equal(cpuMsPerInvocation(cpu, 1000), 2.5);
    assert.equal(cpuMsPerInvocation({ ...cpu, dataPlane: null }, 1000), null);
    assert.equal(cpuMsPerInvocation(cpu, 0), null);
  });
});

/**
 * Goal: summaries report exact percentiles in ms from µs histograms, and the achieved-rate
 * formula matches its worked example.
 * Method: record small known sets (HDR with 3 digits is exact below 2048 µs) and compare.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  completionRateRps,
  errorBodyMessage,
  errorMessageCharsMax,
  histogramCdfMs,
  newHistogram,
  recordMs,
  summarizeMs,
  tally,
  tallyToObject,
} from './stats.js';

test('percentiles of 1..100 ms-thousandths are exact', () => {
  const h = newHistogram();
  for (let us = 1; us <= 1000; us++) recordMs(h, us / 1000);
  assert.deepEqual(summarizeMs(h), { p50: 0.5, p90: 0.9, p99: 0.99, max: 1 });
});

test('an empty histogram summarises to zeros; negatives clamp to 0', () => {
  assert.deepEqual(summarizeMs(newHistogram()), { p50: 0, p90: 0, p99: 0, max: 0 });
  const h = newHistogram();
  recordMs(h, -3);
  assert.equal(h.totalCount, 1);
  assert.equal(summarizeMs(h).max, 0);
});

test('large values keep 3 significant digits', () => {
  const h = newHistogram();
  recordMs(h, 43.21);
  recordMs(h, 1200);
  const s = summarizeMs(h);
  assert.ok(Math.abs(s.p50 - 43.21) / 43.21 < 1e-3);
  assert.ok(Math.abs(s.max - 1200) / 1200 < 1e-3);
});

test('CDF points rise to 1 and follow the recorded values', () => {
  const h = newHistogram();
  for (let i = 1; i <= 100; i++) recordMs(h, i);
  const cdf = histogramCdfMs(h);
  assert.equal(cdf[cdf.length - 1].y, 1);
  assert.ok(Math.abs(cdf[cdf.length - 1].x - 100) < 0.1);
  for (let i = 1; i < cdf.length; i++) assert.ok(cdf[i].x >= cdf[i - 1].x);
});

test('completion rate: worked example and fallbacks', () => {
  assert.equal(completionRateRps(101, 43, 1043, 1), 100);
  assert.equal(completionRateRps(1, 43, 43, 2), 0.5);
  assert.equal(completionRateRps(0, Infinity, -Infinity, 0), 0);
});

test('tally sorts keys', () => {
  const m = new Map<string, number>();
  for (const k of ['503', 'ECONNRESET', '503', '404']) tally(m, k);
  assert.deepEqual(Object.entries(tallyToObject(m)), [['404', 1], ['503', 2], ['ECONNRESET', 1]]);
});

test('an error body\'s message: Dirigent\'s JSON error, other JSON shapes, plain text, cut to one short line', () => {
  assert.equal(errorBodyMessage('{"error":{"code":"unschedulable","message":"unschedulable: 0/1 workers available"}}'),
    'unschedulable: 0/1 workers available');
  assert.equal(errorBodyMessage('{"error":"no such function"}'), 'no such function');
  assert.equal(errorBodyMessage('{"message":"rate limited"}'), 'rate limited');
  assert.equal(errorBodyMessage('{"error":{"code":"x"}}'), '{"error":{"code":"x"}}', 'no message: the JSON itself');
  assert.equal(errorBodyMessage('  upstream\n  timed out\n'), 'upstream timed out');
  assert.equal(errorBodyMessage(''), '');
  assert.equal(errorBodyMessage('null'), 'null');
  const long = errorBodyMessage('x'.repeat(5000));
  assert.equal(long.length, errorMessageCharsMax);
  assert.ok(long.endsWith('…'));
});

/**
 * Goal: the per-invocation CSV has the documented columns in order and empty cells for
 * unknown values.
 * Method: format two hand rows.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { traceCsvHeader, traceCsvLine } from './format.js';
import type { InvocationRow } from './trace-metrics.js';

test('CSV header and rows', () => {
  assert.equal(traceCsvHeader, 'function,invocationId,phase,startUnixUs,responseTimeUs,' +
    'requestedDurationUs,measuredDurationUs,coldStart,queueMs,status,error');
  const base: InvocationRow = { functionName: 'trace-func-3-abc', invocationId: 'min2.inv5',
    phase: 2, minute: 2, startUnixUs: 1_700_000_000_123_456.25, responseTimeUs: 45_123.6,
    requestedDurationUs: 10_000, measuredDurationUs: 10_050, coldStart: true, queueMs: 41.5,
    status: 200, error: '' };
  assert.equal(traceCsvLine(base),
    'trace-func-3-abc,min2.inv5,2,1700000000123456,45124,10000,10050,true,41.5,200,');
  const failed = { ...base, measuredDurationUs: NaN, coldStart: null, queueMs: NaN, status: 0,
    error: 'UND_ERR_SOCKET, "x"' };
  assert.equal(traceCsvLine(failed),
    'trace-func-3-abc,min2.inv5,2,1700000000123456,45124,10000,,,,0,"UND_ERR_SOCKET, ""x"""');
});

/**
 * Goal: the parser reads the shipped InVitro samples exactly (function and invocation counts
 * from traces/README.md) and reports malformed input as values naming file and line.
 * Method: parse the real CSVs from the shared traces directory ($DIRIGENT_TRACES_DIR, default
 * shared/traces beside the repository; skipped with a reason when absent, failing in CI) and
 * small hand-written tables.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { readSample, samplesSkip as skip } from '../testing/sample-traces.js';
import { parseTrace, type TraceFiles, type TraceFunction } from './trace-csv.js';

function parseOk(files: TraceFiles, minutes: number): TraceFunction[] {
  const r = parseTrace(files, minutes);
  assert.equal(r.kind, 'ok', JSON.stringify(r));
  return r.kind === 'ok' ? r.functions : [];
}

const total = (fs: TraceFunction[]) =>
  fs.reduce((a, f) => a + f.invocationsPerMinute.reduce((x, y) => x + y, 0), 0);

test('dirigent-samples_100: 100 functions, 19,058 invocations in 30 min, 28 idle', { skip }, () => {
  const fs = parseOk(readSample('dirigent-samples_100'), 30);
  assert.equal(fs.length, 100);
  assert.equal(total(fs), 19_058);
  assert.equal(fs.filter((f) => f.invocationsPerMinute.every((n) => n === 0)).length, 28);
  assert.ok(fs.every((f) => f.invocationsPerMinute.length === 30));
  assert.deepEqual(fs.map((f) => f.rowIndex), [...Array(100).keys()]);
});

test('invitro-example: 4 functions, 525 invocations in 30 min', { skip }, () => {
  const fs = parseOk(readSample('invitro-example'), 30);
  assert.equal(fs.length, 4);
  assert.equal(total(fs), 525);
  // The first function averages 100 ms (README); its percentiles come from durations.csv.
  const first = fs.find((f) => f.hashFunction.startsWith('c13acdc7'));
  assert.equal(first?.durationAverageMs, 100);
  assert.deepEqual(first?.runtimeMs, { p0: 99, p1: 99, p25: 99, p50: 100, p75: 101, p99: 101,
    p100: 101 });
  assert.equal(first?.memoryMiB.p100, 152);
});

test('columns are found by name whatever their order (memory.csv differs per sample)', () => {
  const files: TraceFiles = {
    invocations: 'HashOwner,HashApp,HashFunction,Trigger,7,8,9\no,a,f1,http,1,2,3\n',
    durations: 'HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,' +
      'percentile_Average_0,percentile_Average_1,percentile_Average_25,percentile_Average_50,' +
      'percentile_Average_75,percentile_Average_99,percentile_Average_100\n' +
      'o,a,f1,5,1,1,9,1,2,3,4,5,6,7\n',
    memory: 'HashFunction,HashOwner,HashApp,SampleCount,AverageAllocatedMb,' +
      'AverageAllocatedMb_pct1,AverageAllocatedMb_pct5,AverageAllocatedMb_pct25,' +
      'AverageAllocatedMb_pct50,AverageAllocatedMb_pct75,AverageAllocatedMb_pct95,' +
      'AverageAllocatedMb_pct99,AverageAllocatedMb_pct100\r\nf1,o,a,1,5,1,2,3,4,5,6,7,8.5\r\n',
  };
  const [f] = parseOk(files, 2);
  assert.deepEqual(f.invocationsPerMinute, [1, 2]);
  assert.equal(f.trigger, 'http');
  assert.deepEqual(f.runtimeMs, { p0: 1, p1: 2, p25: 3, p50: 4, p75: 5, p99: 6, p100: 7 });
  assert.equal(f.memoryMiB.p100, 8.5);
  assert.deepEqual(parseOk(files, 0)[0].invocationsPerMinute, [1], 'at least one minute');
});

test('malformed input is a value naming the file and line', () => {
  const good = readSampleOrSynthetic();
  assert.deepEqual(parseTrace(good, 5000), { kind: 'error', file: 'invocations', line: 2,
    message: 'has 3 minute columns, 1440 requested' }, 'minutes are clamped to 1440');
  const badCount = { ...good, invocations: good.invocations.replace(/,1,2,3/, ',1,x,3') };
  assert.deepEqual(parseTrace(badCount, 3), { kind: 'error', file: 'invocations', line: 2,
    message: 'minute column 1: not a count: x' });
  const tooFew = parseTrace(good, 4);
  assert.equal(tooFew.kind, 'error');
  const orphan = { ...good, memory: good.memory.split('\n')[0] };
  const r = parseTrace(orphan, 3);
  assert.equal(r.kind === 'error' && r.file, 'memory');
  const noHash = { ...good, invocations: good.invocations.replace('HashFunction', 'Fn') };
  assert.equal(parseTrace(noHash, 3).kind, 'error');
});

function readSampleOrSynthetic(): TraceFiles {
  return {
    invocations: 'HashOwner,HashApp,HashFunction,Trigger,0,1,2\no,a,f1,http,1,2,3\n',
    durations: 'HashFunction,Average,percentile_Average_0,percentile_Average_1,' +
      'percentile_Average_25,percentile_Average_50,percentile_Average_75,percentile_Average_99,' +
      'percentile_Average_100\nf1,5,1,2,3,4,5,6,7\n',
    memory: 'HashFunction,AverageAllocatedMb_pct1,AverageAllocatedMb_pct5,' +
      'AverageAllocatedMb_pct25,AverageAllocatedMb_pct50,AverageAllocatedMb_pct75,' +
      'AverageAllocatedMb_pct95,AverageAllocatedMb_pct99,AverageAllocatedMb_pct100\n' +
      'f1,1,2,3,4,5,6,7,8\n',
  };
}

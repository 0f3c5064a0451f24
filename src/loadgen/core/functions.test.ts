/**
 * Goal: bench function names are valid and unique per run; registration bodies carry the
 * scaling bounds each bench needs; commands split into argv without a shell.
 * Method: direct checks on small inputs.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  benchFunctionName,
  coldFunctionBody,
  runPrefix,
  splitArgv,
  traceFunctionBody,
  traceFunctionName,
  warmFunctionBody,
} from './functions.js';

test('names: DNS labels from a run prefix', () => {
  const prefix = runPrefix('cold', 1_700_000_000_123_456);
  assert.match(prefix, /^cold-[0-9a-z]{6}$/);
  assert.notEqual(prefix, runPrefix('cold', 1_700_000_000_123_457));
  assert.equal(benchFunctionName(prefix, 12), `${prefix}-12`);
  assert.throws(() => benchFunctionName('Bad_Prefix', 1), RangeError);
  assert.throws(() => benchFunctionName('x'.repeat(62), 1), RangeError);
  assert.equal(traceFunctionName('k9x2a1', 7), 'trace-func-7-k9x2a1');
});

test('bodies: cold is 0..1 with the sweep preset; warm is kept at min 1', () => {
  const cold = coldFunctionBody('c-1', { kind: 'emulated' });
  assert.deepEqual(cold.scaling, { min: 0, max: 1 });
  assert.equal(cold.scalingPreset, 'coldStartSweep');
  assert.equal(cold.image, 'emulated');
  const command = { kind: 'command' as const, argv: ['node', 's.js'], workingDir: '/x' };
  const warm = warmFunctionBody('w-1', command, { concurrency: 0, maxScale: 1 });
  assert.deepEqual(warm.scaling, { min: 1, max: 1 });
  assert.equal(warm.concurrency, 0);
  assert.deepEqual(warm.command, ['node', 's.js']);
  assert.equal(warm.image, undefined);
  const trace = traceFunctionBody('t', { kind: 'emulated' }, { cpuMillis: 100, memoryMiB: 15 });
  assert.deepEqual(trace.resources, { cpuMillis: 100, memoryMiB: 15 });
  assert.equal(trace.concurrency, 1);
  assert.equal(trace.scaling, undefined, 'the cluster default');
  const kept = traceFunctionBody('t', { kind: 'emulated' }, { cpuMillis: 100, memoryMiB: 15 }, { keepAliveWindowS: 1200, scaleDownDelayS: 60 });
  assert.deepEqual(kept.scaling, { keepAliveWindowS: 1200, scaleDownDelayS: 60 });
});

test('splitArgv: whitespace, quotes, escapes, errors', () => {
  assert.deepEqual(splitArgv('node examples/trace-function/server.js'),
    ['node', 'examples/trace-function/server.js']);
  assert.deepEqual(splitArgv(`  sh -c 'echo a  b' "x \\"y\\"" ''`),
    ['sh', '-c', 'echo a  b', 'x "y"', '']);
  assert.deepEqual(splitArgv('"unterminated'), { error: 'unterminated " quote' });
  assert.deepEqual(splitArgv('   '), { error: 'empty command' });
});

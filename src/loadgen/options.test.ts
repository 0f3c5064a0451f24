/**
 * Goal: option parsers refuse what they cannot mean and name the option and the value.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidArgumentError } from 'commander';
import { numberIn, scalingJsonOption } from './options.js';

test('--scaling takes a JSON object and nothing else', () => {
  assert.deepEqual(scalingJsonOption('{"scaleDownDelayS":60,"keepAliveWindowS":1200}'), { scaleDownDelayS: 60, keepAliveWindowS: 1200 });
  for (const bad of ['[1]', 'null', '5', '"x"', '{', '']) {
    assert.throws(() => scalingJsonOption(bad), (err: Error) => err instanceof InvalidArgumentError && err.message.startsWith('--scaling: '), bad);
  }
});

test('numberIn names the option, the value and the range', () => {
  const parse = numberIn('--rate', 1, 10, true);
  assert.equal(parse('7'), 7);
  assert.throws(() => parse('7.5'), /--rate: "7.5" is not an integer in \[1, 10\]/);
  assert.throws(() => parse(''), /--rate: "" is not an integer/);
});

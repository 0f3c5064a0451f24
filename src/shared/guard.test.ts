/**
 * Goal: callbacks the event loop runs never end the process silently: a failure is logged with
 * the event's name and swallowed, except a broken invariant of our own, which is rethrown.
 * Method: call guarded functions directly with an in-memory logger.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AssertionError } from './assert.js';
import { memoryLogger, type RecordedLog } from './logger.js';
import { guarded, runGuardedAs } from './guard.js';

test('a failing timer is logged as dp.timer_failed naming it, and does not throw', () => {
  const logs: RecordedLog[] = [];
  const tick = guarded(memoryLogger(logs), 'timer', 'expiry', () => { throw new TypeError('boom'); });
  assert.doesNotThrow(() => tick());
  assert.equal(logs[0]!.event, 'dp.timer_failed');
  assert.equal(logs[0]!.fields.timer, 'expiry');
  assert.equal(logs[0]!.fields.error, 'boom');
});

test('a broken invariant is logged and rethrown', () => {
  const logs: RecordedLog[] = [];
  const cb = guarded(memoryLogger(logs), 'callback', 'proxy.release', (n: number) => { throw new AssertionError(`level ${n}`); });
  assert.throws(() => cb(-1), AssertionError);
  assert.deepEqual([logs[0]!.event, logs[0]!.fields.event], ['dp.callback_failed', 'proxy.release']);
});

test('another component names its failures with its own prefix', () => {
  const logs: RecordedLog[] = [];
  assert.doesNotThrow(() => runGuardedAs('worker', memoryLogger(logs), 'callback', 'responder.request', () => { throw new RangeError('bad'); }));
  assert.deepEqual([logs[0]!.event, logs[0]!.fields.event, logs[0]!.fields.error], ['worker.callback_failed', 'responder.request', 'bad']);
});

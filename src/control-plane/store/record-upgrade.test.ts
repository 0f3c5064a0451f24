/**
 * Goal: a function record written before a field existed loads with that field's default, and
 * a current record loads as it was stored (the same object).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FunctionRecord } from '../../api/types.js';
import { record } from '../core/testkit.js';
import { upgradeFunctionRecord } from './record-upgrade.js';

test('a record from before egress, auth and the keep-alive window gets their defaults', () => {
  const now = record('f', 'u1');
  const { egress: _e, auth: _a, ...oldSpec } = now.spec;
  const { keepAliveWindowS: _k, ...oldScaling } = now.spec.scaling;
  const old = { ...now, spec: { ...oldSpec, scaling: oldScaling } } as unknown as FunctionRecord;
  const up = upgradeFunctionRecord(old);
  assert.equal(up.spec.egress, false);
  assert.equal(up.spec.auth, 'none');
  assert.equal(up.spec.scaling.keepAliveWindowS, 0);
  assert.deepEqual(up.spec.scaling, { ...oldScaling, keepAliveWindowS: 0 });
});

test('a record missing only the keep-alive window is upgraded too', () => {
  const now = record('f', 'u1');
  const { keepAliveWindowS: _k, ...oldScaling } = now.spec.scaling;
  const up = upgradeFunctionRecord({ ...now, spec: { ...now.spec, scaling: oldScaling } } as unknown as FunctionRecord);
  assert.equal(up.spec.scaling.keepAliveWindowS, 0);
});

test('a current record is returned as stored', () => {
  const now = record('f', 'u1', { scaling: { ...record('f', 'u1').spec.scaling, keepAliveWindowS: 600 } });
  assert.equal(upgradeFunctionRecord(now), now);
});

/**
 * Goal: the Dirigent-compatible registration form accepts exactly what InVitro and the
 * reference clients send, maps it to the right FunctionSpec, and names the form field in every
 * error. Method: build form bodies with URLSearchParams, as Go's url.Values.Encode would.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRegistrationForm } from './form.js';
import type { Validation } from './validate.js';
import type { FunctionSpec, ScalingSpec } from './types.js';
import { functionLimits } from '../config/defaults.js';

const dirigentScaling: ScalingSpec = {
  min: 0, max: 10_000, initial: 0, targetUtilization: 1, stableWindowS: 60, panicWindowS: 6,
  panicThreshold: 2, maxScaleUpRate: 1000, maxScaleDownRate: 2, scaleToZeroGraceS: 0,
  scaleDownDelayS: 0, tickS: 2, keepAliveWindowS: 0,
};
const sweepScaling: ScalingSpec = { ...dirigentScaling, max: 1, stableWindowS: 6, panicWindowS: 2 };

/** What InVitro's deployDirigent posts, in its field order. */
function invitroForm(overrides: [string, string][] = [], drop: string[] = []): string {
  const fields: [string, string][] = [
    ['name', 'trace-func-0-123'],
    ['image', 'docker.io/cvetkovic/dirigent_trace_function:latest'],
    ['port_forwarding', '80'],
    ['port_forwarding', 'tcp'],
    ['scaling_upper_bound', '200'],
    ['scaling_lower_bound', '0'],
    ['requested_cpu', '100'],
    ['requested_memory', '15'],
    ['cold_start_sweep', 'false'],
  ];
  const kept = fields.filter(([key]) => !drop.includes(key) &&
    !overrides.some(([k]) => k === key));
  return new URLSearchParams([...kept, ...overrides]).toString();
}

function expectSpec(result: Validation<FunctionSpec>): FunctionSpec {
  assert.ok(result.ok, result.ok ? '' : JSON.stringify(result.error));
  return result.value;
}

function expectError(result: Validation<FunctionSpec>, code: string, field: string): string {
  assert.equal(result.ok, false, `expected an error on ${field}`);
  if (result.ok) throw new Error('unreachable');
  assert.equal(result.error.code, code, result.error.message);
  assert.equal(result.error.field, field, result.error.message);
  return result.error.message;
}

describe('parseRegistrationForm: good forms', () => {
  test("InVitro's registration becomes the exact spec", () => {
    assert.deepEqual(expectSpec(parseRegistrationForm(invitroForm())), {
      name: 'trace-func-0-123',
      image: 'docker.io/cvetkovic/dirigent_trace_function:latest',
      command: [],
      workingDir: '',
      port: 80,
      env: {},
      egress: false,
      auth: 'none',
      resources: { cpuMillis: 100, memoryMiB: 15 },
      concurrency: 1,
      timeoutMs: 900_000,
      scaling: { ...dirigentScaling, max: 200 },
    });
  });

  test('only name, image and port_forwarding: resources default to our minimums', () => {
    const form = 'name=f&image=img&port_forwarding=8080&port_forwarding=udp';
    const spec = expectSpec(parseRegistrationForm(form));
    assert.deepEqual(spec.resources, { cpuMillis: 10, memoryMiB: 8 });
    assert.equal(spec.port, 8080);
    assert.deepEqual(spec.scaling, dirigentScaling);
  });

  test('cold_start_sweep=true selects the sweep preset, then the bounds override it', () => {
    const sweep = expectSpec(parseRegistrationForm(invitroForm(
      [['cold_start_sweep', 'true']], ['scaling_upper_bound', 'scaling_lower_bound'])));
    assert.deepEqual(sweep.scaling, sweepScaling);
    const bounded = expectSpec(parseRegistrationForm(invitroForm([
      ['cold_start_sweep', 'true'], ['scaling_upper_bound', '1024'],
      ['scaling_lower_bound', '1'],
    ])));
    assert.deepEqual(bounded.scaling, { ...sweepScaling, max: 1024, min: 1 });
  });

  test("Go's bool spellings are accepted", () => {
    for (const text of ['1', 't', 'TRUE', 'True']) {
      const spec = expectSpec(parseRegistrationForm(invitroForm(
        [['cold_start_sweep', text]], ['scaling_upper_bound'])));
      assert.equal(spec.scaling.stableWindowS, 6, text);
    }
    const off = expectSpec(parseRegistrationForm(invitroForm([['cold_start_sweep', 'F']])));
    assert.equal(off.scaling.stableWindowS, 60);
  });

});

describe('parseRegistrationForm: good forms, compatibility details', () => {
  test('0 cpu or memory from a small trace function counts as our minimum', () => {
    const spec = expectSpec(parseRegistrationForm(invitroForm(
      [['requested_cpu', '0'], ['requested_memory', '0']])));
    assert.deepEqual(spec.resources, { cpuMillis: 10, memoryMiB: 8 });
  });

  test('fields InVitro or newer clients send are accepted and ignored', () => {
    const spec = expectSpec(parseRegistrationForm(invitroForm([
      ['requested_gpu', '0'], ['program_args', '--x'], ['prepull_mode', 'none'],
      ['iteration_multiplier', '102'], ['cold_start_busy_loop_ms', '300'],
    ])));
    assert.equal(spec.name, 'trace-func-0-123');
  });

  test('env_vars map into env, repeated or comma-separated', () => {
    const spec = expectSpec(parseRegistrationForm(invitroForm(
      [['env_vars', 'A=1,B=x=y,'], ['env_vars', 'C=']])));
    assert.deepEqual(spec.env, { A: '1', B: 'x=y', C: '' });
    const empty = expectSpec(parseRegistrationForm(invitroForm([['env_vars', '']])));
    assert.deepEqual(empty.env, {});
  });

  test('percent-encoding and "+" decode as in Go', () => {
    const spec = expectSpec(parseRegistrationForm(
      'name=f&image=reg%3A5000%2Fimg&port_forwarding=80&port_forwarding=TCP&env_vars=A%3Db+c'));
    assert.equal(spec.image, 'reg:5000/img');
    assert.deepEqual(spec.env, { A: 'b c' });
  });
});

describe('parseRegistrationForm: errors name the form field', () => {
  const cases: [string, [string, string][], string[], string, string][] = [
    ['missing name', [], ['name'], 'missing_field', 'name'],
    ['empty name', [['name', '']], [], 'missing_field', 'name'],
    ['bad name', [['name', 'Trace_Func']], [], 'invalid_field', 'name'],
    ['missing image', [], ['image'], 'missing_field', 'image'],
    ['bad image', [['image', 'a b']], [], 'invalid_field', 'image'],
    ['missing port_forwarding', [], ['port_forwarding'], 'missing_field', 'port_forwarding'],
    ['port only', [['port_forwarding', '80']], [], 'invalid_field', 'port_forwarding'],
    ['bad port', [['port_forwarding', '0'], ['port_forwarding', 'tcp']], [],
      'invalid_field', 'port_forwarding'],
    ['bad protocol', [['port_forwarding', '80'], ['port_forwarding', 'sctp']], [],
      'invalid_field', 'port_forwarding'],
    ['protocol first', [['port_forwarding', 'tcp'], ['port_forwarding', '80']], [],
      'invalid_field', 'port_forwarding'],
    ['negative cpu', [['requested_cpu', '-1']], [], 'invalid_field', 'requested_cpu'],
    ['fractional cpu', [['requested_cpu', '1.5']], [], 'invalid_field', 'requested_cpu'],
    ['huge cpu', [['requested_cpu', String(functionLimits.cpuMillis[1] + 1)]], [],
      'invalid_field', 'requested_cpu'],
    ['text memory', [['requested_memory', 'lots']], [], 'invalid_field', 'requested_memory'],
    ['bad sweep flag', [['cold_start_sweep', 'yes']], [], 'invalid_field', 'cold_start_sweep'],
    ['zero upper bound', [['scaling_upper_bound', '0']], [],
      'invalid_field', 'scaling_upper_bound'],
    ['MaxInt32 upper bound', [['scaling_upper_bound', '2147483647']], [],
      'invalid_field', 'scaling_upper_bound'],
    ['negative lower bound', [['scaling_lower_bound', '-1']], [],
      'invalid_field', 'scaling_lower_bound'],
    ['lower above upper', [['scaling_lower_bound', '5'], ['scaling_upper_bound', '4']], [],
      'invalid_field', 'scaling_lower_bound'],
    ['env entry without =', [['env_vars', 'A=1,B']], [], 'invalid_field', 'env_vars'],
    ['env bad name', [['env_vars', '1A=1']], [], 'invalid_field', 'env_vars'],
    ['env PORT', [['env_vars', 'PORT=80']], [], 'invalid_field', 'env_vars'],
    ['unknown field', [['memory', '1']], [], 'unknown_field', 'memory'],
    ['name twice', [['name', 'other']], [], 'invalid_field', 'name'],
  ];
  for (const [what, overrides, drop, code, field] of cases) {
    test(what, () => {
      // "name twice" needs a second name rather than a replaced one.
      const form = what === 'name twice'
        ? `${invitroForm()}&name=other`
        : invitroForm(overrides, drop);
      expectError(parseRegistrationForm(form), code, field);
    });
  }

  test('a lower bound above the sweep preset says where the upper bound came from', () => {
    const message = expectError(parseRegistrationForm(invitroForm(
      [['cold_start_sweep', 'true'], ['scaling_lower_bound', '2']], ['scaling_upper_bound'])),
    'invalid_field', 'scaling_lower_bound');
    assert.equal(message,
      'scaling_lower_bound must be <= scaling_upper_bound (1, from the coldStartSweep preset), ' +
        'got 2');
  });

  test('unknown fields are reported first, even before a missing name', () => {
    expectError(parseRegistrationForm('bogus=1'), 'unknown_field', 'bogus');
  });

  test('an empty body misses the name', () => {
    expectError(parseRegistrationForm(''), 'missing_field', 'name');
  });
});

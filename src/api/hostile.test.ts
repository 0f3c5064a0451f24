/**
 * Goal: every management API body validator (JSON create, JSON PATCH, form registration) takes
 * whatever a client sends without throwing and answers either a spec or an error with a known
 * code, a dotted field path and a message; an accepted spec is itself a valid create body (so what
 * we store, we accept again). Method: fast-check over arbitrary values, over objects whose keys
 * are the real field names with arbitrary values, and over arbitrary form strings.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { validateFunctionCreate, validateFunctionPatch, type Validation } from './validate.js';
import { parseRegistrationForm } from './form.js';
import { ErrorCode, type FunctionSpec } from './types.js';

const codes = new Set<string>(Object.values(ErrorCode));

function checkOutcome(v: Validation<FunctionSpec>): void {
  if (v.ok) {
    // What we accept and store must pass the create rules again unchanged.
    // (The unused one of image/command is left out, as a client would.)
    const { image, command, ...rest } = JSON.parse(JSON.stringify(v.value)) as FunctionSpec;
    const again = validateFunctionCreate(image !== '' ? { ...rest, image } : { ...rest, command });
    assert.ok(again.ok, JSON.stringify(again));
    assert.deepEqual(JSON.stringify(again.value), JSON.stringify(v.value)); // -0 and 0 alike
    return;
  }
  assert.ok(codes.has(v.error.code), `unknown code ${v.error.code}`);
  assert.equal(typeof v.error.field, 'string');
  assert.ok(v.error.message.length > 0);
}

/** Values of any JSON shape a client could send, plus the odd numbers JSON.parse never yields. */
const anyValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 2 ** 53, -1, 1e308, '', '__proto__', null),
);
const scalingKeys = ['min', 'max', 'initial', 'targetUtilization', 'stableWindowS', 'panicWindowS', 'panicThreshold',
  'maxScaleUpRate', 'maxScaleDownRate', 'scaleToZeroGraceS', 'scaleDownDelayS', 'tickS', 'keepAliveWindowS', 'bogus'];
const topKeys = ['name', 'image', 'command', 'workingDir', 'port', 'env', 'egress', 'resources', 'concurrency',
  'timeoutMs', 'scalingPreset', 'scaling', 'extra', '__proto__', 'constructor'];
const nearValid = fc.record({
  name: fc.oneof(fc.constantFrom('hello', 'a-b-1', 'X', ''), fc.string({ maxLength: 70 }), anyValue),
  command: fc.oneof(fc.constant(['node', 'server.js']), fc.array(fc.oneof(fc.string(), anyValue), { maxLength: 4 }), anyValue),
  image: fc.oneof(fc.constantFrom('', 'nginx:1.27', 'a/b@sha256:00'), fc.string(), anyValue),
  port: fc.oneof(fc.integer({ min: -10, max: 70_000 }), anyValue),
  env: fc.oneof(fc.dictionary(fc.string({ maxLength: 10 }), fc.oneof(fc.string({ maxLength: 10 }), anyValue), { maxKeys: 3 }), anyValue),
  egress: fc.oneof(fc.boolean(), anyValue),
  resources: fc.oneof(fc.record({ cpuMillis: anyValue, memoryMiB: anyValue }, { requiredKeys: [] }), anyValue),
  concurrency: fc.oneof(fc.integer({ min: -1, max: 2000 }), anyValue),
  timeoutMs: fc.oneof(fc.integer({ min: -1, max: 10_000_000 }), anyValue),
  scalingPreset: fc.oneof(fc.constantFrom('dirigent', 'sweep', 'knative', 'nope'), anyValue),
  scaling: fc.oneof(fc.dictionary(fc.constantFrom(...scalingKeys), fc.oneof(fc.double(), fc.integer(), anyValue), { maxKeys: 5 }), anyValue),
  workingDir: fc.oneof(fc.constantFrom('', '/tmp', 'rel'), anyValue),
}, { requiredKeys: [] });
const anyBody = fc.oneof(
  anyValue,
  fc.anything({ maxDepth: 3 }),
  nearValid,
  fc.dictionary(fc.constantFrom(...topKeys), anyValue, { maxKeys: 6 }),
);

const existing: FunctionSpec = (() => {
  const v = validateFunctionCreate({ name: 'hello', command: ['node', 'server.js'] });
  assert.ok(v.ok);
  return v.value;
})();

function noThrow<T>(f: () => T, input: unknown): T {
  try {
    return f();
  } catch (e) {
    assert.fail(`threw ${String(e)} on ${JSON.stringify(input, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x))}`);
  }
}

describe('management API bodies against hostile input', () => {
  test('create: any body yields a spec that validates again, or a named error', () => {
    fc.assert(fc.property(anyBody, (b) => checkOutcome(noThrow(() => validateFunctionCreate(b), b))), { numRuns: 3000 });
  });

  test('PATCH: any body on a stored function yields a spec that validates again, or a named error', () => {
    fc.assert(fc.property(anyBody, (b) => {
      const v = noThrow(() => validateFunctionPatch(existing, b), b);
      checkOutcome(v);
      if (v.ok) assert.equal(v.value.name, existing.name);
    }), { numRuns: 3000 });
  });

  const formKeys = ['name', 'image', 'port_forwarding', 'requested_cpu', 'requested_memory', 'scaling_upper_bound',
    'scaling_lower_bound', 'cold_start_sweep', 'env_vars', 'command', 'working_dir', 'bogus'];
  const formValue = fc.oneof(fc.string({ maxLength: 30 }), fc.integer().map(String), fc.constantFrom('80:tcp', '8080', '-1', 'NaN', '1e9', ''));
  const formBody = fc.oneof(
    fc.string({ maxLength: 300 }),
    fc.array(fc.tuple(fc.constantFrom(...formKeys), formValue), { maxLength: 8 }).map((pairs) => new URLSearchParams(pairs).toString()),
  );

  test('form registration: any body yields a spec that validates again, or a named error', () => {
    fc.assert(fc.property(formBody, (s) => checkOutcome(noThrow(() => parseRegistrationForm(s), s))), { numRuns: 3000 });
  });
});

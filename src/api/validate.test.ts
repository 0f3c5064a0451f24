/**
 * Goal: pin every rule of the management API's body validation: the exact spec (defaults
 * filled) for good bodies, and for bad ones the error code, the dotted field path and, where a
 * user reads it, the message. Method: table-driven calls to the pure validators.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  validateFunctionCreate,
  validateFunctionPatch,
  type Validation,
} from './validate.js';
import type { FunctionSpec, ScalingSpec } from './types.js';
import { scalingLimits, scalingPresets, functionLimits } from '../config/defaults.js';

const defaultScaling: ScalingSpec = {
  min: 0, max: 10_000, initial: 0, targetUtilization: 1, stableWindowS: 60, panicWindowS: 6,
  panicThreshold: 2, maxScaleUpRate: 1000, maxScaleDownRate: 2, scaleToZeroGraceS: 0,
  scaleDownDelayS: 0, tickS: 2, keepAliveWindowS: 0,
};

const helloSpec: FunctionSpec = {
  name: 'hello',
  image: '',
  command: ['node', 'server.js'],
  workingDir: '',
  port: 8080,
  env: {},
  egress: false,
  auth: 'none',
  resources: { cpuMillis: 100, memoryMiB: 128 },
  concurrency: 1,
  timeoutMs: 900_000,
  scaling: defaultScaling,
};

function expectError<T>(result: Validation<T>, code: string, field: string): string {
  assert.equal(result.ok, false, `expected an error on ${field}, got ${JSON.stringify(result)}`);
  if (result.ok) throw new Error('unreachable');
  assert.equal(result.error.code, code, result.error.message);
  assert.equal(result.error.field, field, result.error.message);
  return result.error.message;
}

function expectSpec(result: Validation<FunctionSpec>): FunctionSpec {
  assert.ok(result.ok, result.ok ? '' : JSON.stringify(result.error));
  return result.value;
}

/** A valid command-based body plus `extra`. */
function body(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'hello', command: ['node', 'server.js'], ...extra };
}

describe('validateFunctionCreate: good bodies', () => {
  test('a minimal command body gets every default', () => {
    assert.deepEqual(expectSpec(validateFunctionCreate(body())), helloSpec);
  });

  test('a full image body is kept field for field', () => {
    const spec = expectSpec(validateFunctionCreate({
      name: 'img-1',
      image: 'docker.io/cvetkovic/dirigent_empty_function:latest',
      workingDir: '/srv',
      port: 80,
      env: { A: '1', _b: '' },
      egress: true,
      auth: 'token',
      resources: { cpuMillis: 250, memoryMiB: 256 },
      concurrency: 0,
      timeoutMs: 5000,
      scaling: { min: 1, max: 10, initial: 2, targetUtilization: 0.7, tickS: 0.5 },
    }));
    assert.deepEqual(spec, {
      name: 'img-1',
      image: 'docker.io/cvetkovic/dirigent_empty_function:latest',
      command: [],
      workingDir: '/srv',
      port: 80,
      env: { A: '1', _b: '' },
      egress: true,
      auth: 'token',
      resources: { cpuMillis: 250, memoryMiB: 256 },
      concurrency: 0,
      timeoutMs: 5000,
      scaling: {
        ...defaultScaling, min: 1, max: 10, initial: 2, targetUtilization: 0.7, tickS: 0.5,
      },
    });
  });

  test('partial resources keep the other default', () => {
    const spec = expectSpec(validateFunctionCreate(body({ resources: { memoryMiB: 512 } })));
    assert.deepEqual(spec.resources, { cpuMillis: 100, memoryMiB: 512 });
  });

  test('presets fill scaling, then scaling overlays them', () => {
    const knative = expectSpec(validateFunctionCreate(body({ scalingPreset: 'knative' })));
    assert.deepEqual(knative.scaling, { ...scalingPresets.knative });
    assert.deepEqual(knative.scaling,
      { ...defaultScaling, targetUtilization: 0.7, scaleToZeroGraceS: 30, initial: 1 });
    const sweep = expectSpec(validateFunctionCreate(
      body({ scalingPreset: 'coldStartSweep', scaling: { max: 3 } })));
    assert.deepEqual(sweep.scaling,
      { ...defaultScaling, max: 3, stableWindowS: 6, panicWindowS: 2 });
    const dirigent = expectSpec(validateFunctionCreate(body({ scalingPreset: 'dirigent' })));
    assert.deepEqual(dirigent.scaling, defaultScaling);
  });

});

describe('validateFunctionCreate: good bodies, edge cases', () => {
  test('edge values of the ranges are legal', () => {
    const name = `a${'b'.repeat(functionLimits.nameLengthMax - 1)}`;
    const spec = expectSpec(validateFunctionCreate(body({
      name, port: 65_535, concurrency: 100_000, timeoutMs: 1, workingDir: '',
      scaling: { panicWindowS: 60, stableWindowS: 60, min: 5, max: 5, initial: 5 },
    })));
    assert.equal(spec.name, name);
    assert.equal(spec.port, 65_535);
  });

  test('the keep-alive window: off by default, up to four hours', () => {
    assert.equal(expectSpec(validateFunctionCreate(body({}))).scaling.keepAliveWindowS, 0);
    assert.equal(expectSpec(validateFunctionCreate(body({ scaling: { keepAliveWindowS: 14_400 } }))).scaling.keepAliveWindowS, 14_400);
  });

  test('an env key "__proto__" is an own key, not a prototype change', () => {
    const input = JSON.parse('{"name":"a","command":["x"],"env":{"__proto__":"v"}}');
    const spec = expectSpec(validateFunctionCreate(input));
    assert.equal(Object.getPrototypeOf(spec.env), Object.prototype);
    assert.deepEqual(Object.keys(spec.env), ['__proto__']);
  });

  test('the returned spec shares nothing with the input', () => {
    const input = body({ env: { A: '1' }, resources: { cpuMillis: 50 } });
    const spec = expectSpec(validateFunctionCreate(input));
    (input.command as string[]).push('mutated');
    (input.env as Record<string, string>).A = 'mutated';
    assert.deepEqual(spec.command, ['node', 'server.js']);
    assert.deepEqual(spec.env, { A: '1' });
  });
});

describe('validateFunctionCreate: body shape and unknown fields', () => {
  for (const bad of [null, [], 'x', 5, undefined]) {
    test(`body ${JSON.stringify(bad)} is invalid_json`, () => {
      expectError(validateFunctionCreate(bad), 'invalid_json', '');
    });
  }

  test('unknown top-level field, reported before a missing name, with a suggestion', () => {
    const message = expectError(validateFunctionCreate({ nmae: 'x' }), 'unknown_field', 'nmae');
    assert.match(message, /did you mean name\?/);
  });

  test('unknown scaling knob names the dotted path', () => {
    const message = expectError(validateFunctionCreate(body({ scaling: { stableWindow: 6 } })),
      'unknown_field', 'scaling.stableWindow');
    assert.match(message, /did you mean scaling\.stableWindowS\?/);
  });

  test('unknown resource field with no near name lists the known ones', () => {
    const message = expectError(validateFunctionCreate(body({ resources: { cpu: 1 } })),
      'unknown_field', 'resources.cpu');
    assert.equal(message, 'unknown field resources.cpu (known: cpuMillis, memoryMiB)');
  });

  test('inherited names are not taken as given fields', () => {
    const input = Object.create({ image: 'inherited' }) as Record<string, unknown>;
    input.name = 'a';
    expectError(validateFunctionCreate(input), 'missing_field', 'command');
  });
});

describe('validateFunctionCreate: name', () => {
  test('missing name', () => {
    expectError(validateFunctionCreate({ command: ['x'] }), 'missing_field', 'name');
  });
  const tooLong = `a${'b'.repeat(functionLimits.nameLengthMax)}`;
  for (const name of ['Hello', '1abc', 'abc-', '-abc', 'a_b', 'a.b', '', tooLong, 5, null]) {
    test(`name ${JSON.stringify(name).slice(0, 20)} is invalid`, () => {
      const message = expectError(validateFunctionCreate(body({ name })), 'invalid_field', 'name');
      assert.match(message, /^name must be a DNS label/);
    });
  }
});

describe('validateFunctionCreate: egress', () => {
  test('egress must be a boolean', () => {
    expectError(validateFunctionCreate(body({ egress: 'yes' })), 'invalid_field', 'egress');
  });
  test('egress is off unless asked for', () => {
    assert.equal(expectSpec(validateFunctionCreate(body())).egress, false);
  });
});

describe('validateFunctionCreate: async settings', () => {
  test('absent means the DP defaults: no async key in the spec', () => {
    assert.equal(Object.hasOwn(expectSpec(validateFunctionCreate(body())), 'async'), false);
  });
  test('each key is kept as given; an empty object is no settings', () => {
    const s = expectSpec(validateFunctionCreate(body({ async: { retryOn4xx: true, attemptsMax: 5, eventAgeMsMax: 60_000 } })));
    assert.deepEqual(s.async, { retryOn4xx: true, attemptsMax: 5, eventAgeMsMax: 60_000 });
    assert.deepEqual(expectSpec(validateFunctionCreate(body({ async: { attemptsMax: 1 } }))).async, { attemptsMax: 1 });
    assert.equal(expectSpec(validateFunctionCreate(body({ async: {} }))).async, undefined);
  });
  test('bad values name the field, the range and the named limit', () => {
    expectError(validateFunctionCreate(body({ async: 3 })), 'invalid_field', 'async');
    expectError(validateFunctionCreate(body({ async: { retry: true } })), 'unknown_field', 'async.retry');
    expectError(validateFunctionCreate(body({ async: { retryOn4xx: 'yes' } })), 'invalid_field', 'async.retryOn4xx');
    const [lo, hi] = functionLimits.asyncAttemptsMax;
    for (const bad of [lo - 1, hi + 1, 2.5, '3']) {
      const msg = expectError(validateFunctionCreate(body({ async: { attemptsMax: bad } })), 'invalid_field', 'async.attemptsMax');
      assert.match(msg, new RegExp(`\\[${lo}, ${hi}\\] \\(limit asyncAttemptsMax\\)`));
    }
    const [ageLo, ageHi] = functionLimits.asyncEventAgeMsMax;
    for (const bad of [ageLo - 1, ageHi + 1]) {
      const msg = expectError(validateFunctionCreate(body({ async: { eventAgeMsMax: bad } })), 'invalid_field', 'async.eventAgeMsMax');
      assert.match(msg, /limit asyncEventAgeMsMax/);
    }
  });
  test('a patch merges keys, null clears a key, async: null clears all', () => {
    const stored = expectSpec(validateFunctionCreate(body({ async: { retryOn4xx: true, attemptsMax: 5 } })));
    assert.deepEqual(expectSpec(validateFunctionPatch(stored, { async: { eventAgeMsMax: 120_000 } })).async,
      { retryOn4xx: true, attemptsMax: 5, eventAgeMsMax: 120_000 });
    assert.deepEqual(expectSpec(validateFunctionPatch(stored, { async: { attemptsMax: null } })).async, { retryOn4xx: true });
    assert.equal(expectSpec(validateFunctionPatch(stored, { async: null })).async, undefined);
    assert.deepEqual(expectSpec(validateFunctionPatch(stored, { concurrency: 2 })).async, { retryOn4xx: true, attemptsMax: 5 });
    expectError(validateFunctionPatch(stored, { async: { attemptsMax: 0 } }), 'invalid_field', 'async.attemptsMax');
  });
});

describe('validateFunctionCreate: image and command', () => {
  test('neither image nor command', () => {
    expectError(validateFunctionCreate({ name: 'a' }), 'missing_field', 'command');
  });
  test('both image and command', () => {
    expectError(validateFunctionCreate(body({ image: 'x' })), 'invalid_field', 'image');
  });
  for (const image of ['', 'a b', 5, 'docker://x', 'oci-archive:rel.tar', 'UPPER/x', 'x'.repeat(functionLimits.imageLengthMax + 1)]) {
    test(`image ${JSON.stringify(image).slice(0, 20)} is invalid`, () => {
      expectError(validateFunctionCreate({ name: 'a', image }), 'invalid_field', 'image');
    });
  }
  const cases: [unknown, string][] = [
    [[], 'command'],
    ['node server.js', 'command'],
    [Array(functionLimits.commandArgsMax + 1).fill('x'), 'command'],
    [['node', 5], 'command[1]'],
    [[''], 'command[0]'],
    [['node', 'a', 'b\0c'], 'command[2]'],
    [['node', 'x'.repeat(functionLimits.commandArgLengthMax + 1)], 'command[1]'],
  ];
  for (const [command, field] of cases) {
    test(`command ${JSON.stringify(command).slice(0, 30)} fails on ${field}`, () => {
      expectError(validateFunctionCreate({ name: 'a', command }), 'invalid_field', field);
    });
  }
  test('empty arguments after the program are legal', () => {
    const spec = expectSpec(validateFunctionCreate({ name: 'a', command: ['node', '-e', ''] }));
    assert.deepEqual(spec.command, ['node', '-e', '']);
  });
});

describe('validateFunctionCreate: scalar fields', () => {
  const cases: [string, unknown, string][] = [
    ['workingDir', 'relative/dir', 'workingDir'],
    ['workingDir', 5, 'workingDir'],
    ['port', 0, 'port'],
    ['port', 65_536, 'port'],
    ['port', 80.5, 'port'],
    ['port', '80', 'port'],
    ['concurrency', -1, 'concurrency'],
    ['concurrency', 100_001, 'concurrency'],
    ['concurrency', 1.5, 'concurrency'],
    ['timeoutMs', 0, 'timeoutMs'],
    ['timeoutMs', 3_600_001, 'timeoutMs'],
    ['scalingPreset', 'fast', 'scalingPreset'],
    ['scalingPreset', 'toString', 'scalingPreset'],
    ['resources', 5, 'resources'],
    ['resources', { cpuMillis: 0 }, 'resources.cpuMillis'],
    ['resources', { memoryMiB: 1.5 }, 'resources.memoryMiB'],
    ['resources', { memoryMiB: functionLimits.memoryMiB[1] + 1 }, 'resources.memoryMiB'],
    ['scaling', [], 'scaling'],
    ['scaling', { keepAliveWindowS: -1 }, 'scaling.keepAliveWindowS'],
    ['scaling', { keepAliveWindowS: 14_401 }, 'scaling.keepAliveWindowS'],
    ['scaling', { keepAliveWindowS: '600' }, 'scaling.keepAliveWindowS'],
  ];
  for (const [key, value, field] of cases) {
    test(`${key} = ${JSON.stringify(value)} fails on ${field}`, () => {
      expectError(validateFunctionCreate(body({ [key]: value })), 'invalid_field', field);
    });
  }

  test('messages name the field, the legal range and the value', () => {
    const message = expectError(validateFunctionCreate(body({ port: 70_000 })),
      'invalid_field', 'port');
    assert.equal(message, 'port must be an integer in [1, 65535], got 70000');
  });
});

describe('validateFunctionCreate: env', () => {
  const cases: [unknown, string][] = [
    [['A=1'], 'env'],
    ['A=1', 'env'],
    [{ '1X': 'v' }, 'env.1X'],
    [{ 'A-B': 'v' }, 'env.A-B'],
    [{ A: 1 }, 'env.A'],
    [{ A: 'x'.repeat(functionLimits.envValueLengthMax + 1) }, 'env.A'],
    [{ A: 'a\0b' }, 'env.A'],
    [Object.fromEntries(
      Array.from({ length: functionLimits.envEntriesMax + 1 }, (_, i) => [`K${i}`, 'v'])), 'env'],
  ];
  for (const [env, field] of cases) {
    test(`env ${JSON.stringify(env).slice(0, 30)} fails on ${field}`, () => {
      expectError(validateFunctionCreate(body({ env })), 'invalid_field', field);
    });
  }
  test('PORT is reserved', () => {
    const message = expectError(validateFunctionCreate(body({ env: { PORT: '80' } })),
      'invalid_field', 'env.PORT');
    assert.match(message, /reserved/);
  });
});

describe('validateFunctionCreate: scaling knobs', () => {
  const integerKnobs = new Set(['min', 'max', 'initial']);
  for (const [key, [low, high]] of Object.entries(scalingLimits)) {
    const kind = integerKnobs.has(key) ? 'an integer' : 'a number';
    test(`scaling.${key} outside [${low}, ${high}] and non-numbers`, () => {
      const field = `scaling.${key}`;
      for (const value of [low - 0.01 * Math.max(1, low), high + 1, '1', null]) {
        const message = expectError(
          validateFunctionCreate(body({ scaling: { [key]: value } })), 'invalid_field', field);
        const named = integerKnobs.has(key) ? ' (limit sandboxesPerFunctionMax)' : '';
        assert.equal(message,
          `${field} must be ${kind} in [${low}, ${high}]${named}, got ${JSON.stringify(value)}`);
      }
      for (const value of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, true, [1], { n: 1 }]) {
        expectError(validateFunctionCreate(body({ scaling: { [key]: value } })), 'invalid_field', field);
      }
    });
  }

  test('the example message of the brief', () => {
    const message = expectError(validateFunctionCreate(body({ scaling: { stableWindowS: 0 } })),
      'invalid_field', 'scaling.stableWindowS');
    assert.equal(message, 'scaling.stableWindowS must be a number in [1, 3600], got 0');
  });

  test('counts must be integers, windows may be fractional', () => {
    expectError(validateFunctionCreate(body({ scaling: { max: 2.5 } })),
      'invalid_field', 'scaling.max');
    const spec = expectSpec(validateFunctionCreate(body({ scaling: { stableWindowS: 7.5 } })));
    assert.equal(spec.scaling.stableWindowS, 7.5);
  });
});

describe('validateFunctionCreate: cross-field rules', () => {
  test('min <= max', () => {
    const message = expectError(validateFunctionCreate(body({ scaling: { min: 5, max: 3 } })),
      'invalid_field', 'scaling.min');
    assert.equal(message, 'scaling.min must be <= scaling.max (3), got 5');
  });
  test('min above a preset max', () => {
    expectError(validateFunctionCreate(
      body({ scalingPreset: 'coldStartSweep', scaling: { min: 2 } })),
    'invalid_field', 'scaling.min');
  });
  test('initial <= max', () => {
    expectError(validateFunctionCreate(body({ scaling: { initial: 4, max: 3 } })),
      'invalid_field', 'scaling.initial');
  });
  test('panicWindowS <= stableWindowS', () => {
    expectError(validateFunctionCreate(body({ scaling: { panicWindowS: 61 } })),
      'invalid_field', 'scaling.panicWindowS');
  });
});

describe('validateFunctionCreate: the first error wins, in a fixed order', () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ bogus: 1, name: 'Bad' }, 'bogus'],
    [{ name: 'Bad', port: 0 }, 'name'],
    [{ name: 'a', command: [], port: 0 }, 'command'],
    [{ name: 'a', command: ['x'], workingDir: 'rel', port: 0 }, 'workingDir'],
    [{ name: 'a', command: ['x'], port: 0, env: { PORT: '1' } }, 'port'],
    [{ name: 'a', command: ['x'], env: { PORT: '1' }, resources: { cpuMillis: 0 } }, 'env.PORT'],
    [{ name: 'a', command: ['x'], resources: { cpuMillis: 0, bogus: 1 } }, 'resources.bogus'],
    [{ name: 'a', command: ['x'], resources: { cpuMillis: 0 }, concurrency: -1 },
      'resources.cpuMillis'],
    [{ name: 'a', command: ['x'], concurrency: -1, timeoutMs: 0 }, 'concurrency'],
    [{ name: 'a', command: ['x'], timeoutMs: 0, scalingPreset: 'x' }, 'timeoutMs'],
    [{ name: 'a', command: ['x'], scalingPreset: 'x', scaling: { min: -1 } }, 'scalingPreset'],
    [{ name: 'a', command: ['x'], scaling: { tickS: 0, min: -1 } }, 'scaling.min'],
    [{ name: 'a', command: ['x'], scaling: { min: 9, max: 3, tickS: 0 } }, 'scaling.tickS'],
    [{ name: 'a', command: ['x'], scaling: { min: 9, max: 3, panicWindowS: 99 } }, 'scaling.min'],
  ];
  for (const [input, field] of cases) {
    test(`${JSON.stringify(input).slice(0, 60)} -> ${field}`, () => {
      const result = validateFunctionCreate(input);
      assert.equal(result.ok, false);
      if (!result.ok) assert.equal(result.error.field, field, result.error.message);
    });
  }
});

const existing: FunctionSpec = {
  ...helloSpec,
  workingDir: '/work',
  env: { A: '1' },
  scaling: { ...defaultScaling, stableWindowS: 30, max: 10 },
};

describe('validateFunctionPatch: merging', () => {
  test('an empty patch keeps the spec', () => {
    assert.deepEqual(expectSpec(validateFunctionPatch(existing, {})), existing);
  });

  test('scalars and env replace, resources and scaling merge', () => {
    const spec = expectSpec(validateFunctionPatch(existing, {
      port: 9000, env: { B: '2' }, resources: { memoryMiB: 256 }, scaling: { max: 5 },
    }));
    assert.deepEqual(spec, {
      ...existing,
      port: 9000,
      env: { B: '2' },
      resources: { cpuMillis: 100, memoryMiB: 256 },
      scaling: { ...existing.scaling, max: 5 },
    });
  });

  test('the same name is accepted, a different one is not', () => {
    expectSpec(validateFunctionPatch(existing, { name: 'hello' }));
    expectError(validateFunctionPatch(existing, { name: 'other' }), 'invalid_field', 'name');
    expectError(validateFunctionPatch(existing, { name: 5 }), 'invalid_field', 'name');
  });

  test('unknown fields and bad bodies', () => {
    expectError(validateFunctionPatch(existing, { scaling: { minScale: 1 } }),
      'unknown_field', 'scaling.minScale');
    expectError(validateFunctionPatch(existing, { nam: 'hello' }), 'unknown_field', 'nam');
    expectError(validateFunctionPatch(existing, null), 'invalid_json', '');
  });

});

describe('validateFunctionPatch: rules on the merged result', () => {
  test('field rules apply to the patch', () => {
    expectError(validateFunctionPatch(existing, { port: 0 }), 'invalid_field', 'port');
    expectError(validateFunctionPatch(existing, { env: { PORT: '1' } }),
      'invalid_field', 'env.PORT');
  });

  test('cross-field rules apply to the merged result', () => {
    expectError(validateFunctionPatch(existing, { scaling: { min: 11 } }),
      'invalid_field', 'scaling.min');
    expectError(validateFunctionPatch(existing, { scaling: { panicWindowS: 31 } }),
      'invalid_field', 'scaling.panicWindowS');
  });

  test('a preset resets scaling before the overlay', () => {
    const spec = expectSpec(validateFunctionPatch(existing,
      { scalingPreset: 'coldStartSweep', scaling: { min: 1 } }));
    assert.deepEqual(spec.scaling, { ...scalingPresets.coldStartSweep, min: 1 });
  });

  test('image replaces command and command replaces image', () => {
    const toImage = expectSpec(validateFunctionPatch(existing, { image: 'r/x:1' }));
    assert.equal(toImage.image, 'r/x:1');
    assert.deepEqual(toImage.command, []);
    const back = expectSpec(validateFunctionPatch(toImage, { command: ['python3', 'a.py'] }));
    assert.equal(back.image, '');
    assert.deepEqual(back.command, ['python3', 'a.py']);
    expectError(validateFunctionPatch(existing, { image: 'x', command: ['y'] }),
      'invalid_field', 'image');
  });

  test('the stored part is re-validated too', () => {
    const stale: FunctionSpec = { ...existing, port: 0 };
    expectError(validateFunctionPatch(stale, { concurrency: 2 }), 'invalid_field', 'port');
  });
});

describe('validateFunctionCreate: sane bounds', () => {
  test('scaling.min of a million is refused, naming the limit', () => {
    const message = expectError(validateFunctionCreate(body({ scaling: { min: 1_000_000 } })), 'invalid_field', 'scaling.min');
    assert.match(message, /sandboxesPerFunctionMax/);
  });
  test('1-milli-CPU sandboxes (2,000 on a 2-core worker) are refused, naming the limit', () => {
    const message = expectError(validateFunctionCreate(body({ resources: { cpuMillis: 1 } })), 'invalid_field', 'resources.cpuMillis');
    assert.match(message, /cpuMillisMin: at most 100 sandboxes per core/);
  });
  test('a 1 MiB sandbox is refused, naming the limit', () => {
    const message = expectError(validateFunctionCreate(body({ resources: { memoryMiB: 1 } })), 'invalid_field', 'resources.memoryMiB');
    assert.match(message, /memoryMiBMin/);
  });
});

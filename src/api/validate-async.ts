/**
 * @module api/validate-async
 * The optional `async` object of a function spec (issue 11): per-function retry on 4xx,
 * attempts and maximum event age, each falling back to the DP's default when unset. Patch
 * semantics as `resources`: keys merge into the stored object; a key given as null clears it
 * (back to the DP default), and `async: null` clears them all. Pure, like api/validate.
 */
import { functionLimits } from '../config/defaults.js';
import { checkBoolean, checkInteger, checkKnownKeys, checkObject, ok, type Body, type Validation } from './fields.js';
import { functionAsyncFields, type FunctionAsyncSpec } from './types.js';

/** The spec's async settings after `input` (a create or patch body) applied to `base`; undefined when none is set. */
export function validateAsyncSettings(input: Body, base: FunctionAsyncSpec | undefined): Validation<FunctionAsyncSpec | undefined> {
  if (!Object.hasOwn(input, 'async')) return ok(base === undefined ? undefined : { ...base });
  if (input.async === null) return ok(undefined);
  const given = checkObject(input.async, 'async');
  if (!given.ok) return given;
  const unknown = checkKnownKeys(given.value, functionAsyncFields, 'async.');
  if (!unknown.ok) return unknown;
  const out: FunctionAsyncSpec = { ...base };
  for (const key of functionAsyncFields) {
    if (!Object.hasOwn(given.value, key)) continue;
    const value = given.value[key];
    if (value === null) {
      delete out[key];
      continue;
    }
    const checked = checkAsyncKey(key, value);
    if (!checked.ok) return checked;
    (out as Record<string, unknown>)[key] = checked.value;
  }
  return ok(Object.keys(out).length === 0 ? undefined : out);
}

function checkAsyncKey(key: (typeof functionAsyncFields)[number], value: unknown): Validation<boolean | number> {
  const field = `async.${key}`;
  switch (key) {
    case 'retryOn4xx': return checkBoolean(value, field);
    case 'attemptsMax': return checkInteger(value, field, functionLimits.asyncAttemptsMax, 'asyncAttemptsMax');
    case 'eventAgeMsMax': return checkInteger(value, field, functionLimits.asyncEventAgeMsMax, 'asyncEventAgeMsMax');
  }
}

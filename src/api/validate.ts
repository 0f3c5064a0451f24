/**
 * @module api/validate
 * Validation of the management API's JSON bodies (`POST /v1/functions`, `PATCH
 * /v1/functions/{name}`) into a fully specified FunctionSpec. Pure: no I/O, no globals.
 *
 * Invariants:
 * - The answer is the FIRST error in one fixed order, so a client fixing errors one at a time
 *   always converges and tests can pin the exact error:
 *     unknown top-level fields -> name -> image/command -> workingDir -> port -> env
 *     -> resources -> concurrency -> timeoutMs -> scalingPreset -> scaling -> async -> cross-field rules.
 *   Inside an object, unknown keys come before its known fields.
 * - Every message names the field, the legal range and the value received.
 * - A returned spec shares no arrays or objects with the input, so callers may keep it.
 *
 * Patch semantics (one rule per field, no JSON-merge-patch subtleties):
 * - Scalars, `env` and `command` replace the stored value wholesale.
 * - `resources` and `scaling` merge key by key into the stored value.
 * - `scalingPreset` resets `scaling` to the preset before the body's `scaling` overlays it.
 * - Giving `image` clears `command` and vice versa, so one field switches the runtime kind.
 *
 * Every string, array and object field is a zod schema and every number a hand check
 * (api/fields); the walk over the fields stays explicit because the API promises the FIRST
 * error in the order above with our own wording, while zod reports every issue in its words.
 * Imports only `api/` and `config/defaults`.
 */
import { ErrorCode, type FunctionSpec, type ScalingSpec } from './types.js';
import { isNamespaceName } from './tenancy.js';
import { validateAsyncSettings } from './validate-async.js';
import {
  functionDefaults,
  functionLimits,
  scalingLimits,
  scalingPresets,
} from '../config/defaults.js';
import {
  checkCommand,
  checkImage,
  checkInteger,
  checkKnownKeys,
  checkName,
  checkNumber,
  checkObject,
  checkPresetName,
  checkWorkingDir,
  checkAuth,
  checkBoolean,
  checkEnv,
  describe,
  fail,
  ok,
  type Body,
  type Validation,
} from './fields.js';

export type { Validation } from './fields.js';

/** Top-level fields of a create body, in the order they are checked. */
const functionCreateFields = [
  'name', 'image', 'command', 'workingDir', 'port', 'env', 'egress', 'auth', 'resources',
  'concurrency', 'timeoutMs', 'scalingPreset', 'scaling', 'async',
] as const;
const resourceFields = ['cpuMillis', 'memoryMiB'] as const;
const scalingFields = Object.keys(scalingLimits) as (keyof ScalingSpec)[];
/** Knobs that count sandboxes; the others are windows, ratios and rates. */
const scalingIntegerFields: ReadonlySet<keyof ScalingSpec> = new Set(['min', 'max', 'initial']);

export function validateFunctionCreate(body: unknown): Validation<FunctionSpec> {
  const input = checkObject(body, '');
  if (!input.ok) return input;
  if (!Object.hasOwn(input.value, 'name')) {
    const unknown = checkKnownKeys(input.value, functionCreateFields, '');
    if (!unknown.ok) return unknown;
    return fail(ErrorCode.missingField, 'name', 'name is required');
  }
  const base: FunctionSpec = {
    name: '',
    image: '',
    command: [],
    workingDir: '',
    port: functionDefaults.port,
    env: {},
    egress: false,
    auth: 'none',
    resources: { cpuMillis: functionDefaults.cpuMillis, memoryMiB: functionDefaults.memoryMiB },
    concurrency: functionDefaults.concurrency,
    timeoutMs: functionDefaults.timeoutMs,
    scaling: { ...scalingPresets.dirigent },
  };
  const spec = validateSpecFields(input.value, base);
  if (!spec.ok) return spec;
  if (spec.value.image === '' && spec.value.command.length === 0) {
    return fail(ErrorCode.missingField, 'command',
      'one of command (argv array, process runtime) or image (oci/containerd) is required');
  }
  return spec;
}

/**
 * The optional `namespace` of a create or patch body (a DNS label), and the body without it for
 * the function validators. The API resolves it against the caller's token: the namespace is
 * part of the function's key, not of its spec.
 */
export function takeNamespace(body: unknown): Validation<{ rest: unknown; namespace: string | undefined }> {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !Object.hasOwn(body, 'namespace')) {
    return ok({ rest: body, namespace: undefined });
  }
  const { namespace, ...rest } = body as Body;
  if (typeof namespace !== 'string' || !isNamespaceName(namespace)) {
    return fail(ErrorCode.invalidField, 'namespace',
      `namespace must be a DNS label (lower-case letters, digits and '-', 1 to 63 characters), got ${describe(namespace)}`);
  }
  return ok({ rest, namespace });
}

export function validateFunctionPatch(
  existing: FunctionSpec,
  body: unknown,
): Validation<FunctionSpec> {
  const input = checkObject(body, '');
  if (!input.ok) return input;
  const unknown = checkKnownKeys(input.value, functionCreateFields, '');
  if (!unknown.ok) return unknown;
  // The name is the key in the URL; a body may repeat it but never rename the function.
  if (Object.hasOwn(input.value, 'name') && input.value.name !== existing.name) {
    return fail(ErrorCode.invalidField, 'name',
      `name cannot change (it is ${quote(existing.name)}), got ${describe(input.value.name)}`);
  }
  const merged = validateSpecFields(input.value, existing);
  if (!merged.ok) return merged;
  // Re-run the create rules on the whole result: the stored part is checked too, so a spec
  // stored under looser limits is reported instead of being carried forward silently.
  return validateFunctionCreate(specToCreateBody(merged.value));
}

/** The create body that yields `spec`: the unused one of image/command is left out. */
function specToCreateBody(spec: FunctionSpec): Body {
  const { image, command, ...rest } = spec;
  return image !== '' ? { ...rest, image } : { ...rest, command: [...command] };
}

/**
 * Checks every field present in `input` and takes the rest from `base`. Shared by create
 * (base = defaults) and patch (base = the stored spec).
 */
function validateSpecFields(input: Body, base: FunctionSpec): Validation<FunctionSpec> {
  const unknown = checkKnownKeys(input, functionCreateFields, '');
  if (!unknown.ok) return unknown;
  const name = pick(input, 'name', base.name, checkName);
  if (!name.ok) return name;
  const runtime = validateRuntime(input, base);
  if (!runtime.ok) return runtime;
  const workingDir = pick(input, 'workingDir', base.workingDir, checkWorkingDir);
  if (!workingDir.ok) return workingDir;
  const port = pick(input, 'port', base.port, (v, f) => checkInteger(v, f, functionLimits.port));
  if (!port.ok) return port;
  const env = pick(input, 'env', base.env, checkEnv);
  if (!env.ok) return env;
  const egress = pick(input, 'egress', base.egress, checkBoolean);
  if (!egress.ok) return egress;
  const auth = pick(input, 'auth', base.auth, checkAuth);
  if (!auth.ok) return auth;
  const resources = validateResources(input, base);
  if (!resources.ok) return resources;
  const concurrency = pick(input, 'concurrency', base.concurrency,
    (v, f) => checkInteger(v, f, functionLimits.concurrency));
  if (!concurrency.ok) return concurrency;
  const timeoutMs = pick(input, 'timeoutMs', base.timeoutMs,
    (v, f) => checkInteger(v, f, functionLimits.timeoutMs));
  if (!timeoutMs.ok) return timeoutMs;
  const scaling = validateScaling(input, base.scaling);
  if (!scaling.ok) return scaling;
  const asyncSettings = validateAsyncSettings(input, base.async);
  if (!asyncSettings.ok) return asyncSettings;
  const spec: FunctionSpec = {
    name: name.value,
    image: runtime.value.image,
    command: [...runtime.value.command],
    workingDir: workingDir.value,
    port: port.value,
    env: { ...env.value },
    egress: egress.value,
    auth: auth.value,
    resources: resources.value,
    concurrency: concurrency.value,
    timeoutMs: timeoutMs.value,
    scaling: scaling.value,
    ...(asyncSettings.value !== undefined ? { async: asyncSettings.value } : {}),
  };
  const cross = checkScalingRelations(spec.scaling);
  return cross.ok ? ok(spec) : cross;
}

function validateRuntime(
  input: Body,
  base: FunctionSpec,
): Validation<{ image: string; command: string[] }> {
  const hasImage = Object.hasOwn(input, 'image');
  const hasCommand = Object.hasOwn(input, 'command');
  if (hasImage && hasCommand) {
    return fail(ErrorCode.invalidField, 'image',
      'give either image (oci/containerd) or command (process runtime), not both');
  }
  if (hasImage) {
    const image = checkImage(input.image, 'image');
    return image.ok ? ok({ image: image.value, command: [] }) : image;
  }
  if (hasCommand) {
    const command = checkCommand(input.command, 'command');
    return command.ok ? ok({ image: '', command: command.value }) : command;
  }
  return ok({ image: base.image, command: base.command });
}

function validateResources(input: Body, base: FunctionSpec): Validation<FunctionSpec['resources']> {
  if (!Object.hasOwn(input, 'resources')) return ok({ ...base.resources });
  const resources = checkObject(input.resources, 'resources');
  if (!resources.ok) return resources;
  const unknown = checkKnownKeys(resources.value, resourceFields, 'resources.');
  if (!unknown.ok) return unknown;
  const cpuMillis = pick(resources.value, 'cpuMillis', base.resources.cpuMillis,
    (v) => checkInteger(v, 'resources.cpuMillis', functionLimits.cpuMillis, cpuLimitName(v)));
  if (!cpuMillis.ok) return cpuMillis;
  const memoryMiB = pick(resources.value, 'memoryMiB', base.resources.memoryMiB,
    (v) => checkInteger(v, 'resources.memoryMiB', functionLimits.memoryMiB,
      typeof v === 'number' && v < functionLimits.memoryMiB[0] ? 'memoryMiBMin' : 'memoryMiBMax'));
  if (!memoryMiB.ok) return memoryMiB;
  return ok({ cpuMillis: cpuMillis.value, memoryMiB: memoryMiB.value });
}

function validateScaling(input: Body, baseScaling: ScalingSpec): Validation<ScalingSpec> {
  let scaling: ScalingSpec = { ...baseScaling };
  if (Object.hasOwn(input, 'scalingPreset')) {
    const preset = checkPresetName(input.scalingPreset, 'scalingPreset');
    if (!preset.ok) return preset;
    scaling = { ...scalingPresets[preset.value] };
  }
  if (!Object.hasOwn(input, 'scaling')) return ok(scaling);
  const overlay = checkObject(input.scaling, 'scaling');
  if (!overlay.ok) return overlay;
  const unknown = checkKnownKeys(overlay.value, scalingFields, 'scaling.');
  if (!unknown.ok) return unknown;
  for (const key of scalingFields) {
    if (!Object.hasOwn(overlay.value, key)) continue;
    const knob = checkScalingKnob(key, overlay.value[key]);
    if (!knob.ok) return knob;
    scaling[key] = knob.value;
  }
  return ok(scaling);
}

/** Which bound a CPU request broke: too small packs too many sandboxes on a core. */
function cpuLimitName(value: unknown): string {
  return typeof value === 'number' && value < functionLimits.cpuMillis[0]
    ? `cpuMillisMin: at most ${1000 / functionLimits.cpuMillis[0]} sandboxes per core`
    : 'cpuMillisMax';
}

/** Checks one scaling knob against its range; `min`, `max` and `initial` must be integers. */
function checkScalingKnob(key: keyof ScalingSpec, value: unknown): Validation<number> {
  const field = `scaling.${key}`;
  return scalingIntegerFields.has(key)
    ? checkInteger(value, field, scalingLimits[key], 'sandboxesPerFunctionMax')
    : checkNumber(value, field, scalingLimits[key]);
}

/** Relations between knobs that each range check alone cannot see. */
function checkScalingRelations(scaling: ScalingSpec): Validation<ScalingSpec> {
  if (scaling.min > scaling.max) {
    return fail(ErrorCode.invalidField, 'scaling.min',
      `scaling.min must be <= scaling.max (${scaling.max}), got ${scaling.min}`);
  }
  if (scaling.initial > scaling.max) {
    return fail(ErrorCode.invalidField, 'scaling.initial',
      `scaling.initial must be <= scaling.max (${scaling.max}), got ${scaling.initial}`);
  }
  if (scaling.panicWindowS > scaling.stableWindowS) {
    return fail(ErrorCode.invalidField, 'scaling.panicWindowS',
      `scaling.panicWindowS must be <= scaling.stableWindowS (${scaling.stableWindowS}), ` +
        `got ${scaling.panicWindowS}`);
  }
  return ok(scaling);
}

function quote(text: string): string {
  return JSON.stringify(text);
}

/** The input's own value for `key` checked, or `fallback` when the key is absent. */
function pick<T>(
  input: Body,
  key: string,
  fallback: T,
  check: (value: unknown, field: string) => Validation<T>,
): Validation<T> {
  return Object.hasOwn(input, key) ? check(input[key], key) : ok(fallback);
}

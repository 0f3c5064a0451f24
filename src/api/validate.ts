/**
 * @module api/validate
 * Validation of the management API's JSON bodies (`POST /v1/functions`, `PATCH
 * /v1/functions/{name}`) into a fully specified FunctionSpec. Pure: no I/O, no globals.
 *
 * Invariants:
 * - The answer is the FIRST error in one fixed order, so a client fixing errors one at a time
 *   always converges and tests can pin the exact error:
 *     unknown top-level fields -> name -> image/command -> workingDir -> port -> env
 *     -> resources -> concurrency -> timeoutMs -> scalingPreset -> scaling -> cross-field rules.
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
 * Every field's type and range is a zod schema (below); the walk over the fields stays explicit
 * because the API promises the FIRST error in the order above with our own wording, while zod
 * reports every issue in its words. Imports only zod, `api/types` and `config/defaults`.
 */
import { z } from 'zod';
import { ErrorCode, type FunctionSpec, type ScalingSpec } from './types.js';
import {
  functionDefaults,
  functionLimits,
  scalingLimits,
  scalingPresets,
  type ScalingPresetName,
} from '../config/defaults.js';

interface ValidationError {
  code: ErrorCode;
  message: string;
  field: string;
}
export type Validation<T> = { ok: true; value: T } | { ok: false; error: ValidationError };

type Range = readonly [number, number];
type Body = Record<string, unknown>;

/** Top-level fields of a create body, in the order they are checked. */
const functionCreateFields = [
  'name', 'image', 'command', 'workingDir', 'port', 'env', 'resources',
  'concurrency', 'timeoutMs', 'scalingPreset', 'scaling',
] as const;
const resourceFields = ['cpuMillis', 'memoryMiB'] as const;
const scalingFields = Object.keys(scalingLimits) as (keyof ScalingSpec)[];
/** Knobs that count sandboxes; the others are windows, ratios and rates. */
const scalingIntegerFields: ReadonlySet<keyof ScalingSpec> = new Set(['min', 'max', 'initial']);

const dnsLabel = /^[a-z]([a-z0-9-]*[a-z0-9])?$/;
const envName = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The runtime sets PORT to the port the sandbox must listen on; a user value would lie. */
const reservedEnvNames: ReadonlySet<string> = new Set(['PORT']);
/** A path is one argv-sized string: reuse the argument bound rather than invent a new one. */
const workingDirLengthMax = functionLimits.commandArgLengthMax;
/** Echoed values are cut so one huge field cannot make a huge error line. */
const messageValueCharsMax = 80;

// ---- the schemas: one per field ---------------------------------------------------------------

const noNul = (s: string): boolean => !s.includes('\0');
const integerIn = (range: Range) => z.number().int().min(range[0]).max(range[1]);
const numberIn = (range: Range) => z.number().finite().min(range[0]).max(range[1]);
const plainObject = z.record(z.unknown());
const nameSchema = z.string().max(functionLimits.nameLengthMax).regex(dnsLabel);
const imageSchema = z.string().min(1).max(functionLimits.imageLengthMax).regex(/^\S+$/);
/** argv[0] names the program, so it cannot be empty; later arguments may be. */
const commandSchema = z.array(z.unknown()).min(1).max(functionLimits.commandArgsMax).pipe(
  z.tuple([z.string().min(1).max(functionLimits.commandArgLengthMax).refine(noNul)])
    .rest(z.string().max(functionLimits.commandArgLengthMax).refine(noNul)));
/** '' is the stored form of "omitted" (the worker's scratch dir), so it round-trips. */
const workingDirSchema = z.string().max(workingDirLengthMax).refine(noNul)
  .refine((s) => s === '' || s.startsWith('/'));
const envSchema = plainObject.refine((env) => Object.keys(env).length <= functionLimits.envEntriesMax);
const envNameSchema = z.string().regex(envName);
const envValueSchema = z.string().max(functionLimits.envValueLengthMax).refine(noNul);
const presetSchema = z.string().refine((s) => Object.hasOwn(scalingPresets, s));

/** `field` passes `schema`, or the error is `message` (our wording, naming field and value). */
function checkWith<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, value: unknown, field: string,
  message: () => string): Validation<T> {
  const parsed = schema.safeParse(value);
  return parsed.success ? ok(parsed.data) : fail(ErrorCode.invalidField, field, message());
}

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
  const spec: FunctionSpec = {
    name: name.value,
    image: runtime.value.image,
    command: [...runtime.value.command],
    workingDir: workingDir.value,
    port: port.value,
    env: { ...env.value },
    resources: resources.value,
    concurrency: concurrency.value,
    timeoutMs: timeoutMs.value,
    scaling: scaling.value,
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
    (v) => checkInteger(v, 'resources.cpuMillis', functionLimits.cpuMillis));
  if (!cpuMillis.ok) return cpuMillis;
  const memoryMiB = pick(resources.value, 'memoryMiB', base.resources.memoryMiB,
    (v) => checkInteger(v, 'resources.memoryMiB', functionLimits.memoryMiB));
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

/** Checks one scaling knob against its range; `min`, `max` and `initial` must be integers. */
function checkScalingKnob(key: keyof ScalingSpec, value: unknown): Validation<number> {
  const field = `scaling.${key}`;
  return scalingIntegerFields.has(key)
    ? checkInteger(value, field, scalingLimits[key])
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

// ---- field checkers, shared with api/form ----------------------------------------------------

export function checkName(value: unknown, field = 'name'): Validation<string> {
  return checkWith(nameSchema, value, field, () =>
    `${field} must be a DNS label (lower-case letters, digits and '-', starting with a letter, ` +
      `ending with a letter or digit, 1 to ${functionLimits.nameLengthMax} characters), ` +
      `got ${describe(value)}`);
}

export function checkImage(value: unknown, field = 'image'): Validation<string> {
  return checkWith(imageSchema, value, field, () =>
    `${field} must be an image reference without whitespace, 1 to ` +
      `${functionLimits.imageLengthMax} characters, got ${describe(value)}`);
}

function checkCommand(value: unknown, field = 'command'): Validation<string[]> {
  const parsed = commandSchema.safeParse(value);
  if (parsed.success) return ok([...parsed.data]);
  const index = parsed.error.issues[0]!.path[0];
  if (typeof index !== 'number' || !Array.isArray(value)) {
    return fail(ErrorCode.invalidField, field,
      `${field} must be an array of 1 to ${functionLimits.commandArgsMax} strings (argv, no shell), ` +
        `got ${describe(value)}`);
  }
  const argField = `${field}[${index}]`;
  const lengthMin = index === 0 ? 1 : 0;
  return fail(ErrorCode.invalidField, argField,
    `${argField} must be a string of ${lengthMin} to ${functionLimits.commandArgLengthMax} ` +
      `characters without NUL, got ${describe(value[index])}`);
}

function checkWorkingDir(value: unknown, field: string): Validation<string> {
  return checkWith(workingDirSchema, value, field, () =>
    `${field} must be an absolute path of at most ${workingDirLengthMax} characters ` +
      `(or omitted), got ${describe(value)}`);
}

export function checkEnv(value: unknown, field = 'env'): Validation<Record<string, string>> {
  const env = checkObject(value, field);
  if (!env.ok) return env;
  const entries = Object.entries(env.value);
  const count = checkWith(envSchema, env.value, field, () =>
    `${field} must have at most ${functionLimits.envEntriesMax} entries, got ${entries.length}`);
  if (!count.ok) return count;
  for (const [key, entry] of entries) {
    const checked = checkEnvEntry(key, entry, `${field}.${key}`);
    if (!checked.ok) return checked;
  }
  // fromEntries defines own properties, so a key like "__proto__" cannot reach the prototype.
  return ok(Object.fromEntries(entries) as Record<string, string>);
}

function checkEnvEntry(key: string, value: unknown, field: string): Validation<string> {
  const name = checkWith(envNameSchema, key, field, () =>
    `${field}: environment variable names must match [A-Za-z_][A-Za-z0-9_]*, got ${describe(key)}`);
  if (!name.ok) return name;
  if (reservedEnvNames.has(key)) {
    return fail(ErrorCode.invalidField, field,
      `${field} is reserved: the runtime sets ${key} to the port the sandbox must listen on`);
  }
  return checkWith(envValueSchema, value, field, () =>
    `${field} must be a string of at most ${functionLimits.envValueLengthMax} characters without NUL, ` +
      `got ${describe(value)}`);
}

function checkPresetName(value: unknown, field: string): Validation<ScalingPresetName> {
  return checkWith(presetSchema, value, field, () =>
    `${field} must be one of ${Object.keys(scalingPresets).join(', ')}, got ${describe(value)}`,
  ) as Validation<ScalingPresetName>;
}

function checkInteger(value: unknown, field: string, range: Range): Validation<number> {
  return checkWith(integerIn(range), value, field, () =>
    `${field} must be an integer in [${range[0]}, ${range[1]}], got ${describe(value)}`);
}

function checkNumber(value: unknown, field: string, range: Range): Validation<number> {
  return checkWith(numberIn(range), value, field, () =>
    `${field} must be a number in [${range[0]}, ${range[1]}], got ${describe(value)}`);
}

/** A plain JSON object; `field` '' means the whole body. */
function checkObject(value: unknown, field: string): Validation<Body> {
  // Checked for shape only: the value itself is kept, so only own keys are read later.
  if (plainObject.safeParse(value).success) return ok(value as Body);
  const what = field === '' ? 'the request body' : field;
  const code = field === '' ? ErrorCode.invalidJson : ErrorCode.invalidField;
  return fail(code, field, `${what} must be a JSON object, got ${describe(value)}`);
}

/** First key of `value` (in its own order) that is not in `known`, as unknown_field. */
function checkKnownKeys(
  value: Body,
  known: readonly string[],
  prefix: string,
): Validation<Body> {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const suggestion = closestName(key, known);
    const hint = suggestion === undefined
      ? ` (known: ${known.join(', ')})`
      : `; did you mean ${prefix}${suggestion}?`;
    return fail(ErrorCode.unknownField, `${prefix}${key}`, `unknown field ${prefix}${key}${hint}`);
  }
  return ok(value);
}

export function fail(code: ErrorCode, field: string, message: string): Validation<never> {
  return { ok: false, error: { code, message, field } };
}

export function ok<T>(value: T): Validation<T> {
  return { ok: true, value };
}

/** A value as shown in messages: JSON, cut to a readable length. */
export function describe(value: unknown): string {
  const text = value === undefined || typeof value === 'number'
    ? String(value) // JSON would show NaN and Infinity as null
    : safeJson(value);
  return text.length <= messageValueCharsMax ? text : `${text.slice(0, messageValueCharsMax)}...`;
}

/** JSON of a value; one nested too deep to print (a stack overflow) is named, not thrown. */
function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return Array.isArray(value) ? '[...]' : typeof value === 'object' ? '{...}' : String(value);
  }
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

/** The known name nearest to `key` (case-insensitive, small edit distance), if any. */
function closestName(key: string, known: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    // Short names get a tighter bound, or "mix" would suggest both "min" and "max".
    const distanceMax = Math.min(2, Math.max(1, Math.floor(name.length / 4)));
    const distance = editDistance(key.toLowerCase(), name.toLowerCase());
    if (distance <= distanceMax && (best === undefined || distance < best.distance)) {
      best = { name, distance };
    }
  }
  return best?.name;
}

/**
 * Edit distance counting a swap of neighbours as one edit (optimal string alignment), since
 * "nmae" for "name" is the typical slip. Field names are short, so O(n*m) is cheap.
 */
function editDistance(a: string, b: string): number {
  let beforePrevious: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      let best = Math.min(previous[j] + 1, current[j - 1] + 1, substitution);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, beforePrevious[j - 2] + 1);
      }
      current.push(best);
    }
    beforePrevious = previous;
    previous = current;
  }
  return previous[b.length];
}

/**
 * @module api/fields
 * The field checks behind api/validate and api/form: one zod schema per string, array or object
 * field, a hand check per number (type, integer or finite, and range), and a checker that
 * words the error our way, naming the field, the legal range and the value received. Pure: no
 * I/O, no module state. Imports only zod, `api/types` and `config/defaults`.
 */
import { z } from 'zod';
import { ErrorCode, type FunctionAuth } from './types.js';
import { parseImageRef } from './image-ref.js';
import { functionLimits, scalingPresets, type ScalingPresetName } from '../config/defaults.js';
interface ValidationError {
  code: ErrorCode;
  message: string;
  field: string;
}
export type Validation<T> = { ok: true; value: T } | { ok: false; error: ValidationError };

export type Range = readonly [number, number];
export type Body = Record<string, unknown>;

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


export function checkName(value: unknown, field = 'name'): Validation<string> {
  return checkWith(nameSchema, value, field, () =>
    `${field} must be a DNS label (lower-case letters, digits and '-', starting with a letter, ` +
      `ending with a letter or digit, 1 to ${functionLimits.nameLengthMax} characters), ` +
      `got ${describe(value)}`);
}

export function checkImage(value: unknown, field = 'image'): Validation<string> {
  const shape = checkWith(imageSchema, value, field, () =>
    `${field} must be an image reference without whitespace, 1 to ` +
      `${functionLimits.imageLengthMax} characters, got ${describe(value)}`);
  if (!shape.ok) return shape;
  const parsed = parseImageRef(shape.value);
  if (parsed.ok) return shape;
  return fail(ErrorCode.invalidField, field,
    `${field} must be registry/name[:tag][@sha256:...] or oci-archive:/absolute/path.tar ` +
      `(${parsed.reason}), got ${describe(value)}`);
}

export function checkCommand(value: unknown, field = 'command'): Validation<string[]> {
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

export function checkWorkingDir(value: unknown, field: string): Validation<string> {
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

export function checkPresetName(value: unknown, field: string): Validation<ScalingPresetName> {
  return checkWith(presetSchema, value, field, () =>
    `${field} must be one of ${Object.keys(scalingPresets).join(', ')}, got ${describe(value)}`,
  ) as Validation<ScalingPresetName>;
}

export function checkBoolean(value: unknown, field: string): Validation<boolean> {
  return typeof value === 'boolean'
    ? ok(value)
    : fail(ErrorCode.invalidField, field, `${field} must be true or false, got ${describe(value)}`);
}

export function checkAuth(value: unknown, field: string): Validation<FunctionAuth> {
  return value === 'none' || value === 'token'
    ? ok(value)
    : fail(ErrorCode.invalidField, field, `${field} must be "none" or "token", got ${describe(value)}`);
}

/** `limit` names the bound (a key of sandboxBounds) so an error says which rule refused it. */
export function checkInteger(value: unknown, field: string, range: Range, limit?: string): Validation<number> {
  if (Number.isInteger(value) && inRange(value as number, range)) return ok(value as number);
  const named = limit === undefined ? '' : ` (limit ${limit})`;
  return fail(ErrorCode.invalidField, field,
    `${field} must be an integer in [${range[0]}, ${range[1]}]${named}, got ${describe(value)}`);
}

export function checkNumber(value: unknown, field: string, range: Range): Validation<number> {
  if (Number.isFinite(value) && inRange(value as number, range)) return ok(value as number);
  return fail(ErrorCode.invalidField, field,
    `${field} must be a number in [${range[0]}, ${range[1]}], got ${describe(value)}`);
}

/**
 * Numbers are checked by hand, not by a zod schema: a registration checks a dozen of them, and
 * zod's parse context made each check cost more than the rest of the field's validation.
 */
function inRange(value: number, range: Range): boolean {
  return value >= range[0] && value <= range[1];
}

/** A plain JSON object; `field` '' means the whole body. */
export function checkObject(value: unknown, field: string): Validation<Body> {
  // Checked for shape only: the value itself is kept, so only own keys are read later.
  if (plainObject.safeParse(value).success) return ok(value as Body);
  const what = field === '' ? 'the request body' : field;
  const code = field === '' ? ErrorCode.invalidJson : ErrorCode.invalidField;
  return fail(code, field, `${what} must be a JSON object, got ${describe(value)}`);
}

/** First key of `value` (in its own order) that is not in `known`, as unknown_field. */
export function checkKnownKeys(
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

/**
 * @module api/form
 * The Dirigent-compatible registration form (`POST /` or `/registerService`,
 * application/x-www-form-urlencoded), so tools written for Dirigent, such as the InVitro
 * loader, register functions unchanged. Pure: parses the body text into a FunctionSpec.
 *
 * Field by field (reference: eth-easl/dirigent registration_server.go; sender: InVitro's
 * pkg/driver/deployment/dirigent.go):
 *
 *   name, image              required; name is a DNS label, image goes to `image`, command []
 *   port_forwarding (x2)     the port, then tcp|udp: ["80", "tcp"] -> port 80
 *   requested_cpu            milli-CPU; missing or below our minimum (10) counts as it
 *   requested_memory         MiB; missing or below our minimum (8) counts as it
 *   cold_start_sweep         Go bool; true selects the coldStartSweep preset
 *   scaling_upper_bound      overrides scaling.max (after the preset)
 *   scaling_lower_bound      overrides scaling.min (after the preset)
 *   env_vars                 KEY=VALUE[,KEY=VALUE...]; may repeat; values cannot hold commas
 *   requested_gpu, program_args, prepull_mode, iteration_multiplier, cold_start_busy_loop_ms
 *                            sent by InVitro or newer Dirigent clients: accepted and ignored
 *
 * Why small requests are raised to the minimum: InVitro derives them from the trace (memory
 * request = p100 memory / 10), so a small function arrives with 0 or 1, which the reference
 * accepts. Our minimums (sandboxBounds) keep sandboxes from being packed by the thousand on a
 * core; refusing the loader's own registrations would defeat the point of the form.
 *
 * Errors name the form field (not the JSON field) so the loader's log points at what it sent.
 * Values are checked by zod schemas (Go's integer and bool syntax below); the spec they build
 * then goes through the JSON validator. Imports only zod, `api/` and `config/defaults`.
 */
import { z } from 'zod';
import { ErrorCode, type FunctionSpec } from './types.js';
import { functionLimits, scalingLimits, scalingPresets } from '../config/defaults.js';
import { checkEnv, checkImage, checkName, describe, fail, ok, type Validation } from './fields.js';
import { validateFunctionCreate } from './validate.js';

const formFields = [
  'name', 'image', 'port_forwarding', 'requested_cpu', 'requested_memory',
  'cold_start_sweep', 'scaling_upper_bound', 'scaling_lower_bound', 'env_vars',
] as const;
const ignoredFormFields = [
  'requested_gpu', 'program_args', 'prepull_mode', 'iteration_multiplier',
  'cold_start_busy_loop_ms',
] as const;
/** Fields that legitimately appear more than once. */
const repeatedFormFields: ReadonlySet<string> = new Set(['port_forwarding', 'env_vars']);
/** port_forwarding's second value, any case. */
const protocolSchema = z.string().transform((p) => p.toLowerCase()).pipe(z.enum(['tcp', 'udp']));
/** Go's strconv.ParseBool spellings, which the reference accepts. */
const goBoolSchema = z.union([
  z.enum(['1', 't', 'T', 'true', 'TRUE', 'True']).transform(() => true),
  z.enum(['0', 'f', 'F', 'false', 'FALSE', 'False']).transform(() => false),
]);
/** strconv.Atoi's syntax: optional sign, decimal digits only. */
const goIntSchema = z.string().regex(/^[+-]?\d{1,16}$/).transform(Number);
const goIntIn = (low: number, high: number) => goIntSchema.pipe(z.number().int().min(low).max(high));

/** Where an error found by the JSON validator points, in form terms. */
const jsonToFormField: Readonly<Record<string, string>> = {
  name: 'name',
  image: 'image',
  port: 'port_forwarding',
  'resources.cpuMillis': 'requested_cpu',
  'resources.memoryMiB': 'requested_memory',
  'scaling.max': 'scaling_upper_bound',
  'scaling.min': 'scaling_lower_bound',
};

export function parseRegistrationForm(body: string): Validation<FunctionSpec> {
  const params = new URLSearchParams(body);
  const shape = checkFormShape(params);
  if (!shape.ok) return shape;
  const name = required(params, 'name');
  if (!name.ok) return name;
  const checkedName = checkName(name.value, 'name');
  if (!checkedName.ok) return checkedName;
  const image = required(params, 'image');
  if (!image.ok) return image;
  const checkedImage = checkImage(image.value, 'image');
  if (!checkedImage.ok) return checkedImage;
  const port = parsePortForwarding(params.getAll('port_forwarding'));
  if (!port.ok) return port;
  const cpuMillis = parseResource(params, 'requested_cpu', functionLimits.cpuMillis);
  if (!cpuMillis.ok) return cpuMillis;
  const memoryMiB = parseResource(params, 'requested_memory', functionLimits.memoryMiB);
  if (!memoryMiB.ok) return memoryMiB;
  const scaling = parseScalingFields(params);
  if (!scaling.ok) return scaling;
  const env = parseEnvVars(params.getAll('env_vars'));
  if (!env.ok) return env;
  const spec = validateFunctionCreate({
    name: checkedName.value,
    image: checkedImage.value,
    port: port.value,
    env: env.value,
    resources: { cpuMillis: cpuMillis.value, memoryMiB: memoryMiB.value },
    scalingPreset: scaling.value.preset,
    scaling: scaling.value.overrides,
  });
  if (spec.ok) return spec;
  // The checks above mirror every JSON rule the form can reach, so this is a safety net.
  const field = jsonToFormField[spec.error.field] ?? spec.error.field;
  return fail(spec.error.code, field, spec.error.message);
}

/** Unknown fields, then single-valued fields given more than once. */
function checkFormShape(params: URLSearchParams): Validation<null> {
  const counts = new Map<string, number>();
  for (const key of params.keys()) {
    const known = (formFields as readonly string[]).includes(key) ||
      (ignoredFormFields as readonly string[]).includes(key);
    if (!known) {
      return fail(ErrorCode.unknownField, key,
        `unknown form field ${describe(key)} (known: ${formFields.join(', ')}; ` +
          `accepted and ignored: ${ignoredFormFields.join(', ')})`);
    }
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  for (const [key, count] of counts) {
    if (count > 1 && !repeatedFormFields.has(key)) {
      return fail(ErrorCode.invalidField, key, `${key} must be given once, got it ${count} times`);
    }
  }
  return ok(null);
}

function required(params: URLSearchParams, field: string): Validation<string> {
  const value = params.get(field);
  return value === null || value === ''
    ? fail(ErrorCode.missingField, field, `${field} is required`)
    : ok(value);
}

function parsePortForwarding(values: string[]): Validation<number> {
  const [low, high] = functionLimits.port;
  const parsed = z.tuple([goIntIn(low, high), protocolSchema]).safeParse(values);
  if (parsed.success) return ok(parsed.data[0]);
  // Missing entirely is its own code so clients can tell "forgot it" from "got it wrong".
  const code = values.length === 0 ? ErrorCode.missingField : ErrorCode.invalidField;
  return fail(code, 'port_forwarding',
    `port_forwarding must be given twice: the port (an integer in [${low}, ${high}]), ` +
      `then tcp or udp; got ${describe(values)}`);
}

function parseResource(params: URLSearchParams, field: string, range: readonly [number, number]): Validation<number> {
  const [min, max] = range;
  const text = params.get(field);
  if (text === null || text === '') return ok(min);
  const parsed = goIntIn(0, max).safeParse(text);
  if (!parsed.success) {
    return fail(ErrorCode.invalidField, field,
      `${field} must be an integer in [0, ${max}] (below ${min} counts as ${min}), got ${describe(text)}`);
  }
  return ok(Math.max(parsed.data, min));
}

interface FormScaling {
  preset: 'dirigent' | 'coldStartSweep';
  overrides: { max?: number; min?: number };
}

function parseScalingFields(params: URLSearchParams): Validation<FormScaling> {
  const sweepText = params.get('cold_start_sweep');
  const parsedSweep = sweepText === null || sweepText === '' ? { success: true as const, data: false }
    : goBoolSchema.safeParse(sweepText);
  const sweep = parsedSweep.success ? parsedSweep.data : undefined;
  if (sweep === undefined) {
    return fail(ErrorCode.invalidField, 'cold_start_sweep',
      `cold_start_sweep must be true or false, got ${describe(sweepText)}`);
  }
  const preset = sweep ? 'coldStartSweep' : 'dirigent';
  const upper = parseBound(params, 'scaling_upper_bound', scalingLimits.max);
  if (!upper.ok) return upper;
  const lower = parseBound(params, 'scaling_lower_bound', scalingLimits.min);
  if (!lower.ok) return lower;
  const overrides: FormScaling['overrides'] = {};
  if (upper.value !== undefined) overrides.max = upper.value;
  if (lower.value !== undefined) overrides.min = lower.value;
  const max = overrides.max ?? scalingPresets[preset].max;
  const min = overrides.min ?? scalingPresets[preset].min;
  if (min > max) {
    const origin = overrides.max === undefined ? `, from the ${preset} preset` : '';
    return fail(ErrorCode.invalidField, 'scaling_lower_bound',
      `scaling_lower_bound must be <= scaling_upper_bound (${max}${origin}), got ${min}`);
  }
  return ok({ preset, overrides });
}

function parseBound(
  params: URLSearchParams,
  field: string,
  range: readonly [number, number],
): Validation<number | undefined> {
  const text = params.get(field);
  if (text === null || text === '') return ok(undefined);
  const parsed = goIntIn(range[0], range[1]).safeParse(text);
  if (!parsed.success) {
    return fail(ErrorCode.invalidField, field,
      `${field} must be an integer in [${range[0]}, ${range[1]}], got ${describe(text)}`);
  }
  return ok(parsed.data);
}

function parseEnvVars(values: string[]): Validation<Record<string, string>> {
  const entries: [string, string][] = [];
  for (const item of values.flatMap((value) => value.split(','))) {
    if (item === '') continue; // "A=1," and an empty env_vars both mean nothing more
    const eq = item.indexOf('=');
    if (eq <= 0) {
      return fail(ErrorCode.invalidField, 'env_vars',
        `env_vars must be a comma-separated KEY=VALUE list, got the entry ${describe(item)}`);
    }
    entries.push([item.slice(0, eq), item.slice(eq + 1)]);
  }
  // fromEntries keeps "__proto__" an own key; a repeated key keeps its last value, as in a shell.
  const env = checkEnv(Object.fromEntries(entries), 'env_vars');
  return env.ok ? env : fail(env.error.code, 'env_vars', env.error.message);
}

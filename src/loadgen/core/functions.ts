/**
 * @module loadgen/core/functions
 * Names and registration bodies (`POST /v1/functions`) of the functions the benches create.
 * Names are DNS labels made from a per-run prefix so concurrent or repeated runs never collide
 * (a 409 would otherwise silently reuse a warm sandbox). Pure.
 */
import { functionDefaults, functionLimits, sandboxBounds } from '../../config/defaults.js';

/** Image name the emulated runtime ignores; any non-empty image satisfies validation. */
const emulatedImage = 'emulated';

export interface Resources {
  cpuMillis: number;
  memoryMiB: number;
}

/**
 * Requests of the cold bench's functions: the smallest the API accepts (sandboxBounds). One
 * request leaves a sandbox alive until scale-down (coldStartSweep: ~6 s stable window), so R
 * cold starts/s keep about 8·R sandboxes placed; at 100m each a 2-core worker would refuse the
 * 21st ("insufficient cpu") and the bench would measure placement capacity instead of
 * cold-start throughput. Emulated workers advertise a 64-core node for the same reason.
 */
export const coldResourceDefaults: Readonly<Resources> = Object.freeze({
  cpuMillis: sandboxBounds.cpuMillisMin,
  memoryMiB: sandboxBounds.memoryMiBMin,
});

/** The warm bench's single function: the cluster's usual function defaults. */
export const warmResourceDefaults: Readonly<Resources> = Object.freeze({
  cpuMillis: functionDefaults.cpuMillis,
  memoryMiB: functionDefaults.memoryMiB,
});

/** How a function's sandboxes run: emulated, a real process (argv, no shell), or an image. */
export type FunctionRuntime =
  | { kind: 'emulated' }
  | { kind: 'command'; argv: string[]; workingDir: string }
  | { kind: 'image'; image: string };

export interface RegistrationBody {
  name: string;
  image?: string;
  command?: string[];
  workingDir?: string;
  resources: Resources;
  concurrency: number;
  scaling?: Record<string, unknown>;
  scalingPreset?: 'coldStartSweep';
}

/**
 * A run prefix like `cold-k9x2a1`: kind + base-36 run id. `entropy` comes from the shell
 * (clock and pid), so this stays pure.
 */
export function runPrefix(kind: string, entropy: number): string {
  const id = Math.abs(Math.trunc(entropy)).toString(36).slice(-6).padStart(6, '0');
  return `${kind}-${id}`;
}

/** `<prefix>-<suffix>`; throws when the result is not a valid function name (a bug). */
export function benchFunctionName(prefix: string, suffix: number | string): string {
  const name = `${prefix}-${suffix}`;
  if (name.length > functionLimits.nameLengthMax || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name)) {
    throw new RangeError(`invalid function name ${name}`);
  }
  return name;
}

type RuntimeFields = Pick<RegistrationBody, 'image' | 'command' | 'workingDir'>;

function runtimeFields(runtime: FunctionRuntime): RuntimeFields {
  if (runtime.kind === 'emulated') return { image: emulatedImage };
  if (runtime.kind === 'image') return { image: runtime.image };
  return { command: runtime.argv, workingDir: runtime.workingDir };
}

/** Cold bench: at most one sandbox, scale to zero allowed, the cold-start sweep preset. */
export function coldFunctionBody(
  name: string,
  runtime: FunctionRuntime,
  resources: Resources = coldResourceDefaults,
): RegistrationBody {
  return {
    name,
    ...runtimeFields(runtime),
    resources: { ...resources },
    concurrency: 1,
    scaling: { min: 0, max: 1 },
    scalingPreset: 'coldStartSweep',
  };
}

/** Warm bench: kept warm by min 1; `concurrency` 0 = unlimited per sandbox. */
export function warmFunctionBody(
  name: string,
  runtime: FunctionRuntime,
  o: { concurrency: number; maxScale: number; resources?: Resources },
): RegistrationBody {
  return {
    name,
    ...runtimeFields(runtime),
    resources: { ...(o.resources ?? warmResourceDefaults) },
    concurrency: o.concurrency,
    scaling: { min: 1, max: Math.max(1, o.maxScale) },
  };
}

/** Registration bench: a function that never gets a sandbox (min 0, no traffic). */
export function registerBenchBody(name: string): RegistrationBody {
  return {
    name,
    image: emulatedImage,
    resources: { ...coldResourceDefaults },
    concurrency: 1,
    scaling: { min: 0 },
  };
}

/**
 * Trace replay: InVitro's deployment requests (CPU 100m, memory pct100/10) and Knative's
 * containerConcurrency 1 (workload-and-policies §1.9); scaling left at the cluster default unless a
 * replay names knobs (`loadgen trace --scaling`, `--keep-alive-window`).
 */
export function traceFunctionBody(
  name: string,
  runtime: FunctionRuntime,
  resources: Resources,
  scaling: Record<string, unknown> = {},
): RegistrationBody {
  return {
    name, ...runtimeFields(runtime), resources, concurrency: 1,
    ...(Object.keys(scaling).length === 0 ? {} : { scaling: { ...scaling } }),
  };
}

/** Trace function names keep InVitro's `trace-func-<row>` stem plus the run id. */
export function traceFunctionName(runId: string, rowIndex: number): string {
  return benchFunctionName(`trace-func-${rowIndex}`, runId);
}

/**
 * Splits a command line into argv without a shell: whitespace separates words; single quotes
 * keep text literally; double quotes keep spaces and allow \" and \\. Returns an error message
 * for an unterminated quote or an empty command.
 */
export function splitArgv(line: string): string[] | { error: string } {
  const argv: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote === "'") {
      if (c === "'") quote = null;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) word += line[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) argv.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote !== null) return { error: `unterminated ${quote} quote` };
  if (inWord) argv.push(word);
  if (argv.length === 0) return { error: 'empty command' };
  return argv;
}

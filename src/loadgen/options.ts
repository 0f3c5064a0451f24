/**
 * @module loadgen/options
 * Option parsers for the bench and loadgen commands. A bad value fails at parse time with a
 * message naming the option, the value and the legal range (commander prints it and exits 1).
 */
import { InvalidArgumentError, Option } from 'commander';
import { cliDefaults, controlPlaneDefaults } from '../config/defaults.js';
import { splitArgv, type FunctionRuntime } from './core/functions.js';
import { parseIatMode, type IatMode } from './core/iat.js';
import type { ArrivalProcess } from './core/schedule.js';

/** Upper bounds that catch typos (a rate of 1e7 is a mistake, not a benchmark). */
export const optionLimits = Object.freeze({
  rateRpsMax: 1_000_000,
  durationSMax: 86_400,
  connectionsMax: 65_536,
  countMax: 10_000_000,
  concurrencyMax: 4_096,
  speedMax: 10_000,
  minutesMax: 1440,
  timeoutMsMax: 3_600_000,
});

/** A number parser for commander: finite, within [min, max], optionally an integer. */
export function numberIn(
  option: string,
  min: number,
  max: number,
  integer = false,
): (value: string) => number {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max ||
      (integer && !Number.isInteger(n))) {
      const kind = integer ? 'an integer' : 'a number';
      throw new InvalidArgumentError(`${option}: ${JSON.stringify(value)} is not ${kind} in ` +
        `[${min}, ${max}]`);
    }
    return n;
  };
}

/** "100,500,1000" -> [100, 500, 1000]; every entry a positive rate. */
function rateList(option: string): (value: string) => number[] {
  const one = numberIn(option, Number.MIN_VALUE, optionLimits.rateRpsMax);
  return (value: string): number[] => {
    const parts = value.split(',').map((p) => p.trim()).filter((p) => p !== '');
    if (parts.length === 0) throw new InvalidArgumentError(`${option}: empty list`);
    return parts.map(one);
  };
}

/**
 * `--scaling '{"scaleDownDelayS":60}'`: a JSON object of scaling knobs, sent as given (the API
 * checks each knob and names the one it refuses).
 */
export function scalingJsonOption(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (err) {
    throw new InvalidArgumentError(`--scaling: not JSON (${String(err)})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArgumentError(`--scaling: ${JSON.stringify(value)} is not a JSON object like '{"scaleDownDelayS":60}'`);
  }
  return { ...(parsed as Record<string, unknown>) };
}

export function iatOption(value: string): IatMode {
  const mode = parseIatMode(value);
  if (mode === null) {
    throw new InvalidArgumentError(`--iat: ${JSON.stringify(value)} is not one of equidistant, ` +
      'uniform, exponential (each optionally with _shift)');
  }
  return mode;
}

function arrivalsOption(value: string): ArrivalProcess {
  if (value !== 'equidistant' && value !== 'exponential') {
    throw new InvalidArgumentError(`--arrivals: ${JSON.stringify(value)} is not equidistant ` +
      'or exponential');
  }
  return value;
}

/**
 * `--function-command "node server.js"` -> a process runtime; `--function-image ref` -> an image
 * (oci/containerd workers); neither -> emulated.
 */
export function functionRuntime(command: string | undefined, workingDir: string, image?: string): FunctionRuntime {
  if (command !== undefined && image !== undefined) {
    throw new InvalidArgumentError('give --function-command or --function-image, not both');
  }
  if (image !== undefined) return { kind: 'image', image };
  if (command === undefined) return { kind: 'emulated' };
  const argv = splitArgv(command);
  if ('error' in argv) throw new InvalidArgumentError(`--function-command: ${argv.error}`);
  return { kind: 'command', argv, workingDir };
}

/** The options every bench and loadgen command takes. */
export function commonOptions(): Option[] {
  return [
    new Option('--api <url>', 'control-plane management API').env('DIRIGENT_API')
      .default(cliDefaults.apiUrl),
    new Option('--proxy <url>', 'data-plane proxy').env('DIRIGENT_PROXY')
      .default(cliDefaults.proxyUrl),
    new Option('--json', 'print only the JSON summary').default(false),
    new Option('--plot <file>', 'write a plot: .svg (SVG only) or .html (self-contained page)'),
    new Option('--state-dir <dir>', 'cluster state dir holding cluster.json (for CPU accounting)')
      .env('DIRIGENT_STATE_DIR').default(controlPlaneDefaults.stateDir),
  ];
}

export interface CommonValues {
  api: string;
  proxy: string;
  json: boolean;
  plot?: string;
  stateDir: string;
}

const maxSeed = 2 ** 32 - 1;

/** Option factories shared by several commands, so each flag means one thing everywhere. */
export const opt = {
  rate: (what: string) =>
    new Option('--rate <rps>', what).argParser(numberIn('--rate', 0.001, optionLimits.rateRpsMax)),
  rates: (what: string) => new Option('--rates <list>', what).argParser(rateList('--rates')),
  duration: (what: string, seconds: number) =>
    new Option('--duration <s>', what)
      .argParser(numberIn('--duration', 0.001, optionLimits.durationSMax)).default(seconds),
  connections: (what: string, n: number) =>
    new Option('--connections <n>', what)
      .argParser(numberIn('--connections', 1, optionLimits.connectionsMax, true)).default(n),
  registerConcurrency: (n: number) =>
    new Option('--register-concurrency <n>', 'concurrent registrations')
      .argParser(numberIn('--register-concurrency', 1, optionLimits.concurrencyMax, true))
      .default(n),
  timeoutMs: (ms: number) =>
    new Option('--timeout-ms <ms>', 'per-request timeout')
      .argParser(numberIn('--timeout-ms', 1, optionLimits.timeoutMsMax, true)).default(ms),
  seed: (what: string, seed: number) =>
    new Option('--seed <n>', what).argParser(numberIn('--seed', 0, maxSeed, true)).default(seed),
  arrivals: () =>
    new Option('--arrivals <kind>', 'open-loop arrivals: equidistant or exponential (Poisson)')
      .argParser(arrivalsOption).default('equidistant'),
  functionDurationMs: () =>
    new Option('--function-duration-ms <ms>', 'x-emulated-duration-ms sent with each request')
      .argParser(numberIn('--function-duration-ms', 0, optionLimits.timeoutMsMax, true)).default(0),
  functionImage: () =>
    new Option('--function-image <ref>', 'register image functions (oci/containerd workers) running ' +
      'this image, e.g. 127.0.0.1:5000/hello:1 or oci-archive:/abs/hello.tar'),
  functionCommand: () =>
    new Option('--function-command <argv>', 'register process functions running this command ' +
      '(split like a shell, no shell run) instead of emulated ones'),
  cpuMillis: (m: number) =>
    new Option('--cpu-millis <m>', 'CPU request of each registered function, millicores')
      .argParser(numberIn('--cpu-millis', 1, 1_000_000, true)).default(m),
  memoryMiB: (n: number) =>
    new Option('--memory-mib <n>', 'memory request of each registered function, MiB')
      .argParser(numberIn('--memory-mib', 1, 4_194_304, true)).default(n),
  keep: () =>
    new Option('--keep', 'do not delete the registered functions afterwards').default(false),
};

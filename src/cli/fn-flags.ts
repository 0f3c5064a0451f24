/**
 * @module cli/fn-flags
 * The function-spec flags shared by `fn deploy` and `fn update`, and their translation into a
 * JSON body for the management API. Only flags the user gave go into the body, so the server
 * (api/validate) stays the one place for defaults, ranges and cross-field rules; the CLI only
 * rejects what it cannot even encode (a malformed --env, --scaling that is not JSON).
 */
import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { scalingPresets } from '../config/defaults.js';
import { usageError } from './context.js';

export interface SpecFlags {
  command?: string;
  image?: string;
  workingDir?: string;
  port?: number;
  env?: string[];
  egress?: boolean;
  auth?: string;
  cpu?: number;
  memory?: number;
  concurrency?: number;
  timeoutMs?: number;
  min?: number;
  max?: number;
  keepAlive?: number;
  preset?: string;
  scaling?: string;
  asyncRetryOn4xx?: boolean;
  asyncAttemptsMax?: number;
  asyncEventAgeMsMax?: number;
}

export type SpecBody = Record<string, unknown>;

export function addSpecOptions(command: Command): Command {
  return command
    .addOption(new Option('--command <argv>',
      'program and arguments (process runtime, no shell): split on whitespace, or a JSON array')
      .conflicts('image'))
    .addOption(new Option('--image <ref>', 'OCI image reference (oci/containerd runtimes)'))
    .option('--working-dir <dir>',
      'directory the command runs in (default with --command: the current directory)')
    .option('--port <n>', 'port the function listens on inside an image', numberArg)
    .option('--env <K=V>', 'environment variable for the function (repeatable)', collect)
    .option('--egress', 'let the sandbox connect beyond this host and the private ranges')
    .option('--no-egress', 'a sandbox only answers on its port (the default)')
    .option('--auth <mode>', "who may invoke: none (anyone, the default) or token (a bearer token of the function's namespace)")
    .option('--cpu <millis>', 'CPU request in milli-CPU (1000 = one core)', numberArg)
    .option('--memory <MiB>', 'memory request in MiB', numberArg)
    .option('--concurrency <n>', 'requests one sandbox serves at once (0 = unlimited)', numberArg)
    .option('--timeout-ms <n>', 'longest run of one invocation, in ms', numberArg)
    .option('--min <n>', 'fewest sandboxes kept (scaling.min)', numberArg)
    .option('--max <n>', 'most sandboxes allowed (scaling.max)', numberArg)
    .option('--keep-alive <s>', 'hold a sandbox after each busy spell as the idle times say, over up to this ' +
      'many seconds (hybrid histogram keep-alive, scaling.keepAliveWindowS; 0 = off, the default)', numberArg)
    .addOption(new Option('--preset <name>', 'autoscaling preset the scaling knobs start from')
      .choices(Object.keys(scalingPresets)))
    .option('--scaling <json>',
      'scaling knobs as JSON, e.g. \'{"stableWindowS":30}\'; --min/--max/--keep-alive win over it')
    .option('--async-retry-on-4xx', 'async invocations also retry 4xx answers (default: only 5xx, timeouts, transport errors)')
    .option('--no-async-retry-on-4xx', 'async invocations do not retry 4xx answers')
    .option('--async-attempts-max <n>', "attempts per async invocation, the first included (default: the data plane's)", numberArg)
    .option('--async-event-age-ms-max <ms>', "oldest async invocation still attempted, in ms (default: the data plane's)", numberArg);
}

/** The API body for the flags given; `cwd` resolves --working-dir and is the default for it. */
export function specBodyFromFlags(flags: SpecFlags, cwd: string): SpecBody {
  const body: SpecBody = {};
  if (flags.command !== undefined) body.command = parseCommandFlag(flags.command);
  if (flags.image !== undefined) body.image = flags.image;
  if (flags.workingDir !== undefined) body.workingDir = resolve(cwd, flags.workingDir);
  // Relative paths in the command (examples/hello/server.js) mean "from where I typed it".
  else if (flags.command !== undefined) body.workingDir = cwd;
  if (flags.port !== undefined) body.port = flags.port;
  if (flags.env !== undefined) body.env = parseEnvFlags(flags.env);
  if (flags.egress !== undefined) body.egress = flags.egress;
  if (flags.auth !== undefined) body.auth = flags.auth;
  const resources: Record<string, number> = {};
  if (flags.cpu !== undefined) resources.cpuMillis = flags.cpu;
  if (flags.memory !== undefined) resources.memoryMiB = flags.memory;
  if (Object.keys(resources).length > 0) body.resources = resources;
  if (flags.concurrency !== undefined) body.concurrency = flags.concurrency;
  if (flags.timeoutMs !== undefined) body.timeoutMs = flags.timeoutMs;
  if (flags.preset !== undefined) body.scalingPreset = flags.preset;
  const scaling = flags.scaling === undefined ? {} : parseScalingFlag(flags.scaling);
  if (flags.min !== undefined) scaling.min = flags.min;
  if (flags.max !== undefined) scaling.max = flags.max;
  if (flags.keepAlive !== undefined) scaling.keepAliveWindowS = flags.keepAlive;
  if (Object.keys(scaling).length > 0) body.scaling = scaling;
  const asyncSettings: Record<string, unknown> = {};
  if (flags.asyncRetryOn4xx !== undefined) asyncSettings.retryOn4xx = flags.asyncRetryOn4xx;
  if (flags.asyncAttemptsMax !== undefined) asyncSettings.attemptsMax = flags.asyncAttemptsMax;
  if (flags.asyncEventAgeMsMax !== undefined) asyncSettings.eventAgeMsMax = flags.asyncEventAgeMsMax;
  if (Object.keys(asyncSettings).length > 0) body.async = asyncSettings;
  return body;
}

/** `node server.js` or `["node","my file.js"]` -> argv. */
function parseCommandFlag(text: string): string[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (err) {
      throw usageError(`--command looks like a JSON array but is not valid JSON: ${String(err)}`);
    }
    if (!Array.isArray(parsed) || !parsed.every((arg) => typeof arg === 'string')) {
      throw usageError('--command as JSON must be an array of strings, e.g. ["node","server.js"]');
    }
    if (parsed.length === 0) throw usageError('--command must name a program');
    return parsed as string[];
  }
  const argv = trimmed.split(/\s+/).filter((arg) => arg !== '');
  if (argv.length === 0) throw usageError('--command must name a program');
  return argv;
}

function parseEnvFlags(entries: string[]): Record<string, string> {
  const pairs = entries.map((entry): [string, string] => {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw usageError(`--env must be KEY=VALUE, got "${entry}"`);
    return [entry.slice(0, eq), entry.slice(eq + 1)];
  });
  return Object.fromEntries(pairs);
}

function parseScalingFlag(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw usageError(`--scaling must be a JSON object: ${String(err)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw usageError(`--scaling must be a JSON object like '{"stableWindowS":30}', got ${text}`);
  }
  return { ...(parsed as Record<string, unknown>) };
}

/** Commander argument parser: any finite number; ranges are the server's business. */
export function numberArg(value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number)) {
    throw new InvalidArgumentError('Not a number.');
  }
  return number;
}

/** Commander collector for repeatable options; no default, so help shows none. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

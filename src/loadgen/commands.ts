/**
 * @module loadgen/commands
 * The `dirigent bench ...` and `dirigent loadgen ...` commands: option parsing and output
 * only; the work is in `shell/bench-*.ts` and `shell/trace-replay.ts`. This is an entry point,
 * so it may read the clock (for unique run names) and process state.
 */
import { Option, type Command } from 'commander';
import { cliDefaults, scalingLimits } from '../config/defaults.js';
import { formatBench, formatSweep, formatTrace } from './core/format.js';
import { cdfFromSorted, cdfPlot, sweepPlot, type PlotSpec } from './core/plot.js';
import { defaultSaturationRule } from './core/saturation.js';
import type { BenchSummary } from './core/stats.js';
import { cdfOf, errorRateVerdict } from './core/summaries.js';
import { coldResourceDefaults, warmResourceDefaults } from './core/functions.js';
import { schedulingLatenciesSortedMs } from './core/trace-metrics.js';
import { trustClusterCa } from './shell/cluster-trust.js';
import { coldDefaults, runColdBench } from './shell/bench-cold.js';
import { addAsync } from './shell/bench-async-command.js';
import { generatorDefaults, runGeneratorBench } from './shell/bench-generator.js';
import { addFailover } from './shell/bench-failover-command.js';
import { registerDefaults, runRegisterBench } from './shell/bench-register.js';
import { runWarmBench, warmDefaults } from './shell/bench-warm.js';
import { senderDefaults } from './shell/http-sender.js';
import { emit, processIo, writePlot, type CommandIo } from './shell/output.js';
import { loadTracePlan, runTraceReplay, traceDefaults } from './shell/trace-replay.js';
import type { ArrivalProcess } from './core/schedule.js';
import {
  commonOptions,
  functionRuntime,
  iatOption,
  scalingJsonOption,
  numberIn,
  opt,
  optionLimits as lim,
  type CommonValues,
} from './options.js';

export function registerBenchCommands(program: Command, io: CommandIo = processIo): void {
  const bench = program.command('bench').description('benchmark a running cluster');
  trustBeforeAction(bench);
  addCold(bench, io);
  addWarm(bench, io);
  addRegister(bench, io);
  addGenerator(bench, io);
  addFailover(bench, io);
  addAsync(bench, io);
}

export function registerLoadgenCommands(program: Command, io: CommandIo = processIo): void {
  const loadgen = program.command('loadgen').description('replay workloads against a cluster');
  trustBeforeAction(loadgen);
  addTrace(loadgen, io);
}

/** Unique per run: function names from two runs never collide. */
function entropy(): number {
  return Date.now() * 1000 + (process.pid % 1000);
}

/** A TLS cluster's CA (from --state-dir or DIRIGENT_CA) is trusted before any subcommand runs. */
function trustBeforeAction(parent: Command): void {
  parent.hook('preAction', (_parent, sub) => trustClusterCa((sub.opts() as Partial<CommonValues>).stateDir ?? ''));
}

function withCommon(cmd: Command): Command {
  for (const option of commonOptions()) cmd.addOption(option);
  return cmd;
}

function example(cmd: Command, lines: string[]): Command {
  return cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}

/** Runs an action; an error becomes one line on stderr and exit code 1, never a stack. */
function action<T extends unknown[]>(io: CommandIo, fn: (...args: T) => Promise<void>) {
  return async (...args: T): Promise<void> => {
    try {
      await fn(...args);
    } catch (e) {
      io.err(`error: ${(e as Error).message}`);
      process.exitCode = 1;
    }
  };
}

type ColdValues = CommonValues & {
  rate?: number; rates?: number[]; duration: number; warmup: number; registerConcurrency: number;
  connections?: number; timeoutMs: number; functionDurationMs: number; functionCommand?: string; functionImage?: string;
  cpuMillis: number; memoryMib: number; keep: boolean; cooldown: number;
};

function addCold(bench: Command, io: CommandIo): void {
  const cmd = withCommon(bench.command('cold')
    .description('open-loop cold starts: one request per fresh function at a fixed rate'))
    .addOption(opt.rate('offered cold starts per second (default 100)'))
    .addOption(opt.rates('sweep, e.g. 100,500,1000; stops past saturation'))
    .addOption(opt.duration('seconds of sending per rate', 10))
    .option('--warmup <s>', 'seconds of cold starts ramping up to each rate first, reported apart',
      numberIn('--warmup', 0, lim.durationSMax), coldDefaults.warmupS)
    .addOption(opt.registerConcurrency(coldDefaults.registerConcurrency))
    .option('--connections <n>', 'keep-alive connections to the data plane at most (default: ' +
      `enough for ${coldDefaults.connectionHoldS} s per request at the highest rate, at least ` +
      `${senderDefaults.connections}; opened as needed)`,
      numberIn('--connections', 1, lim.connectionsMax, true))
    .addOption(opt.timeoutMs(cliDefaults.requestTimeoutMs))
    .addOption(opt.functionDurationMs())
    .addOption(opt.functionCommand())
    .addOption(opt.functionImage())
    .addOption(opt.cpuMillis(coldResourceDefaults.cpuMillis))
    .addOption(opt.memoryMiB(coldResourceDefaults.memoryMiB))
    .option('--cooldown <s>', 'pause between sweep rates', numberIn('--cooldown', 0, 3600),
      coldDefaults.cooldownS)
    .addOption(opt.keep());
  example(cmd, ['dirigent bench cold --rate 500 --duration 10',
    'dirigent bench cold --rates 100,500,1000,2000,2500,3000 --duration 5 --plot cold.html']);
  cmd.action(action(io, async (v: ColdValues) => {
    const { summary, runs } = await runColdBench({
      apiUrl: v.api, proxyUrl: v.proxy, stateDir: v.stateDir, durationS: v.duration,
      registerConcurrency: v.registerConcurrency, connections: v.connections ?? null,
      warmupS: v.warmup, timeoutMs: v.timeoutMs, functionDurationMs: v.functionDurationMs,
      runtime: functionRuntime(v.functionCommand, process.cwd(), v.functionImage), keep: v.keep,
      resources: { cpuMillis: v.cpuMillis, memoryMiB: v.memoryMib },
      cooldownS: v.cooldown, entropy: entropy(), io,
    }, v.rates ?? [v.rate ?? 100], defaultSaturationRule);
    await report(io, v, 'cold starts', summary, runs);
  }));
}

type WarmValues = CommonValues & {
  connections?: number; rate?: number; duration: number; warmup: number; concurrency: number;
  maxScale: number; function?: string; functionDurationMs: number; functionCommand?: string; functionImage?: string;
  cpuMillis: number; memoryMib: number; arrivals: ArrivalProcess; seed: number;
  timeoutMs: number; keep: boolean;
};

function addWarm(bench: Command, io: CommandIo): void {
  const cmd = withCommon(bench.command('warm')
    .description('warm invocations of one function: closed loop, or open loop with --rate'))
    .option('--connections <n>', 'closed loop: concurrent loops (default ' +
      `${warmDefaults.connections}); open loop: pool connections (default ` +
      `${senderDefaults.connections})`, numberIn('--connections', 1, lim.connectionsMax, true))
    .addOption(opt.rate('open loop at this rate instead of a closed loop'))
    .addOption(opt.duration('measured seconds', 10))
    .option('--warmup <s>', 'seconds sent first and not counted', numberIn('--warmup', 0,
      lim.durationSMax), warmDefaults.warmupS)
    .option('--concurrency <n>', 'per-sandbox concurrency of the function (0 = unlimited)',
      numberIn('--concurrency', 0, 100_000, true), warmDefaults.concurrency)
    .option('--max-scale <n>', 'scaling.max of the function', numberIn('--max-scale', 1,
      1_000_000, true), warmDefaults.maxScale)
    .option('--function <name>', 'use this existing function instead of registering one')
    .addOption(opt.functionDurationMs())
    .addOption(opt.functionCommand())
    .addOption(opt.functionImage())
    .addOption(opt.cpuMillis(warmResourceDefaults.cpuMillis))
    .addOption(opt.memoryMiB(warmResourceDefaults.memoryMiB))
    .addOption(opt.arrivals())
    .addOption(opt.seed('seed of exponential arrivals', 1))
    .addOption(opt.timeoutMs(cliDefaults.requestTimeoutMs))
    .addOption(opt.keep());
  example(cmd, ['dirigent bench warm --connections 32 --duration 10',
    'dirigent bench warm --rate 3000 --duration 10 --json']);
  cmd.action(action(io, async (v: WarmValues) => {
    const summary = await runWarmBench({
      apiUrl: v.api, proxyUrl: v.proxy, stateDir: v.stateDir,
      connections: v.connections ?? (v.rate === undefined ? warmDefaults.connections
        : senderDefaults.connections),
      rateRps: v.rate ?? null, arrivals: v.arrivals, seed: v.seed, durationS: v.duration,
      warmupS: v.warmup, concurrency: v.concurrency, maxScale: v.maxScale,
      resources: { cpuMillis: v.cpuMillis, memoryMiB: v.memoryMib },
      functionName: v.function ?? null, functionDurationMs: v.functionDurationMs,
      runtime: functionRuntime(v.functionCommand, process.cwd(), v.functionImage), keep: v.keep,
      timeoutMs: v.timeoutMs, entropy: entropy(), io,
    });
    await report(io, v, 'warm invocations', summary, [summary]);
  }));
}

type RegisterValues = CommonValues & { count: number; concurrency: number; keep: boolean };

function addRegister(bench: Command, io: CommandIo): void {
  const cmd = withCommon(bench.command('register')
    .description('durable function registrations per second'))
    .option('--count <n>', 'functions to register', numberIn('--count', 1, lim.countMax, true),
      registerDefaults.count)
    .option('--concurrency <n>', 'concurrent clients', numberIn('--concurrency', 1,
      lim.concurrencyMax, true), registerDefaults.concurrency)
    .addOption(opt.keep());
  example(cmd, ['dirigent bench register --count 5000 --concurrency 16']);
  cmd.action(action(io, async (v: RegisterValues) => {
    const summary = await runRegisterBench({
      apiUrl: v.api, stateDir: v.stateDir, count: v.count, concurrency: v.concurrency,
      keep: v.keep, entropy: entropy(), io,
    });
    await report(io, v, 'registrations', summary, [summary]);
  }));
}

type GeneratorValues = CommonValues & {
  rate?: number; rates?: number[]; duration: number; warmup: number; connections: number;
  timeoutMs: number; arrivals: ArrivalProcess; seed: number;
};

function addGenerator(bench: Command, io: CommandIo): void {
  const cmd = withCommon(bench.command('generator')
    .description('the load generator against a no-op server in a child process: shows the ' +
      'generator sustains the offered rate (achieved, send lateness, client CPU)'))
    .addOption(opt.rate('offered requests per second (default 1000)'))
    .addOption(opt.rates('sweep, e.g. 5000,10000,20000; stops when the generator falls behind'))
    .addOption(opt.duration('seconds per rate', 5))
    .option('--warmup <s>', 'unrecorded seconds at each rate first', numberIn('--warmup', 0,
      lim.durationSMax), generatorDefaults.warmupS)
    .addOption(opt.connections('keep-alive connections', senderDefaults.connections))
    .addOption(opt.arrivals())
    .addOption(opt.seed('seed of exponential arrivals', 1))
    .addOption(opt.timeoutMs(cliDefaults.requestTimeoutMs));
  example(cmd, ['dirigent bench generator --rate 10000 --duration 5',
    'dirigent bench generator --rates 2000,5000,10000,15000,20000 --plot gen.html']);
  cmd.action(action(io, async (v: GeneratorValues) => {
    const { summary, runs } = await runGeneratorBench({
      rateRps: v.rate ?? 1000, durationS: v.duration, warmupS: v.warmup,
      connections: v.connections,
      timeoutMs: v.timeoutMs, arrivals: v.arrivals, seed: v.seed, stateDir: v.stateDir, io,
    }, v.rates ?? null, defaultSaturationRule);
    await report(io, v, 'generator vs no-op server', summary, runs);
  }));
}

/** Prints the summary (human or JSON) and writes the plot when asked. */
async function report(io: CommandIo, v: CommonValues, title: string, summary: BenchSummary,
  runs: BenchSummary[]): Promise<void> {
  const human = runs.length > 1 ? formatSweep(runs, sweepVerdict(summary)) : formatBench(summary);
  emit(io, v.json, summary, human);
  failOnErrors(io, `bench ${summary.bench}`, summary);
  if (v.plot === undefined) return;
  const spec: PlotSpec = runs.length > 1
    ? sweepPlot(`${title}: latency vs offered load`, runs.map((r) => ({
      offeredRps: r.offeredRps ?? 0, latencyMs: r.latencyMs })))
    : cdfPlot(`${title}: latency CDF`, 'latency (ms)',
      [{ name: 'latency', points: cdfOf(summary) }]);
  await writePlot(v.plot, spec, runsTable(runs));
}

/** The numbers are printed either way (they show what failed); the exit code tells scripts. */
function failOnErrors(io: CommandIo, label: string,
  summary: { count: number; errors: Record<string, number> }): void {
  const why = errorRateVerdict(summary);
  if (why === null) return;
  io.err(`error: ${label}: ${why}`);
  process.exitCode = 1;
}

function sweepVerdict(s: BenchSummary): string {
  const at = s.saturatedAtRps as number | null;
  if (at === null) return 'not saturated at any swept rate';
  return `saturated at ${at} rps (${(s.saturationReasons as string[]).join('; ')}); ` +
    `highest sustained: ${s.maxSustainedRps ?? 'none'} rps`;
}

function runsTable(runs: BenchSummary[]) {
  return {
    header: ['offered rps', 'achieved rps', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'count'],
    rows: runs.map((r) => [String(r.offeredRps ?? 'closed'), String(r.achievedRps),
      String(r.latencyMs.p50), String(r.latencyMs.p90), String(r.latencyMs.p99),
      String(r.latencyMs.max), String(r.count)]),
  };
}

type TraceValues = CommonValues & {
  warmupMinutes: number; minutes: number; iat: ReturnType<typeof iatOption>; seed: number;
  speed: number; functionCommand?: string; functionImage?: string; functionWorkdir: string; registerConcurrency: number;
  cpuMillis?: number; memoryMib?: number; keepAliveWindow?: number; scaling?: Record<string, unknown>;
  connections: number; timeoutMs: number; keep: boolean; out?: string; dryRun: boolean;
};

function addTrace(loadgen: Command, io: CommandIo): void {
  const cmd = withCommon(loadgen.command('trace')
    .description('replay an InVitro-format trace (invocations.csv, durations.csv, memory.csv)')
    .argument('<dir>', 'trace directory'))
    .option('--warmup-minutes <n>', 'warm-up minutes (phase 1, excluded from slowdown)',
      numberIn('--warmup-minutes', 0, lim.minutesMax, true), traceDefaults.warmupMinutes)
    .option('--minutes <n>', 'experiment minutes after the warm-up', numberIn('--minutes', 1,
      lim.minutesMax, true), traceDefaults.minutes)
    .addOption(new Option('--iat <dist>', 'equidistant | uniform | exponential, optionally _shift')
      .argParser(iatOption).default(iatOption(traceDefaults.iat), traceDefaults.iat))
    .addOption(opt.seed('seed of IATs and runtime/memory draws', traceDefaults.seed))
    .option('--speed <k>', 'time compression: a trace minute lasts 60/k s (durations are not ' +
      'compressed)', numberIn('--speed', 0.001, lim.speedMax), traceDefaults.speed)
    .addOption(opt.functionCommand())
    .addOption(opt.functionImage())
    .addOption(new Option('--function-workdir <dir>', 'working directory of --function-command')
      .default(process.cwd(), 'the current directory'))
    .option('--cpu-millis <m>', 'override InVitro\'s CPU request (1000m/10) of every function',
      numberIn('--cpu-millis', 1, 1_000_000, true))
    .option('--memory-mib <n>', 'override InVitro\'s memory request (pct100/10) of every function',
      numberIn('--memory-mib', 1, 4_194_304, true))
    .option('--keep-alive-window <s>', 'register every function with the hybrid histogram keep-alive over ' +
      'this many seconds (scaling.keepAliveWindowS; default: the cluster\'s, off)',
      numberIn('--keep-alive-window', 0, scalingLimits.keepAliveWindowS[1]))
    .option('--scaling <json>', 'scaling knobs of every function as JSON, e.g. \'{"scaleDownDelayS":60}\' ' +
      '(default: the cluster\'s); --keep-alive-window wins over it', scalingJsonOption)
    .addOption(opt.registerConcurrency(coldDefaults.registerConcurrency))
    .addOption(opt.connections('keep-alive connections to the data plane',
      traceDefaults.connections))
    .addOption(opt.timeoutMs(traceDefaults.timeoutMs))
    .option('--out <file.csv>', 'per-invocation CSV')
    .addOption(opt.keep())
    .option('--dry-run', 'parse and plan only; print what would be sent', false);
  example(cmd, [
    'dirigent loadgen trace ../shared/traces/dirigent-samples_100 --minutes 30 ' +
      '--iat equidistant --out run.csv --plot run.html',
    'dirigent loadgen trace ./traces/invitro-example --minutes 5 --speed 10 ' +
      '--function-command "node examples/trace-function/server.js"',
  ]);
  cmd.action(action(io, async (dir: string, v: TraceValues) => {
    if (v.dryRun) return dryRun(io, dir, v);
    const { summary, rows } = await runTraceReplay({
      dir, apiUrl: v.api, proxyUrl: v.proxy, stateDir: v.stateDir,
      warmupMinutes: v.warmupMinutes, minutes: v.minutes, iat: v.iat, seed: v.seed,
      speed: v.speed, runtime: functionRuntime(v.functionCommand, v.functionWorkdir, v.functionImage),
      registerConcurrency: v.registerConcurrency, connections: v.connections,
      resourceOverride: { cpuMillis: v.cpuMillis, memoryMiB: v.memoryMib },
      scaling: { ...v.scaling, ...(v.keepAliveWindow === undefined ? {} : { keepAliveWindowS: v.keepAliveWindow }) },
      timeoutMs: v.timeoutMs, keep: v.keep, outCsv: v.out ?? null, entropy: entropy(), io,
    });
    emit(io, v.json, summary, formatTrace(summary, summary.cpuSeconds, summary.eventLoopDelayMs));
    failOnErrors(io, `bench ${summary.bench}`, summary);
    if (v.plot === undefined) return;
    await writePlot(v.plot, cdfPlot('trace replay: per-invocation scheduling latency CDF',
      'scheduling latency (ms)', [{ name: 'response − duration',
        points: cdfFromSorted(schedulingLatenciesSortedMs(rows)) }]));
  }));
}

async function dryRun(io: CommandIo, dir: string, v: TraceValues): Promise<void> {
  const { functions, plan } = await loadTracePlan({ dir, ...v });
  const perMinute = new Array<number>(plan.minutes).fill(0);
  for (let i = 0; i < plan.count; i++) perMinute[plan.minute[i]]++;
  const summary = { trace: dir, functions: functions.length, invocations: plan.count,
    perMinute, lastSendS: plan.count === 0 ? 0 : plan.timeUs[plan.count - 1] / 1e6 / v.speed };
  emit(io, v.json, summary, `${dir}: ${functions.length} functions, ${plan.count} invocations ` +
    `in ${plan.minutes} minutes; per minute: ${perMinute.join(' ')}`);
}

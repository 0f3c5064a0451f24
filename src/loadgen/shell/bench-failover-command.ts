/**
 * @module loadgen/shell/bench-failover-command
 * Commander wiring of `dirigent bench failover` (kept apart from commands.ts so that file only
 * registers it). An entry point: reads the clock for unique function names.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { bucketTable, failoverPlot, formatFailover, type KillTarget } from '../core/failover-report.js';
import { failoverDefaults } from '../core/failover.js';
import { commonOptions, functionRuntime, numberIn, opt, optionLimits, type CommonValues } from '../options.js';
import { failoverBenchDefaults as d, runFailoverBench } from './bench-failover.js';
import { senderDefaults } from './http-sender.js';
import { emit, writePlot, type CommandIo } from './output.js';

const killTargets: readonly KillTarget[] = ['cp-leader', 'dp', 'worker'];

function killOption(value: string): KillTarget {
  const t = killTargets.find((k) => k === value);
  if (t === undefined) {
    throw new InvalidArgumentError(`--kill: ${JSON.stringify(value)} is not one of ` +
      `${killTargets.join(', ')}`);
  }
  return t;
}

function bucketOption(value: string): number {
  if (value !== '100' && value !== '250') {
    throw new InvalidArgumentError(`--bucket-ms: ${JSON.stringify(value)} is not 100 or 250`);
  }
  return Number(value);
}

type FailoverValues = CommonValues & {
  kill: KillTarget; rate: number; coldRate: number; duration: number; killAt?: number;
  functions: number; bucketMs: number; stableMs: number; connections: number; timeoutMs: number;
  functionCommand?: string; keep: boolean;
};

export function addFailover(bench: Command, io: CommandIo): void {
  const cmd = bench.command('failover')
    .description('SIGKILL a component under warm + cold load and measure failures and recovery ' +
      '(run against `dirigent up`, which restarts it)');
  for (const option of commonOptions()) cmd.addOption(option);
  cmd.addOption(new Option('--kill <target>', 'cp-leader | dp | worker').argParser(killOption)
    .makeOptionMandatory())
    .addOption(opt.rate('warm requests per second').default(d.rateRps))
    .option('--cold-rate <rps>', 'cold starts per second on fresh functions (0 = none)',
      numberIn('--cold-rate', 0, optionLimits.rateRpsMax), d.coldRateRps)
    .addOption(opt.duration('seconds of sending', d.durationS))
    .option('--kill-at <s>', 'seconds after the start (default: a third of --duration)',
      numberIn('--kill-at', 0, optionLimits.durationSMax))
    .option('--functions <n>', 'warm functions (min 1 sandbox each)',
      numberIn('--functions', 1, 10_000, true), d.warmFunctions)
    .addOption(new Option('--bucket-ms <ms>', 'plot and JSON bucket: 100 or 250')
      .argParser(bucketOption).default(failoverDefaults.bucketMs))
    .option('--stable-ms <ms>', 'failure-free stretch that counts as recovered',
      numberIn('--stable-ms', 1, 600_000, true), failoverDefaults.stableMs)
    .addOption(opt.connections('keep-alive connections', senderDefaults.connections))
    .addOption(opt.timeoutMs(d.timeoutMs))
    .addOption(opt.functionCommand())
    .addOption(opt.keep());
  cmd.addHelpText('after', '\nExamples:\n  $ dirigent bench failover --kill cp-leader --rate 500 ' +
    '--cold-rate 10 --duration 15 --plot leader.html\n');
  cmd.action(async (v: FailoverValues) => {
    try {
      await run(io, v);
    } catch (e) {
      io.err(`error: ${(e as Error).message}`);
      process.exitCode = 1;
    }
  });
}

async function run(io: CommandIo, v: FailoverValues): Promise<void> {
  const killAtS = v.killAt ?? v.duration / 3;
  if (killAtS >= v.duration) throw new Error(`--kill-at ${killAtS} must be before --duration`);
  const summary = await runFailoverBench({
    target: v.kill, apiUrl: v.api, proxyUrl: v.proxy, stateDir: v.stateDir, rateRps: v.rate,
    coldRateRps: v.coldRate, durationS: v.duration, killAtS, warmFunctions: v.functions,
    bucketMs: v.bucketMs, stableMs: v.stableMs, connections: v.connections,
    timeoutMs: v.timeoutMs, runtime: functionRuntime(v.functionCommand, process.cwd()),
    keep: v.keep, entropy: Date.now() * 1000 + (process.pid % 1000), io,
  });
  // Failures caused by the kill are the measurement: the exit code stays 0.
  emit(io, v.json, summary, formatFailover(summary));
  if (v.plot !== undefined) await writePlot(v.plot, failoverPlot(summary), bucketTable(summary));
}

/**
 * @module loadgen/shell/bench-async-command
 * Commander wiring of `dirigent bench async` (kept apart from commands.ts so that file only
 * registers it).
 */
import type { Command } from 'commander';
import { formatAsyncBench } from '../core/async-bench.js';
import { commonOptions, numberIn, opt, optionLimits, type CommonValues } from '../options.js';
import { asyncBenchDefaults as d, runAsyncBench } from './bench-async.js';
import { emit, type CommandIo } from './output.js';

type AsyncValues = CommonValues & {
  rate: number; duration: number; warmup: number; function: string; connections: number; timeoutMs: number; drain: number; bodyBytes: number;
};

export function addAsync(bench: Command, io: CommandIo): void {
  const cmd = bench.command('async')
    .description('open-loop async submits (Prefer: respond-async) to one deployed function: durable ' +
      'accept rate and latency, completion latency (by callback), CPU per invocation');
  for (const option of commonOptions()) cmd.addOption(option);
  cmd.addOption(opt.rate('offered submits per second').makeOptionMandatory())
    .addOption(opt.duration('seconds of sending', 10))
    .requiredOption('--function <name>', 'the deployed function to invoke (Host <name>)')
    .addOption(opt.connections('pool connections to the data plane', d.connections))
    .addOption(opt.timeoutMs(d.timeoutMs))
    .option('--warmup <s>', 'seconds of unmeasured submits at the same rate first',
      numberIn('--warmup', 0, optionLimits.durationSMax), d.warmupS)
    .option('--drain <s>', 'seconds to wait for outstanding completions after the last send',
      numberIn('--drain', 0, optionLimits.durationSMax), d.drainS)
    .option('--body-bytes <n>', 'request body size', numberIn('--body-bytes', 0, 262_144, true), d.bodyBytes)
    .addHelpText('after', '\nExamples:\n  $ dirigent bench async --rate 5000 --duration 10 --function hello\n' +
      '  $ dirigent bench async --rate 1000 --duration 30 --function trace --json\n');
  cmd.action(async (v: AsyncValues) => {
    try {
      const summary = await runAsyncBench({
        proxyUrl: v.proxy, stateDir: v.stateDir, functionName: v.function, rateRps: v.rate, durationS: v.duration, warmupS: v.warmup,
        connections: v.connections, timeoutMs: v.timeoutMs, drainS: v.drain, bodyBytes: v.bodyBytes,
      });
      emit(io, v.json, summary, formatAsyncBench(summary));
      if (summary.accepted === 0) process.exitCode = 1;
    } catch (e) {
      io.err(`error: ${(e as Error).message}`);
      process.exitCode = 1;
    }
  });
}

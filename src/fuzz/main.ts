/**
 * @module fuzz/main
 * `npm run fuzz -- --seconds S [--seed N] [--concurrency C] [--replay I]`: runs the live fuzzer
 * (fuzz/run) and exits non-zero on the first failure, printing the input and how to replay it.
 */
import { runFuzz } from './run.js';

/** Inputs in flight at once unless --concurrency says otherwise. */
const defaultConcurrency = 8;
const defaultSeconds = 10;

function parseArgs(argv: string[]): { seconds: number; seed: number; concurrency: number; replay?: number } {
  const opts: Record<string, number> = {};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]!.replace(/^--/, '');
    const value = Number(argv[i + 1]);
    if (!['seconds', 'seed', 'concurrency', 'replay'].includes(key) || !Number.isFinite(value) || value < 0) {
      throw new Error(`usage: npm run fuzz -- [--seconds S] [--seed N] [--concurrency C] [--replay I] (bad ${argv[i]} ${argv[i + 1]})`);
    }
    opts[key] = value;
  }
  return {
    seconds: opts.seconds ?? defaultSeconds,
    seed: opts.seed ?? Math.floor(Math.random() * 2 ** 31),
    concurrency: Math.max(1, Math.floor(opts.concurrency ?? defaultConcurrency)),
    ...(opts.replay === undefined ? {} : { replay: Math.floor(opts.replay) }),
  };
}

const args = parseArgs(process.argv.slice(2));
const result = await runFuzz(args);
process.exit(result.failure ? 1 : 0);

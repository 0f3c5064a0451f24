/**
 * @module sim/run
 * CLI: `node dist/sim/run.js --seed N [--ticks T]` replays one seed; `--swarm --seconds S`
 * runs random seeds until the budget is spent, printing each failing seed; `--churn` adds
 * function changes and DP restarts under traffic (sim/churn.ts); `--leader-changes` adds leader
 * kills and paused old leaders that act late (sim/leader.ts). Exit code 1 on any
 * failure. Only this file reads real time and Math.random, and only to choose swarm seeds.
 */
import { optionsForSeed, runSeed } from './run-seed.js';

interface Args {
  seed: number | null;
  ticks: number | null;
  swarm: boolean;
  seconds: number;
  /** Function changes and DP restarts under traffic (sim/churn.ts). */
  churn: boolean;
  /** Leader kills and paused old leaders (sim/leader.ts). */
  leaderChanges: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { seed: null, ticks: null, swarm: false, seconds: 60, churn: false, leaderChanges: false };
  for (let i = 0; i < argv.length; i += 1) {
    const [flag, inline] = argv[i]!.split('=', 2) as [string, string | undefined];
    const value = (): number => {
      const v = Number(inline ?? argv[++i]);
      if (!Number.isFinite(v)) throw new Error(`${flag} needs a number`);
      return v;
    };
    if (flag === '--seed') args.seed = value();
    else if (flag === '--ticks') args.ticks = value();
    else if (flag === '--seconds') args.seconds = value();
    else if (flag === '--swarm') args.swarm = true;
    else if (flag === '--churn') args.churn = true;
    else if (flag === '--leader-changes') args.leaderChanges = true;
    else {
      const usage = '--seed N [--ticks T] [--churn] [--leader-changes] | --swarm --seconds S [--churn] [--leader-changes]';
      throw new Error(`unknown flag ${flag}; usage: ${usage}`);
    }
  }
  return args;
}

type Mix = { churn: boolean; leaderChanges: boolean };

function runOne(seed: number, ticks: number | null, mix: Mix): boolean {
  const options = optionsForSeed(seed, mix);
  if (ticks !== null) {
    // --ticks bounds the whole run in steps; the quiet phase keeps its length.
    options.faultPhaseMs = Math.max(0, ticks * options.stepMs - options.quietMs);
  }
  const r = runSeed(options);
  console.log(r.summary);
  return r.ok;
}

function swarm(seconds: number, mix: Mix): boolean {
  const endMs = Date.now() + seconds * 1000;
  let runs = 0;
  let failures = 0;
  while (Date.now() < endMs) {
    const seed = Math.floor(Math.random() * 2 ** 31);
    const options = optionsForSeed(seed, mix);
    const r = runSeed(options);
    runs += 1;
    if (!r.ok) {
      failures += 1;
      console.log(r.summary);
    }
  }
  console.log(`swarm: ${runs} seeds, ${failures} failed, ${seconds} s`);
  return failures === 0;
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  let ok: boolean;
  const mix = { churn: args.churn, leaderChanges: args.leaderChanges };
  if (args.swarm) ok = swarm(args.seconds, mix);
  else ok = runOne(args.seed ?? 1, args.ticks, mix);
  process.exitCode = ok ? 0 : 1;
}

main();

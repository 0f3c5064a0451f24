/**
 * @module fuzz/run
 * The live fuzzer: starts its own cluster (CP, DP, one emulated worker on free loopback ports),
 * seeds two functions, then for a while sends generated management calls, invocations and raw
 * bytes, and checks that no component exits, every management reply is 2xx/4xx with a JSON body,
 * and memory stays bounded. Inputs come from one seed in a fixed order, so a failure printed with
 * its seed and index is replayed with `--seed S --replay I`.
 */
import fc from 'fast-check';
import { TestCluster, alive } from '../integration/harness.js';
import { anyInput, type FuzzInput } from './inputs.js';
import { checkManagementReply, checkRss, rssBytes } from './checks.js';
import { sendHttp, sendRaw, type SendResult } from './send.js';

/** Inputs drawn from the generator at a time. */
const inputBatchSize = 200;
const transportErrorsShown = 5;
/** How often the component processes are checked for life and memory. */
export const healthCheckPeriodMs = 1_000;
export const seedFunctions = ['fz-seed-1', 'fz-seed-2'] as const;

export interface FuzzOptions {
  seconds: number;
  seed: number;
  /** Inputs in flight at once. */
  concurrency: number;
  /** Send only the input with this index (a replay of a printed failure). */
  replay?: number;
  out?: (line: string) => void;
}

export interface FuzzFailure {
  seed: number;
  index: number | null;
  input: FuzzInput | null;
  why: string;
}

export interface FuzzResult {
  sent: number;
  counts: Record<string, number>;
  /** The first few transport errors, for the report (they are not failures by themselves). */
  transportErrors: string[];
  /** Resident memory per component in MiB: at start and the highest sample. */
  rssMiB: Record<string, { start: number; max: number }>;
  failure: FuzzFailure | null;
}

/** The seeded, ordered stream of inputs: input i is the same for every run with the same seed. */
export class InputStream {
  private batch: FuzzInput[] = [];
  private batchNo = -1;
  constructor(private readonly seed: number, private readonly arb: fc.Arbitrary<FuzzInput>) {}

  at(index: number): FuzzInput {
    const no = Math.floor(index / inputBatchSize);
    if (no !== this.batchNo) {
      this.batch = fc.sample(this.arb, { seed: this.seed + no * 7_919, numRuns: inputBatchSize });
      this.batchNo = no;
    }
    return this.batch[index % inputBatchSize]!;
  }
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzResult> {
  const out = opts.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const c = new TestCluster({ workers: 1, runtime: 'emulated' });
  const result: FuzzResult = { sent: 0, counts: {}, transportErrors: [], rssMiB: {}, failure: null };
  try {
    await c.start();
    for (const name of seedFunctions) {
      const r = await c.deploy({ name, image: 'emulated' });
      if (r.status !== 201) throw new Error(`seeding ${name}: ${r.status} ${r.text}`);
    }
    out(`fuzz: seed ${opts.seed}, ${opts.seconds} s, cluster api ${c.api} proxy ${c.proxy}`);
    const baseRss = new Map(c.procs.map((p) => [p.proc.pid!, rssBytes(p.proc.pid!) ?? 0]));
    await drive(c, opts, result, baseRss);
    result.failure ??= checkProcs(c, baseRss, opts.seed, result);
  } catch (e) {
    result.failure ??= { seed: opts.seed, index: null, input: null, why: `fuzzer error: ${String(e)}` };
  } finally {
    if (result.failure) out(`fuzz: component logs\n${c.dumpLogs()}`);
    await c.stop();
  }
  report(result, out);
  return result;
}

async function drive(c: TestCluster, opts: FuzzOptions, result: FuzzResult, baseRss: Map<number, number>): Promise<void> {
  const stream = new InputStream(opts.seed, anyInput(seedFunctions));
  const deadline = Date.now() + opts.seconds * 1000;
  let next = opts.replay ?? 0;
  const last = opts.replay ?? Number.POSITIVE_INFINITY;
  const monitor = setInterval(() => {
    result.failure ??= checkProcs(c, baseRss, opts.seed, result);
  }, healthCheckPeriodMs);
  const lane = async (): Promise<void> => {
    while (!result.failure && Date.now() < deadline && next <= last) {
      const index = next;
      next += 1;
      const input = stream.at(index);
      const why = await sendOne(c, withToken(c, input, index), result);
      if (why) result.failure ??= { seed: opts.seed, index, input, why };
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.concurrency }, lane));
  } finally {
    clearInterval(monitor);
  }
}

/** One management input in this many goes without a token (401s); the rest reach validation. */
const tokenlessEvery = 8;

/** Management inputs carry the admin token, except every `tokenlessEvery`-th (by index, so replays match). */
function withToken(c: TestCluster, input: FuzzInput, index: number): FuzzInput {
  if (input.kind !== 'management' || index % tokenlessEvery === 0 || 'authorization' in input.headers) return input;
  return { ...input, headers: { ...input.headers, authorization: `Bearer ${c.adminToken()}` } };
}

async function sendOne(c: TestCluster, input: FuzzInput, result: FuzzResult): Promise<string | null> {
  result.sent += 1;
  if (input.kind === 'raw') {
    const port = { api: c.apiPort, proxy: c.proxyPort, internal: c.internalPort }[input.target];
    await sendRaw(port, input);
    count(result, 'raw');
    return null;
  }
  const base = input.kind === 'management' ? c.api : c.proxy;
  const r: SendResult = await sendHttp(base, input);
  count(result, `${input.kind}.${r.kind === 'reply' ? String(r.reply.status) : r.kind}`);
  if (r.kind === 'transport' && result.transportErrors.length < transportErrorsShown) result.transportErrors.push(`${r.error.replace(/\s+/g, ' ').slice(0, 200)} on ${JSON.stringify(input).slice(0, 400)}`);
  if (input.kind !== 'management') return null;
  if (r.kind === 'transport' && /timeout/i.test(r.error)) return `management call got no answer: ${r.error}`;
  if (r.kind !== 'reply') return null;
  const bad = checkManagementReply(input.method, input.path, r.reply);
  return bad ? `${bad}; reply ${r.reply.status} ${JSON.stringify(r.reply.text.slice(0, 300))}` : null;
}

function count(result: FuzzResult, key: string): void {
  result.counts[key] = (result.counts[key] ?? 0) + 1;
}

function checkProcs(c: TestCluster, base: Map<number, number>, seed: number, result: FuzzResult): FuzzFailure | null {
  for (const p of c.procs) {
    const pid = p.proc.pid!;
    if (p.proc.exitCode !== null || p.proc.signalCode !== null || !alive(pid)) {
      return { seed, index: null, input: null, why: `${p.name} (pid ${pid}) exited: code ${p.proc.exitCode} signal ${p.proc.signalCode}` };
    }
    const now = rssBytes(pid);
    if (now !== null) {
      const seen = (result.rssMiB[p.name] ??= { start: toMiB(base.get(pid) ?? now), max: 0 });
      seen.max = Math.max(seen.max, toMiB(now));
    }
    const bad = now === null ? null : checkRss(base.get(pid) ?? now, now);
    if (bad) return { seed, index: null, input: null, why: `${p.name} (pid ${pid}): ${bad}` };
  }
  return null;
}

function toMiB(bytes: number): number {
  return Math.round(bytes / 1024 / 1024);
}

function report(result: FuzzResult, out: (l: string) => void): void {
  const counts = Object.entries(result.counts).sort().map(([k, v]) => `${k}=${v}`).join(' ');
  out(`fuzz: sent ${result.sent} inputs: ${counts}`);
  const rss = Object.entries(result.rssMiB).map(([name, r]) => `${name} ${r.start}->${r.max}`).join(', ');
  out(`fuzz: RSS MiB (start->max): ${rss}`);
  for (const e of result.transportErrors) out(`fuzz: transport error (not a failure by itself): ${e}`);
  const f = result.failure;
  if (!f) {
    out('fuzz: ok');
    return;
  }
  out(`fuzz: FAILED: ${f.why}`);
  if (f.input) out(`fuzz: input #${f.index}: ${JSON.stringify(f.input)}`);
  out(`fuzz: replay with: npm run fuzz -- --seed ${f.seed}${f.index === null ? '' : ` --replay ${f.index}`}`);
}

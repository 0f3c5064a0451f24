/**
 * @module loadgen/shell/bench-register
 * `bench register`: durable registrations per second. N functions (no sandboxes: min scale 0
 * and no traffic) are registered by C concurrent clients; each call's latency is recorded.
 * Then they are deleted, and the deletion rate is reported too.
 */
import { benchFunctionName, registerBenchBody, runPrefix } from '../core/functions.js';
import { round, summarizeMs, type BenchSummary } from '../core/stats.js';
import { startCpuSampler } from './cpu.js';
import { loopDelayFields } from './loop-delay.js';
import { BenchSetupError, deleteQuietly } from './lifecycle.js';
import {
  benchToken,
  createManagementClient,
  describeOutcome,
  prewarmManagement,
  registerAll,
} from './management.js';
import type { CommandIo } from './output.js';
import { startProgress } from './progress.js';

export const registerDefaults = Object.freeze({
  count: 1000,
  concurrency: 16,
});

export interface RegisterBenchOptions {
  apiUrl: string;
  stateDir: string;
  count: number;
  concurrency: number;
  keep: boolean;
  entropy: number;
  io: CommandIo;
}

export async function runRegisterBench(o: RegisterBenchOptions): Promise<BenchSummary> {
  const mgmt = createManagementClient(o.apiUrl, o.concurrency, benchToken(o.stateDir));
  const prefix = runPrefix('reg', o.entropy);
  const bodies = Array.from({ length: o.count },
    (_, i) => registerBenchBody(benchFunctionName(prefix, i)));
  try {
    await prewarmManagement(mgmt, o.concurrency);
    let done = 0;
    const progress = startProgress('registering', o.count, () => done, o.io.progressStream);
    const cpu = await startCpuSampler(o.stateDir);
    const result = await registerAll(mgmt, bodies, o.concurrency, () => done++);
    const sample = await cpu.finish();
    progress.stop();
    const unreachable = result.failures.find((f) => f.outcome.kind === 'unreachable');
    if (unreachable !== undefined && result.ok === 0) {
      const why = describeOutcome(unreachable.outcome);
      throw new BenchSetupError(`control plane unreachable: ${why}`);
    }
    const errors: Record<string, number> = {};
    for (const f of result.failures) {
      const key = f.outcome.kind === 'rejected' ? String(f.outcome.status) : f.outcome.kind;
      errors[key] = (errors[key] ?? 0) + 1;
    }
    const summary: BenchSummary = {
      bench: 'register',
      offeredRps: null,
      achievedRps: round((result.ok * 1000) / result.elapsedMs, 2),
      latencyMs: summarizeMs(result.latency),
      errors,
      count: o.count,
      ok: result.ok,
      durationS: round(result.elapsedMs / 1000, 3),
      cpuSeconds: sample.cpu,
      concurrency: o.concurrency,
    };
    if (sample.note !== '') summary.cpuNote = sample.note;
    Object.assign(summary, loopDelayFields(sample.loopDelay));
    if (!o.keep) {
      const deleted = await deleteQuietly({ registerConcurrency: o.concurrency, io: o.io }, mgmt,
        bodies.map((b) => b.name));
      summary.deletesPerSecond = round((deleted.ok * 1000) / deleted.elapsedMs, 2);
      summary.deleteLatencyMs = summarizeMs(deleted.latency);
    }
    return summary;
  } finally {
    await mgmt.close();
  }
}

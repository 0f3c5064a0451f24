/**
 * @module loadgen/shell/lifecycle
 * Creating and removing a run's functions around a measurement, with progress on a TTY.
 * Registration is all-or-nothing: a partial set would turn the missing functions' requests
 * into 404s and silently change what is measured.
 */
import type { RegistrationBody } from '../core/functions.js';
import {
  deleteAll,
  describeOutcome,
  registerAll,
  type BulkResult,
  type ManagementClient,
} from './management.js';
import type { CommandIo } from './output.js';
import { startProgress } from './progress.js';

/** A setup step failed; the message says which function and why. */
export class BenchSetupError extends Error {
  override name = 'BenchSetupError';
}

export interface LifecycleOptions {
  registerConcurrency: number;
  io: CommandIo;
}

/** Registers every body; on any failure deletes what was created and throws. */
export async function registerOrThrow(o: LifecycleOptions, mgmt: ManagementClient,
  bodies: readonly RegistrationBody[]): Promise<BulkResult> {
  let done = 0;
  const progress = startProgress('registering', bodies.length, () => done, o.io.progressStream);
  const result = await registerAll(mgmt, bodies, o.registerConcurrency, () => done++);
  progress.stop();
  if (result.failures.length === 0) return result;
  const failed = new Set(result.failures.map((f) => f.name));
  const created = bodies.map((b) => b.name).filter((n) => !failed.has(n));
  await deleteAll(mgmt, created, o.registerConcurrency);
  const first = result.failures[0];
  throw new BenchSetupError(`registration failed for ${result.failures.length} of ` +
    `${bodies.length} functions; first: ${first.name}: ${describeOutcome(first.outcome)}`);
}

/** Deletes the run's functions; failures are reported on stderr, not thrown. */
export async function deleteQuietly(o: LifecycleOptions, mgmt: ManagementClient,
  names: readonly string[]): Promise<BulkResult> {
  let done = 0;
  const progress = startProgress('deleting', names.length, () => done, o.io.progressStream);
  const result = await deleteAll(mgmt, names, o.registerConcurrency, () => done++);
  progress.stop();
  if (result.failures.length > 0) {
    const first = result.failures[0];
    o.io.err(`warning: ${result.failures.length} deletions failed; first: ${first.name}: ` +
      `${describeOutcome(first.outcome)}`);
  }
  return result;
}

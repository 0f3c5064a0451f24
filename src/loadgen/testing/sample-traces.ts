/**
 * @module loadgen/testing/sample-traces
 * Test support: where the shipped InVitro samples live ($DIRIGENT_TRACES_DIR, else
 * `shared/traces` beside the repository, else /work/shared/traces) and a reader for one sample.
 * Only tests import this.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TraceFiles } from '../core/trace-csv.js';

/** dist/loadgen/testing -> the repository -> its sibling shared/traces. */
const besideRepo = fileURLToPath(new URL('../../../../shared/traces', import.meta.url));
/** Where this workplace keeps shared/ when the repository is checked out elsewhere. */
const workplaceShared = '/work/shared/traces';

export const tracesDir =
  process.env.DIRIGENT_TRACES_DIR ??
  [besideRepo, workplaceShared].find((dir) => existsSync(dir)) ??
  besideRepo;

/**
 * `false` when the samples exist, else the skip reason node:test prints. In CI nothing may be
 * skipped: there a missing sample fails the tests instead.
 */
export const samplesSkip: false | string =
  existsSync(tracesDir) || process.env.CI === 'true'
    ? false
    : `no trace samples at ${tracesDir}; set DIRIGENT_TRACES_DIR to the shared/traces folder`;

export function readSample(name: string): TraceFiles {
  const read = (f: string) => readFileSync(join(tracesDir, name, f), 'utf8');
  return { invocations: read('invocations.csv'), durations: read('durations.csv'),
    memory: read('memory.csv') };
}

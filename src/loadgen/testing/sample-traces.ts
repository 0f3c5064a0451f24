/**
 * @module loadgen/testing/sample-traces
 * Test support: where the shipped InVitro samples live ($DIRIGENT_TRACES_DIR, default
 * /work/shared/traces) and a reader for one sample. Only tests import this.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TraceFiles } from '../core/trace-csv.js';

export const tracesDir = process.env.DIRIGENT_TRACES_DIR ?? '/work/shared/traces';

/** `false` when the samples exist, else the skip reason node:test prints. */
export const samplesSkip: false | string = existsSync(tracesDir)
  ? false
  : `no trace samples at ${tracesDir}`;

export function readSample(name: string): TraceFiles {
  const read = (f: string) => readFileSync(join(tracesDir, name, f), 'utf8');
  return { invocations: read('invocations.csv'), durations: read('durations.csv'),
    memory: read('memory.csv') };
}

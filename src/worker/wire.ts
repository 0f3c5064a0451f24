/**
 * @module worker/wire
 * The plain FunctionSpecMsg a worker receives (decoded by the codec), as the domain FunctionSpec its
 * runtimes take. Scaling knobs do not travel to workers; defaults fill them.
 */
import type { FunctionSpecMsg } from '../api/cluster.js';
import type { FunctionSpec } from '../api/types.js';
import { scalingDefaults } from '../config/defaults.js';

export function runtimeSpec(w: FunctionSpecMsg): FunctionSpec {
  return {
    name: w.name,
    image: w.image,
    command: [...w.command],
    workingDir: w.workingDir,
    port: w.port,
    env: { ...w.env },
    egress: w.egress,
    auth: w.auth === 'token' ? 'token' : 'none',
    resources: { cpuMillis: w.resources?.cpuMillis ?? 0, memoryMiB: w.resources?.memoryMib ?? 0 },
    concurrency: w.concurrency,
    timeoutMs: w.timeoutMs,
    scaling: { ...scalingDefaults },
  };
}

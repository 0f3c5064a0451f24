/**
 * @module worker/wire
 * The wire FunctionSpec a worker receives, as the domain FunctionSpec its runtimes take.
 * Scaling knobs do not travel to workers; defaults fill them.
 */
import type { FunctionSpec } from '../api/types.js';
import { scalingDefaults } from '../config/defaults.js';
import type { FunctionSpec as WireSpec } from '../gen/dirigent/v1/cluster_pb.js';

export function fromWireSpec(w: WireSpec): FunctionSpec {
  return {
    name: w.name,
    image: w.image,
    command: [...w.command],
    workingDir: w.workingDir,
    port: w.port,
    env: { ...w.env },
    resources: { cpuMillis: w.resources?.cpuMillis ?? 0, memoryMiB: w.resources?.memoryMib ?? 0 },
    concurrency: w.concurrency,
    timeoutMs: w.timeoutMs,
    scaling: { ...scalingDefaults },
  };
}

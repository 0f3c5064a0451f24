/**
 * @module worker/wire
 * The plain FunctionSpecMsg a worker receives (decoded by the codec), as the domain FunctionSpec its
 * runtimes take. Scaling knobs do not travel to workers; defaults fill them.
 */
import type { FunctionSpecMsg } from '../api/cluster.js';
import type { FunctionSpec } from '../api/types.js';
import { scalingDefaults } from '../config/defaults.js';

/*
 * A creation's spec is read, never written, by every runtime: what is the same for most functions
 * (no command or environment for an image or an emulated function, the scaling defaults) is one
 * frozen object shared by all, not a copy per creation (6 % of the emulator's allocation at 4,000
 * cold starts/s; BENCHMARKS.md, "Fewer bytes per cold start").
 */
const noCommand: readonly string[] = Object.freeze([]);
const noEnv: Readonly<Record<string, string>> = Object.freeze({});
const workerScaling = Object.freeze({ ...scalingDefaults });

export function runtimeSpec(w: FunctionSpecMsg): FunctionSpec {
  return {
    name: w.name,
    image: w.image,
    command: w.command.length === 0 ? (noCommand as string[]) : [...w.command],
    workingDir: w.workingDir,
    port: w.port,
    env: hasEntries(w.env) ? { ...w.env } : (noEnv as Record<string, string>),
    egress: w.egress,
    auth: w.auth === 'token' ? 'token' : 'none',
    resources: { cpuMillis: w.resources?.cpuMillis ?? 0, memoryMiB: w.resources?.memoryMib ?? 0 },
    concurrency: w.concurrency,
    timeoutMs: w.timeoutMs,
    scaling: workerScaling,
  };
}

function hasEntries(r: Record<string, string>): boolean {
  for (const _ in r) return true;
  return false;
}

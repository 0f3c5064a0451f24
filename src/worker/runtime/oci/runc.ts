/**
 * @module worker/runtime/oci/runc
 * The runc command lines the oci runtime uses, on one private state root. `runc run` stays in
 * the foreground as our child (its exit is the container's: 128+N for signal N), the other
 * commands are short calls (~8 ms each here).
 *
 * Teardown is `kill KILL`, wait for the `run` child, `delete`: `delete --force` sleeps >= 100 ms
 * in a polling loop (sandboxes.md, trap 7), so it is only used on orphans of a previous run.
 */
import { runTool, type ToolResult } from './tools.js';

/** kill/delete/list answer in ~10 ms; this bounds a wedged runc. */
const runcCallTimeoutMs = 10_000;

export interface RuncContainer {
  id: string;
  status: string;
}

export class Runc {
  constructor(
    readonly binary: string,
    /** runc's --root: its state of our containers, and only ours. */
    readonly root: string,
  ) {}

  /** argv of the foreground `run`; --keep leaves the cgroup so an OOM kill can be read. */
  runArgv(bundleDir: string, containerId: string, pidFile: string): string[] {
    const flags = ['--keep', '--bundle', bundleDir, '--pid-file', pidFile];
    return [this.binary, '--root', this.root, 'run', ...flags, containerId];
  }

  /** Sets the CPU quota of a running container (the end of its start-up boost). */
  updateCpuQuota(containerId: string, quotaUs: number): Promise<ToolResult> {
    return this.call(['update', '--cpu-quota', String(quotaUs), containerId]);
  }

  kill(containerId: string): Promise<ToolResult> {
    return this.call(['kill', containerId, 'KILL']);
  }

  delete(containerId: string, opts: { force: boolean }): Promise<ToolResult> {
    return this.call(['delete', ...(opts.force ? ['--force'] : []), containerId]);
  }

  /** Containers in our root, or why they could not be listed. */
  async list(): Promise<RuncContainer[] | string> {
    const r = await this.call(['list', '--format', 'json']);
    if (!r.ok) return r.reason;
    return parseRuncList(r.stdout);
  }

  private call(args: string[]): Promise<ToolResult> {
    return runTool(this.binary, ['--root', this.root, ...args], runcCallTimeoutMs);
  }
}

/** `runc list --format json` prints `null` when empty, else an array of states. */
export function parseRuncList(stdout: string): RuncContainer[] | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    return `runc list: not JSON: ${stdout.slice(0, 200)}`;
  }
  if (parsed === null) return [];
  if (!Array.isArray(parsed)) return 'runc list: not an array';
  const containers: RuncContainer[] = [];
  for (const item of parsed as unknown[]) {
    const { id, status } = (item ?? {}) as { id?: unknown; status?: unknown };
    if (typeof id === 'string') containers.push({ id, status: typeof status === 'string' ? status : '' });
  }
  return containers;
}

/** True when runc said the container is not (or no longer, or not yet) there. */
export function isNotFound(result: ToolResult): boolean {
  return /does not exist|not exist|no such/i.test(result.stderr);
}

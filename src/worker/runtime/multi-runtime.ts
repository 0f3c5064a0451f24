/**
 * @module worker/runtime/multi-runtime
 * One worker, several runtimes (`--runtime process,oci`): commands go to the process runtime,
 * images to the first image runtime given (oci or containerd). The worker advertises the union
 * of what its runtimes can run (`runtimeCapabilities`), so placement only sends it functions it
 * can start. Each sandbox id belongs to the runtime that created it until it is gone.
 */
import type { FunctionSpec } from '../../api/types.js';
import { assert } from '../../shared/assert.js';
import type { CreateResult, ExitListener, RuntimeSandbox, SandboxRuntime, SandboxSpec } from './runtime.js';

/** Capabilities a worker advertises for a runtime: what the CP's placement matches on. */
export function runtimeCapabilities(name: SandboxRuntime['name']): string[] {
  switch (name) {
    case 'process':
      return ['process'];
    case 'oci':
    case 'containerd':
      return ['image', name];
    case 'emulated':
      return ['process', 'image', 'oci', 'containerd'];
  }
}

/** The runtime that runs `fn` among `runtimes`, or why none does. */
export function runtimeFor(runtimes: readonly SandboxRuntime[], fn: FunctionSpec): SandboxRuntime | string {
  const needed = fn.command.length > 0 ? 'process' : 'image';
  const runtime = runtimes.find((r) => runtimeCapabilities(r.name).includes(needed));
  if (runtime) return runtime;
  const have = runtimes.map((r) => r.name).join(', ');
  return needed === 'image'
    ? `this worker has no image runtime (it has ${have}); start it with --runtime oci or containerd`
    : `this worker has no process runtime (it has ${have}); start it with --runtime process`;
}

/** A SandboxRuntime over several; with one runtime, use that runtime directly instead. */
export function combineRuntimes(runtimes: readonly SandboxRuntime[]): SandboxRuntime {
  assert(runtimes.length > 1, 'combine two runtimes or more');
  const owner = new Map<string, SandboxRuntime>();
  return {
    name: runtimes[0].name,
    async create(spec: SandboxSpec): Promise<CreateResult> {
      const runtime = runtimeFor(runtimes, spec.fn);
      if (typeof runtime === 'string') return { ok: false, reason: runtime };
      if (owner.has(spec.sandboxId)) return { ok: false, reason: `sandbox '${spec.sandboxId}' already exists` };
      owner.set(spec.sandboxId, runtime);
      const result = await runtime.create(spec);
      if (!result.ok && owner.get(spec.sandboxId) === runtime) owner.delete(spec.sandboxId);
      return result;
    },
    async delete(sandboxId: string): Promise<void> {
      const runtime = owner.get(sandboxId);
      if (!runtime) return;
      await runtime.delete(sandboxId);
      if (owner.get(sandboxId) === runtime) owner.delete(sandboxId);
    },
    list(): RuntimeSandbox[] {
      return runtimes.flatMap((r) => r.list());
    },
    onExit(listener: ExitListener): void {
      for (const r of runtimes) {
        r.onExit((sandboxId, reason) => {
          owner.delete(sandboxId);
          listener(sandboxId, reason);
        });
      }
    },
    async close(): Promise<void> {
      await Promise.all(runtimes.map((r) => r.close()));
      owner.clear();
    },
  };
}

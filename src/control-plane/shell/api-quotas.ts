/**
 * @module control-plane/shell/api-quotas
 * Namespace quotas as the API enforces them: the count of functions (429 past it: it may fit
 * later) and a function whose one sandbox, or whose `scaling.min` sandboxes, can never fit the
 * namespace's sandbox, CPU or memory quota (403: retrying cannot help). Live sandboxes past a
 * quota are the CP core's business (placement refuses them).
 */
import type { FunctionSpec, NamespaceQuotas } from '../../api/types.js';
import type { Tenancy } from './api-auth.js';
import type { ApiBackend } from './api-context.js';
import { HttpError } from './http-util.js';

/** Keys of creates in flight per namespace: concurrent creates must not overshoot the quota. */
const pendingCreates = new WeakMap<Tenancy, Map<string, Set<string>>>();

/** 403 naming the quota a function can never fit, else null. `spec.name` is the bare name. */
export function checkFunctionQuota(tenancy: Tenancy, spec: FunctionSpec, namespace: string): HttpError | null {
  const q = tenancy.quotasOf(namespace);
  const min = spec.scaling.min;
  const needs: [keyof NamespaceQuotas, number, number, string][] = [
    ['sandboxes', 1, min, 'sandboxes'],
    ['cpuMillis', spec.resources.cpuMillis, min * spec.resources.cpuMillis, 'cpuMillis'],
    ['memoryMiB', spec.resources.memoryMiB, min * spec.resources.memoryMiB, 'memoryMiB'],
  ];
  for (const [key, one, atMin, unit] of needs) {
    const limit = q[key];
    if (limit === 0) continue;
    const need = Math.max(one, atMin);
    if (need <= limit) continue;
    const what = need === one ? `one sandbox needs ${one} ${unit}` : `scaling.min ${min} sandboxes need ${atMin} ${unit}`;
    return new HttpError(403, 'quota_exceeded',
      `function ${spec.name} can never run in namespace ${namespace}: ${what}, its quota (quota.${key}) is ${limit}`, `quota.${key}`);
  }
  return null;
}

/**
 * Creates `spec` (its key in `spec.name`) unless the namespace already has its quota of
 * functions, counting the creates still in flight, so N concurrent creates never overshoot.
 * The count is the core's incremental usage (O(1)), not a listing of the registry: a burst of
 * N registrations would otherwise cost O(N) each.
 */
export async function createWithinQuota(tenancy: Tenancy, backend: ApiBackend, spec: FunctionSpec, namespace: string): Promise<'created' | 'exists'> {
  const limit = tenancy.quotasOf(namespace).functions;
  let byNs = pendingCreates.get(tenancy);
  if (!byNs) pendingCreates.set(tenancy, (byNs = new Map()));
  const pending = byNs.get(namespace) ?? new Set<string>();
  if (limit > 0) {
    const count = functionsCounted(tenancy, backend, namespace, pending, limit);
    if (count >= limit && !pending.has(spec.name) && backend.getFunction(spec.name) === null) {
      throw new HttpError(429, 'quota_exceeded',
        `namespace ${namespace} has ${count} functions, its quota (quota.functions) is ${limit}`, 'quota.functions');
    }
  }
  pending.add(spec.name);
  byNs.set(namespace, pending);
  try {
    return await backend.createFunction(spec);
  } finally {
    pending.delete(spec.name);
    if (pending.size === 0) byNs.delete(namespace);
  }
}

/**
 * Live functions of `namespace` plus its creates in flight. A create the core already applied
 * but whose caller has not resumed is in both: the exact count (a lookup per create in flight)
 * is only needed when the quick upper bound reaches the limit.
 */
function functionsCounted(tenancy: Tenancy, backend: ApiBackend, namespace: string, pending: Set<string>, limit: number): number {
  const live = tenancy.usage(namespace).functions;
  if (live + pending.size < limit) return live + pending.size;
  let notYetLive = 0;
  for (const k of pending) if (backend.getFunction(k) === null) notYetLive += 1;
  return live + notYetLive;
}

/**
 * @module control-plane/core/quotas
 * Per-namespace quotas on live sandboxes (creating + ready + draining: count, CPU, memory) and
 * the usage they are checked against. Usage changes by one sandbox at a time as sandboxes are
 * tracked and forgotten, so a placement check is O(1). A quota only blocks new sandboxes:
 * lowering one never stops running ones.
 */
import { namespaceOf } from '../../api/tenancy.js';
import type { NamespaceQuotas, NamespaceRecord, Resources } from '../../api/types.js';

export interface NamespaceUsage {
  functions: number;
  sandboxes: number;
  cpuMillis: number;
  memoryMiB: number;
}

/** 0 everywhere: no bound until the API tells the core the configured quotas. */
const unbounded: Readonly<NamespaceQuotas> = Object.freeze({ functions: 0, sandboxes: 0, cpuMillis: 0, memoryMiB: 0 });

export class Quotas {
  private readonly byNamespace = new Map<string, NamespaceQuotas>();
  private defaults: NamespaceQuotas = { ...unbounded };
  private readonly usage = new Map<string, NamespaceUsage>();

  /** Replaces every quota: namespaces without a record use `defaults`. */
  set(records: readonly NamespaceRecord[], defaults: NamespaceQuotas): void {
    this.byNamespace.clear();
    for (const r of records) this.byNamespace.set(r.name, { ...r.quotas });
    this.defaults = { ...defaults };
  }

  quotasOf(namespace: string): NamespaceQuotas {
    return this.byNamespace.get(namespace) ?? this.defaults;
  }

  usageOf(namespace: string): NamespaceUsage {
    return { ...(this.usage.get(namespace) ?? { functions: 0, sandboxes: 0, cpuMillis: 0, memoryMiB: 0 }) };
  }

  /** A function (by key) appeared (+1) or went (-1). */
  countFunction(key: string, sign: 1 | -1): void {
    this.entry(namespaceOf(key)).functions += sign;
  }

  /** A sandbox of function `key` is tracked (+1) or forgotten (-1). */
  countSandbox(key: string, r: Resources, sign: 1 | -1): void {
    const u = this.entry(namespaceOf(key));
    u.sandboxes += sign;
    u.cpuMillis += sign * r.cpuMillis;
    u.memoryMiB += sign * r.memoryMiB;
  }

  /**
   * Why one more sandbox of function `key` with `r` would pass its namespace's quota, or '' if
   * it fits. The text names the quota (it shows as the function's unschedulableReason).
   */
  refusal(key: string, r: Resources): string {
    const ns = namespaceOf(key);
    const q = this.quotasOf(ns);
    const u = this.usage.get(ns);
    const used = u ?? { sandboxes: 0, cpuMillis: 0, memoryMiB: 0 };
    if (q.sandboxes > 0 && used.sandboxes + 1 > q.sandboxes) return reached('sandboxes', ns, used.sandboxes, q.sandboxes);
    if (q.cpuMillis > 0 && used.cpuMillis + r.cpuMillis > q.cpuMillis) return reached('cpuMillis', ns, used.cpuMillis, q.cpuMillis);
    if (q.memoryMiB > 0 && used.memoryMiB + r.memoryMiB > q.memoryMiB) return reached('memoryMiB', ns, used.memoryMiB, q.memoryMiB);
    return '';
  }

  private entry(ns: string): NamespaceUsage {
    let u = this.usage.get(ns);
    if (!u) this.usage.set(ns, (u = { functions: 0, sandboxes: 0, cpuMillis: 0, memoryMiB: 0 }));
    return u;
  }
}

function reached(quota: string, ns: string, used: number, max: number): string {
  return `quota ${quota} of namespace ${ns} reached (${used} of ${max})`;
}

/** Whether an unschedulable reason is a quota's (its queued requests fail with quota_exceeded). */
export function isQuotaReason(reason: string): boolean {
  return reason.startsWith('quota ');
}

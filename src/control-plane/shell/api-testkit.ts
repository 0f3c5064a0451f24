/**
 * @module control-plane/shell/api-testkit
 * Tenancy state for API server tests, with an in-memory store and no data planes.
 */
import type { NamespaceQuotas, NamespaceRecord, TokenRecord } from '../../api/types.js';
import { Tenancy } from './api-auth.js';

export const unboundedQuotas: NamespaceQuotas = Object.freeze({ functions: 0, sandboxes: 0, cpuMillis: 0, memoryMiB: 0 });

/** `mode` 'none': everyone is admin; 'token': only `adminToken` (and tokens it creates) get in. */
export function memoryTenancy(mode: 'token' | 'none' = 'none', adminToken: string | null = null, defaults = unboundedQuotas): Tenancy {
  const stored = { tokens: new Map<string, TokenRecord>(), namespaces: new Map<string, NamespaceRecord>() };
  return new Tenancy(mode, adminToken, defaults, {
    store: {
      putToken: async (t) => void stored.tokens.set(t.id, t),
      deleteToken: async (id) => void stored.tokens.delete(id),
      putNamespace: async (n) => void stored.namespaces.set(n.name, n),
      deleteNamespace: async (name) => void stored.namespaces.delete(name),
    },
    setInvokeTokens: async () => undefined,
    loadInvokeTokens: () => undefined,
    setNamespaceQuotas: () => undefined,
    namespaceUsage: () => ({ functions: 0, sandboxes: 0, cpuMillis: 0, memoryMiB: 0 }),
    wallMs: () => 1_700_000_000_000,
  });
}

/**
 * @module data-plane/core/invoke-auth
 * Who may invoke a function with `auth: token`: the pure decision. The shell takes the bearer
 * token from the request and hashes it; only its id and digest reach here (the secret never
 * does). The token table holds what the CP pushed: only the hashes of invoke-capable tokens.
 *
 *   no token, malformed, unknown id, digest differs (revoked and re-made)  ->  'unauthorized' (401)
 *   known, but its scope or namespace may not invoke this function        ->  'forbidden' (403)
 */
import type { InvokeTokenMsg } from '../../api/cluster.js';
import { authorize, namespaceOf } from '../../api/tenancy.js';
import { tokenScopes, type TokenScope } from '../../api/types.js';

/** A bearer token as the shell presents it: its public id and the hex SHA-256 of its text. */
export interface PresentedToken {
  id: string;
  sha256Hex: string;
}

export type InvokeVerdict = 'allowed' | 'unauthorized' | 'forbidden';

export function invokeVerdict(
  tokens: ReadonlyMap<string, InvokeTokenMsg>,
  functionKey: string,
  presented: PresentedToken | null,
): InvokeVerdict {
  if (!presented) return 'unauthorized';
  const known = tokens.get(presented.id);
  if (!known || !digestsEqual(known.sha256Hex, presented.sha256Hex)) return 'unauthorized';
  if (!isScope(known.scope)) return 'forbidden';
  const principal = { tokenId: known.id, scope: known.scope, namespace: known.namespace };
  return authorize(principal, 'function.invoke', namespaceOf(functionKey)).ok ? 'allowed' : 'forbidden';
}

function isScope(s: string): s is TokenScope {
  return (tokenScopes as readonly string[]).includes(s);
}

/**
 * Compares two digests in time independent of where they differ (the core has no
 * node:crypto; this is timingSafeEqual's contract for equal-length text).
 */
export function digestsEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i += 1) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

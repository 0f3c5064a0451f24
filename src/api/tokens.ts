/**
 * @module api/tokens
 * Validation of the tenancy bodies of the management API: `POST /v1/tokens` and
 * `PUT /v1/namespaces/{ns}`. Pure; same error order as api/validate (unknown fields first).
 */
import { ErrorCode, tokenScopes, type NamespaceQuotas, type TokenScope } from './types.js';
import { defaultNamespace, isNamespaceName } from './tenancy.js';
import { checkInteger, checkKnownKeys, checkObject, describe, fail, ok, type Validation } from './fields.js';

/** Longest token description. */
export const tokenDescriptionLengthMax = 200;
/** Largest quota value (a bound, not a real size: 0 already means "no bound"). */
const quotaValueMax = 1_000_000_000;

const tokenCreateFields = ['scope', 'namespace', 'description'] as const;
const quotaFields = ['functions', 'sandboxes', 'cpuMillis', 'memoryMiB'] as const;

export interface TokenCreate {
  scope: TokenScope;
  /** '' for admin tokens (every namespace). */
  namespace: string;
  description: string;
}

export function validateTokenCreate(body: unknown): Validation<TokenCreate> {
  const input = checkObject(body, '');
  if (!input.ok) return input;
  const unknown = checkKnownKeys(input.value, tokenCreateFields, '');
  if (!unknown.ok) return unknown;
  const { scope, namespace, description } = input.value;
  if (scope === undefined) return fail(ErrorCode.missingField, 'scope', `scope is required (one of ${tokenScopes.join(', ')})`);
  if (typeof scope !== 'string' || !(tokenScopes as readonly string[]).includes(scope)) {
    return fail(ErrorCode.invalidField, 'scope', `scope must be one of ${tokenScopes.join(', ')}, got ${describe(scope)}`);
  }
  if (scope === 'admin' && namespace !== undefined) {
    return fail(ErrorCode.invalidField, 'namespace', 'an admin token acts in every namespace; leave namespace out');
  }
  if (namespace !== undefined && (typeof namespace !== 'string' || !isNamespaceName(namespace))) {
    return fail(ErrorCode.invalidField, 'namespace', `namespace must be a DNS label (lower-case letters, digits and '-', 1 to 63 characters), got ${describe(namespace)}`);
  }
  if (description !== undefined && (typeof description !== 'string' || description.length > tokenDescriptionLengthMax)) {
    return fail(ErrorCode.invalidField, 'description', `description must be a string of at most ${tokenDescriptionLengthMax} characters, got ${describe(description)}`);
  }
  return ok({
    scope: scope as TokenScope,
    namespace: scope === 'admin' ? '' : ((namespace as string | undefined) ?? defaultNamespace),
    description: (description as string | undefined) ?? '',
  });
}

/** `{quotas: {functions?, sandboxes?, cpuMillis?, memoryMiB?}}` merged onto `current`. */
export function validateQuotasPut(body: unknown, current: NamespaceQuotas): Validation<NamespaceQuotas> {
  const input = checkObject(body, '');
  if (!input.ok) return input;
  const unknown = checkKnownKeys(input.value, ['quotas'] as const, '');
  if (!unknown.ok) return unknown;
  if (input.value.quotas === undefined) return fail(ErrorCode.missingField, 'quotas', 'quotas is required');
  const quotas = checkObject(input.value.quotas, 'quotas');
  if (!quotas.ok) return quotas;
  const unknownQuota = checkKnownKeys(quotas.value, quotaFields, 'quotas.');
  if (!unknownQuota.ok) return unknownQuota;
  const out: NamespaceQuotas = { ...current };
  for (const key of quotaFields) {
    const value = quotas.value[key];
    if (value === undefined) continue;
    const checked = checkInteger(value, `quotas.${key}`, [0, quotaValueMax], '0 = no bound');
    if (!checked.ok) return checked;
    out[key] = checked.value;
  }
  return ok(out);
}

/**
 * @module api/tenancy
 * Namespaces and what a token may do in them. Pure: shared by the management API, the data
 * plane and the CLI.
 *
 * A function is unique by name within its namespace. Everything past the API (CP core, stream
 * messages, DPs, workers) knows a function by one string, its *key*: the bare name in the
 * default namespace (so every existing name, stored record and tool keeps working), and
 * `<name>.<namespace>` elsewhere. Names and namespaces are DNS labels (no dots), so a key
 * splits back unambiguously at its first dot. The DP routes by key: Host `<name>.<namespace>`
 * or `/function/<name>.<namespace>/`, and `<name>` alone (or `<name>.default`) is the default
 * namespace.
 */
import type { TokenScope } from './types.js';

export const defaultNamespace = 'default';
const labelLengthMax = 63;
const dnsLabel = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export function isNamespaceName(s: string): boolean {
  return s.length <= labelLengthMax && dnsLabel.test(s);
}

/** The key of function `name` in `namespace`. */
export function functionKey(name: string, namespace: string): string {
  return namespace === defaultNamespace ? name : `${name}.${namespace}`;
}

export function splitFunctionKey(key: string): { name: string; namespace: string } {
  const dot = key.indexOf('.');
  return dot < 0 ? { name: key, namespace: defaultNamespace } : { name: key.slice(0, dot), namespace: key.slice(dot + 1) };
}

export function namespaceOf(key: string): string {
  const dot = key.indexOf('.');
  return dot < 0 ? defaultNamespace : key.slice(dot + 1);
}

/**
 * The key a client means by `<name>[.<namespace>]` (Host header or path segment): the explicit
 * default namespace is dropped. Anything else is returned as is (an unknown key is a 404 later).
 */
export function canonicalFunctionKey(text: string): string {
  const dot = text.length - defaultNamespace.length - 1;
  return dot > 0 && text.endsWith(`.${defaultNamespace}`) && text.indexOf('.') === dot ? text.slice(0, dot) : text;
}

/** Who is calling: the token's id, scope and namespace ('' for admin: every namespace). */
export interface Principal {
  tokenId: string;
  scope: TokenScope;
  namespace: string;
}

/** Auth switched off (`--auth none`, loopback only): the caller may do anything. */
export const anonymousAdmin: Readonly<Principal> = Object.freeze({ tokenId: 'anonymous', scope: 'admin', namespace: '' });

export type Action =
  | 'function.read' // get, list, status
  | 'function.write' // create, update, delete
  | 'function.invoke'
  | 'cluster.read' // cluster status, metrics
  | 'admin'; // tokens, namespaces and their quotas

const allowed: Readonly<Record<TokenScope, ReadonlySet<Action>>> = {
  admin: new Set<Action>(['function.read', 'function.write', 'function.invoke', 'cluster.read', 'admin']),
  deploy: new Set<Action>(['function.read', 'function.write', 'function.invoke', 'cluster.read']),
  invoke: new Set<Action>(['function.invoke']),
  read: new Set<Action>(['function.read', 'cluster.read']),
};

export type Decision =
  | { ok: true }
  /** The scope does not allow the action at all: 403. */
  | { ok: false; reason: 'scope' }
  /** The action is allowed, but not in that namespace: 404 for functions (their existence is not revealed), else 403. */
  | { ok: false; reason: 'namespace' };

/** May `p` do `action` in `namespace` (omit it for actions not tied to one)? */
export function authorize(p: Principal, action: Action, namespace?: string): Decision {
  if (!allowed[p.scope].has(action)) return { ok: false, reason: 'scope' };
  if (p.scope === 'admin' || namespace === undefined || namespace === p.namespace) return { ok: true };
  return { ok: false, reason: 'namespace' };
}

/**
 * @module control-plane/shell/api-namespaces
 * `/v1/namespaces[/{ns}]`: quotas and usage. Reading a namespace is for admins and the tokens of
 * that namespace; setting and resetting quotas is for admins. A namespace needs no creating:
 * one without a record uses the default quotas (config `namespace*Max`).
 */
import { defaultNamespace, isNamespaceName, namespaceOf } from '../../api/tenancy.js';
import { validateQuotasPut } from '../../api/tokens.js';
import { methodNotAllowed, noContent, readJson, requireScope, type RequestContext } from './api-context.js';
import { decodePathSegment, HttpError, sendJson } from './http-util.js';

const namespacePath = /^\/v1\/namespaces\/([^/]+)$/;

function view(ctx: RequestContext, name: string): Record<string, unknown> {
  return { name, quotas: ctx.tenancy.quotasOf(name), usage: ctx.tenancy.usage(name) };
}

/** Handles `/v1/namespaces[/{ns}]`; false when the path is not one of them. */
export async function namespaceRoutes(ctx: RequestContext, path: string): Promise<boolean> {
  const item = namespacePath.exec(path);
  if (path !== '/v1/namespaces' && !item) return false;
  if (!item) {
    if (ctx.method !== 'GET') throw methodNotAllowed(ctx.method, path);
    requireScope(ctx.principal, 'admin', 'list namespaces');
    const names = new Set([defaultNamespace, ...ctx.tenancy.namespaceRecords().map((r) => r.name), ...ctx.backend.functionKeys().map(namespaceOf)]);
    sendJson(ctx.res, 200, { namespaces: [...names].sort().map((n) => view(ctx, n)) });
    return true;
  }
  const name = decodePathSegment(item[1]!, path);
  if (!isNamespaceName(name)) throw new HttpError(400, 'invalid_field', `namespace must be a DNS label, got ${JSON.stringify(name.slice(0, 80))}`, 'namespace');
  if (ctx.method === 'GET') {
    const p = ctx.principal;
    if (p.scope !== 'admin' && p.namespace !== name) throw new HttpError(403, 'forbidden', `this token acts in namespace ${p.namespace}, not ${name}`, 'namespace');
    sendJson(ctx.res, 200, view(ctx, name));
    return true;
  }
  requireScope(ctx.principal, 'admin', 'change namespace quotas');
  if (ctx.method === 'PUT') {
    const v = validateQuotasPut(await readJson(ctx), ctx.tenancy.quotasOf(name));
    if (!v.ok) throw new HttpError(400, v.error.code, v.error.message, v.error.field);
    await ctx.tenancy.setQuotas(name, v.value);
    sendJson(ctx.res, 200, view(ctx, name));
    return true;
  }
  if (ctx.method === 'DELETE') {
    await ctx.tenancy.resetQuotas(name);
    noContent(ctx.res);
    return true;
  }
  throw methodNotAllowed(ctx.method, path);
}

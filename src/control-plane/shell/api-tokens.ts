/**
 * @module control-plane/shell/api-tokens
 * `/v1/tokens` (admin only): create (the token text appears only in that answer), list, revoke.
 * A revocation answers once the store forgot the token and the DPs applied it, so the token is
 * refused everywhere from the moment DELETE answers.
 */
import type { TokenRecord } from '../../api/types.js';
import { validateTokenCreate } from '../../api/tokens.js';
import { methodNotAllowed, noContent, readJson, requireScope, type RequestContext } from './api-context.js';
import { decodePathSegment, HttpError, sendJson } from './http-util.js';

const tokenPath = /^\/v1\/tokens\/([^/]+)$/;

/** The public view: never the hash. */
function view(t: TokenRecord): Record<string, unknown> {
  return { id: t.id, scope: t.scope, namespace: t.namespace, description: t.description, createdAt: new Date(t.createdAtMs).toISOString() };
}

/** Handles `/v1/tokens[/{id}]`; false when the path is not one of them. */
export async function tokenRoutes(ctx: RequestContext, path: string): Promise<boolean> {
  const item = tokenPath.exec(path);
  if (path !== '/v1/tokens' && !item) return false;
  requireScope(ctx.principal, 'admin', 'manage tokens');
  if (path === '/v1/tokens') {
    if (ctx.method === 'GET') sendJson(ctx.res, 200, { tokens: ctx.tenancy.listTokens().map(view) });
    else if (ctx.method === 'POST') await createToken(ctx);
    else throw methodNotAllowed(ctx.method, path);
    return true;
  }
  if (ctx.method !== 'DELETE') throw methodNotAllowed(ctx.method, path);
  const id = decodePathSegment(item![1]!, path);
  const result = await ctx.tenancy.revokeToken(id);
  if (result === 'bootstrap') {
    throw new HttpError(409, 'forbidden', 'the bootstrap admin token comes from the admin token file and cannot be revoked; replace the file and restart the control plane', 'id');
  }
  if (result === 'not_found') throw new HttpError(404, 'not_found', `token ${id} not found`, 'id');
  noContent(ctx.res);
  return true;
}

async function createToken(ctx: RequestContext): Promise<void> {
  const v = validateTokenCreate(await readJson(ctx));
  if (!v.ok) throw new HttpError(400, v.error.code, v.error.message, v.error.field);
  const { record, token } = await ctx.tenancy.createToken(v.value.scope, v.value.namespace, v.value.description);
  sendJson(ctx.res, 201, { ...view(record), token });
}

/**
 * @module control-plane/shell/api-functions
 * The function routes of the management API, namespace-aware. Past this module a function is
 * known only by its key (`functionKey(name, namespace)` in `spec.name`); callers send a bare
 * name plus a namespace (body field, `?namespace=`, `<name>.<namespace>` in the path, or their
 * token's) and read back the bare name and `namespace`. A function of a namespace the caller may
 * not see is answered 404, so its existence is not revealed.
 */
import { parseRegistrationForm } from '../../api/form.js';
import { defaultNamespace, functionKey, isNamespaceName, namespaceOf, splitFunctionKey, type Principal } from '../../api/tenancy.js';
import type { FunctionSpec } from '../../api/types.js';
import { takeNamespace, validateFunctionCreate, validateFunctionPatch } from '../../api/validate.js';
import { checkFunctionQuota, createWithinQuota } from './api-quotas.js';
import { methodNotAllowed, noContent, readJson, requireScope, type RequestContext } from './api-context.js';
import { HttpError, readBody, sendJson } from './http-util.js';

/** `{function, status}` as callers see it: the bare name plus its namespace. */
export function present(item: { function: FunctionSpec; status: unknown }): { function: unknown; status: unknown } {
  const { name, namespace } = splitFunctionKey(item.function.name);
  // Object.assign, not `{ ...spec, name, namespace }`: V8 adds `namespace` after a spread on a
  // slow path, once per function of a listing.
  return { function: Object.assign({}, item.function, { name, namespace }), status: item.status };
}

/** The namespace a request acts in: explicit, else the token's, else the default one. */
function chosenNamespace(p: Principal, explicit: string | undefined): string {
  return explicit ?? (p.namespace !== '' ? p.namespace : defaultNamespace);
}

function queryNamespace(ctx: RequestContext): string | undefined {
  return ctx.query.get('namespace') ?? undefined;
}

export async function listFunctions(ctx: RequestContext): Promise<void> {
  requireScope(ctx.principal, 'function.read', 'read functions');
  const p = ctx.principal;
  const asked = queryNamespace(ctx);
  const only = p.scope === 'admin' ? asked : chosenNamespace(p, undefined);
  const visible = asked !== undefined && asked !== only ? [] : ctx.backend.listFunctions()
    .filter((f) => only === undefined || namespaceOf(f.function.name) === only);
  sendJson(ctx.res, 200, { functions: visible.map(present) });
}

export async function createFunctionJson(ctx: RequestContext): Promise<void> {
  requireScope(ctx.principal, 'function.write', 'create functions');
  const split = takeNamespace(await readJson(ctx));
  if (!split.ok) throw new HttpError(400, split.error.code, split.error.message, split.error.field);
  const namespace = createNamespace(ctx, split.value.namespace ?? queryNamespace(ctx));
  const v = validateFunctionCreate(split.value.rest);
  if (!v.ok) throw new HttpError(400, v.error.code, v.error.message, v.error.field);
  const spec = await createKeyed(ctx, v.value, namespace);
  sendJson(ctx.res, 201, presentOrGone(ctx, spec.name));
}

/** InVitro's form registration; `namespace` is an extra form field. */
export async function createFunctionForm(ctx: RequestContext): Promise<void> {
  requireScope(ctx.principal, 'function.write', 'create functions');
  const params = new URLSearchParams(await readBody(ctx.req, ctx.limits));
  const asked = params.get('namespace') ?? queryNamespace(ctx);
  params.delete('namespace');
  if (asked !== undefined && !isNamespaceName(asked)) throw new HttpError(400, 'invalid_field', `namespace must be a DNS label, got ${JSON.stringify(asked.slice(0, 80))}`, 'namespace');
  const namespace = createNamespace(ctx, asked);
  const v = parseRegistrationForm(params.toString());
  if (!v.ok) throw new HttpError(400, v.error.code, v.error.message, v.error.field);
  try {
    await createKeyed(ctx, v.value, namespace);
  } catch (err) {
    if (!(err instanceof HttpError) || err.code !== 'already_exists') throw err;
    ctx.res.writeHead(409, { 'content-type': 'text/plain' });
    ctx.res.end('Failed to register service.');
    return;
  }
  ctx.res.writeHead(200, { 'content-type': 'text/plain' });
  ctx.res.end(ctx.backend.dataPlaneAddresses().join(';'));
}

/** A non-admin token creates only in its own namespace. */
function createNamespace(ctx: RequestContext, explicit: string | undefined): string {
  const p = ctx.principal;
  const namespace = chosenNamespace(p, explicit);
  if (p.scope !== 'admin' && namespace !== p.namespace) {
    throw new HttpError(403, 'forbidden', `this token acts in namespace ${p.namespace}, not ${namespace}`, 'namespace');
  }
  return namespace;
}

/**
 * `workingDir` and `oci-archive:` images name paths on the workers' hosts (a working directory
 * is mounted into the sandbox; an archive is read by the worker as root). A tenant must not pick
 * host paths, so only an admin token may set or change them; tenants deploy registry images or
 * commands that run in the worker's scratch directory.
 */
function checkHostPaths(ctx: RequestContext, spec: FunctionSpec, before: FunctionSpec | null): void {
  if (ctx.principal.scope === 'admin') return;
  if (spec.workingDir !== '' && spec.workingDir !== before?.workingDir) {
    throw new HttpError(403, 'forbidden', 'workingDir names a path on the workers: only an admin token may set it', 'workingDir');
  }
  if (spec.image.startsWith('oci-archive:') && spec.image !== before?.image) {
    throw new HttpError(403, 'forbidden', 'an oci-archive: image is a path on the workers: only an admin token may use one; push the image to a registry', 'image');
  }
}

/**
 * The function just created or changed, as answered. A DELETE ordered right behind the
 * operation may already have removed it: then it is a 404, as any later request would see.
 */
function presentOrGone(ctx: RequestContext, key: string): { function: unknown; status: unknown } {
  const item = ctx.backend.getFunction(key);
  if (item) return present(item);
  const { name, namespace } = splitFunctionKey(key);
  throw new HttpError(404, 'not_found', `function ${name} in namespace ${namespace} was deleted before this answer`, 'name');
}

async function createKeyed(ctx: RequestContext, bare: FunctionSpec, namespace: string): Promise<FunctionSpec> {
  checkHostPaths(ctx, bare, null);
  const quota = checkFunctionQuota(ctx.tenancy, bare, namespace);
  if (quota) throw quota;
  const spec = { ...bare, name: functionKey(bare.name, namespace) };
  if ((await createWithinQuota(ctx.tenancy, ctx.backend, spec, namespace)) === 'exists') {
    throw new HttpError(409, 'already_exists', `function ${bare.name} already exists in namespace ${namespace}`, 'name');
  }
  return spec;
}

/** `/v1/functions/{segment}`: `name` or `name.namespace`, and `?namespace=`. */
export async function functionItem(ctx: RequestContext, segment: string): Promise<void> {
  const { key, name, namespace } = resolveItem(ctx, segment);
  const b = ctx.backend;
  // Built only when thrown: an Error captures a stack trace, a cost every lookup paid.
  const notFound = (): HttpError => new HttpError(404, 'not_found', `function ${name} not found in namespace ${namespace}`, 'name');
  if (ctx.method === 'GET') {
    requireScope(ctx.principal, 'function.read', 'read functions');
    const item = b.getFunction(key);
    if (!item) throw notFound();
    return sendJson(ctx.res, 200, present(item));
  }
  if (ctx.method !== 'DELETE' && ctx.method !== 'PATCH') throw methodNotAllowed(ctx.method, `/v1/functions/${segment}`);
  requireScope(ctx.principal, 'function.write', 'change or delete functions');
  if (ctx.method === 'DELETE') {
    if (!(await b.deleteFunction(key))) throw notFound();
    return noContent(ctx.res);
  }
  const body = takeNamespace(await readJson(ctx));
  if (!body.ok) throw new HttpError(400, body.error.code, body.error.message, body.error.field);
  if (body.value.namespace !== undefined && body.value.namespace !== namespace) {
    throw new HttpError(400, 'invalid_field', `namespace cannot change (it is ${namespace}), got ${body.value.namespace}`, 'namespace');
  }
  const found = await b.updateFunction(key, (current) => patched(ctx, current, body.value.rest, namespace));
  if (!found) throw notFound();
  sendJson(ctx.res, 200, presentOrGone(ctx, key));
}

/** Runs inside the core's ordered operation; a thrown error is rethrown to the caller after it. */
function patched(ctx: RequestContext, current: FunctionSpec, body: unknown, namespace: string): FunctionSpec {
  const { name } = splitFunctionKey(current.name);
  const v = validateFunctionPatch({ ...current, name }, body);
  if (!v.ok) throw new HttpError(400, v.error.code, v.error.message, v.error.field);
  checkHostPaths(ctx, v.value, current);
  const quota = checkFunctionQuota(ctx.tenancy, v.value, namespace);
  if (quota) throw quota;
  return { ...v.value, name: current.name };
}

function resolveItem(ctx: RequestContext, segment: string): { key: string; name: string; namespace: string } {
  const dotted = segment.includes('.') ? splitFunctionKey(segment) : null;
  const asked = queryNamespace(ctx);
  const name = dotted?.name ?? segment;
  const namespace = chosenNamespace(ctx.principal, dotted?.namespace ?? asked);
  const p = ctx.principal;
  const hidden = (dotted && asked !== undefined && asked !== dotted.namespace) || (p.scope !== 'admin' && namespace !== p.namespace);
  // Another namespace's function is "not found", whether or not it exists.
  if (hidden || !isNamespaceName(namespace)) throw new HttpError(404, 'not_found', `function ${name} not found in namespace ${namespace}`, 'name');
  return { key: functionKey(name, namespace), name, namespace };
}

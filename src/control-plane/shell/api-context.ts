/**
 * @module control-plane/shell/api-context
 * What every management route gets: the caller (already authenticated), the query, the body
 * limits, the backend and the tenancy state; plus the small checks all routes share.
 */
import { authorize, type Action, type Principal } from '../../api/tenancy.js';
import type { FunctionSpec } from '../../api/types.js';
import type { SelectedMetrics } from '../../shared/metrics-select.js';
import type { Tenancy } from './api-auth.js';
import type { ClusterViewOptions } from './cluster-view.js';
import { HttpError, parseJson, readBody, requireJson, type ApiRequest, type ApiResponse, type BodyLimits } from './http-util.js';

/** What the API needs from the control plane. */
export interface ApiBackend {
  createFunction(spec: FunctionSpec): Promise<'created' | 'exists'>;
  updateFunction(name: string, patch: (current: FunctionSpec) => FunctionSpec): Promise<boolean>;
  deleteFunction(name: string): Promise<boolean>;
  getFunction(name: string): { function: FunctionSpec; status: unknown } | null;
  listFunctions(): { function: FunctionSpec; status: unknown }[];
  /** The keys of every function (cheap: no status), for namespace listings. */
  functionKeys(): string[];
  /** `GET /v1/cluster`; `sandboxIds: false` leaves out each worker's list of sandbox ids. */
  cluster(view: ClusterViewOptions): unknown;
  dataPlaneAddresses(): string[];
  /** The registry's exposition text, all of it or the named metrics only (`/metrics?name=`). */
  metrics(selection: SelectedMetrics): Promise<{ contentType: string; body: string }>;
  /** This CP's role for `GET /health` (absent: a lone CP, always the leader). */
  health?(): { role: 'leader' | 'standby'; term: number; pid: number; id: string };
  /** null while this CP leads; on a standby the leader's API `host:port` ('' = unknown). */
  leaderApi?(): string | null;
}

export interface RequestContext {
  req: ApiRequest;
  res: ApiResponse;
  method: string;
  query: URLSearchParams;
  principal: Principal;
  limits: BodyLimits;
  jsonNestingDepthMax: number;
  backend: ApiBackend;
  tenancy: Tenancy;
}

export async function readJson(ctx: RequestContext): Promise<unknown> {
  requireJson(ctx.req);
  return parseJson(await readBody(ctx.req, ctx.limits), ctx.jsonNestingDepthMax);
}

/** 403 when the caller's scope does not allow `action` at all (namespace checks are the routes'). */
export function requireScope(p: Principal, action: Action, what: string): void {
  if (authorize(p, action).ok) return;
  throw new HttpError(403, 'forbidden', `a token of scope ${p.scope} may not ${what}`);
}

export function methodNotAllowed(method: string, path: string): HttpError {
  return new HttpError(405, 'method_not_allowed', `${method} is not allowed on ${path}`);
}

export function noContent(res: ApiResponse): void {
  res.writeHead(204);
  res.end();
}

/**
 * @module data-plane/async/peer-reads
 * The compatibility results port (the reference's 8082) reads by id through the same forwarding
 * as `GET /v1/invocations/{id}`: an id another DP accepted (per-DP store) is read from that DP as
 * a peer, and its public view is turned back into the fields the results port answers with
 * (status, result, dead reason). The view comes from another process: it is checked here, and
 * a malformed one counts as an owner that did not answer.
 */
import type { Req } from '../shell/http-util.js';
import type { AsyncServicePort } from './compat.js';
import { OwnerUnavailable, type AsyncPeers } from './peer-forward.js';
import { asyncStatuses } from './routes-util.js';
import type { AsyncInvocation, AsyncStatus } from './types.js';

/** Requests the results port reads by: none of them come from a peer. */
const localReq = { headers: {} } as unknown as Req;

/** `service` whose `get` asks the owner DP for ids of other DPs. */
export function withPeerReads(service: AsyncServicePort, peers: AsyncPeers | null): AsyncServicePort {
  if (!peers) return service;
  return {
    submit: (input, nowMs) => service.submit(input, nowMs),
    async get(id) {
      const owner = peers.route(id, localReq);
      if (owner.kind === 'local') return service.get(id);
      const r = await peers.readAsPeer(owner.peer, id);
      if (r.statusCode === 404) return undefined;
      const inv = r.statusCode === 200 ? invocationFromView(r.json) : null;
      if (!inv) throw new OwnerUnavailable(owner.peer, `answered ${r.statusCode} without an invocation`);
      return inv;
    },
  };
}

/** The parts of an invocation its public view (service.invocationView) carries, or null when malformed. */
export function invocationFromView(json: unknown): AsyncInvocation | null {
  if (!isObject(json) || typeof json.id !== 'string' || typeof json.function !== 'string') return null;
  if (typeof json.status !== 'string' || !asyncStatuses.includes(json.status)) return null;
  const acceptedAtMs = typeof json.acceptedAt === 'string' ? Date.parse(json.acceptedAt) : NaN;
  const inv: AsyncInvocation = {
    id: json.id, functionKey: json.function, status: json.status as AsyncStatus,
    request: { method: '', path: '', query: '', headers: {}, body: Buffer.alloc(0) },
    attempts: [], nextAttemptAtMs: 0, acceptedAtMs: Number.isFinite(acceptedAtMs) ? acceptedAtMs : 0,
  };
  if (typeof json.deadReason === 'string') inv.deadReason = json.deadReason;
  if (json.result !== undefined) {
    const result = resultFromView(json.result);
    if (!result) return null;
    inv.result = result;
  }
  return inv;
}

function resultFromView(r: unknown): AsyncInvocation['result'] | null {
  if (!isObject(r) || !Number.isInteger(r.statusCode) || !isObject(r.headers)) return null;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) {
    if (typeof v !== 'string') return null;
    headers[k] = v;
  }
  let body: Buffer;
  if (typeof r.body === 'string') body = Buffer.from(r.body, 'utf8');
  else if (typeof r.bodyBase64 === 'string') body = Buffer.from(r.bodyBase64, 'base64');
  else return null;
  return { statusCode: r.statusCode as number, headers, body };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

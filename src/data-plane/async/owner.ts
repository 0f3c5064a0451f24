/**
 * @module data-plane/async/owner
 * Which data plane holds an async invocation (issue #11 part 4, through the front end). With a
 * per-DP store (SQLite, the default) only the DP that accepted an invocation has it, and a
 * front end sends reads to any DP. So an id carries a short tag of its DP's id:
 *
 *   0mfz3k2a1-1x9q0ak-3f9c2a...     time (base 36, sorts by accept time) - owner tag - random hex
 *
 * and a DP asked about another DP's id forwards the request to that peer, once. Peers (id ->
 * proxy address) come only from the CP's routing stream, never from a request: a tag that names
 * no peer is answered from the local store (a plain 404 for a forged id), so a request can never
 * make a DP dial an address of its choosing. With a shared store (Redis) every DP can answer:
 * ids carry no tag and nothing is forwarded. Pure: no I/O, no clock.
 */

/** Width of an owner tag: FNV-1a 32 bits in base 36. */
export const ownerTagChars = 7;
/** Marks a request one DP forwarded to another: the receiver answers it itself, never forwards it again. */
export const forwardedFromHeader = 'x-dirigent-forwarded-from';

const taggedId = /^[0-9a-z]{9}-([0-9a-z]{7})-[0-9a-f]{1,64}$/;

/** The owner tag of a data plane id: opaque, URL-safe, fixed width. */
export function ownerTagOf(dataPlaneId: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < dataPlaneId.length; i += 1) {
    h ^= dataPlaneId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(36).padStart(ownerTagChars, '0');
}

/** The owner tag an invocation id carries, or null (a shared-store id, or not an id of ours). */
export function ownerTagOfId(id: string): string | null {
  const m = taggedId.exec(id);
  return m ? m[1]! : null;
}

export interface Peer {
  id: string;
  address: string;
}

/** host:port (a name, IPv4 or bracketed IPv6): nothing that could add a path, user or query to a URL. */
const peerAddress = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

/** The CP's peers by owner tag, without this DP itself and without addresses that are not host:port. */
export function peersByTag(peers: ReadonlyMap<string, string>, selfId: string): Map<string, Peer> {
  const out = new Map<string, Peer>();
  for (const [id, address] of peers) if (id !== selfId && peerAddress.test(address)) out.set(ownerTagOf(id), { id, address });
  return out;
}

export type OwnerRoute = { kind: 'local' } | { kind: 'forward'; peer: Peer };

export interface OwnerContext {
  /** This DP's tag; null when the store is shared (every DP answers for every id). */
  selfTag: string | null;
  /** The request came from another DP: answer it here, whatever the id says. */
  forwarded: boolean;
  peers: ReadonlyMap<string, Peer>;
}

/**
 * Where a read or re-drive of `id` is answered. Local unless the id names a known peer: an
 * unknown tag (forged, or a DP the CP forgot) is looked up locally and comes out 404.
 */
export function routeById(id: string, ctx: OwnerContext): OwnerRoute {
  if (ctx.selfTag === null || ctx.forwarded) return { kind: 'local' };
  const tag = ownerTagOfId(id);
  if (tag === null || tag === ctx.selfTag) return { kind: 'local' };
  const peer = ctx.peers.get(tag);
  return peer ? { kind: 'forward', peer } : { kind: 'local' };
}

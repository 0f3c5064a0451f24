/**
 * @module policy/load-balancing/lb
 * Which ready sandbox (endpoint) serves a request: one function per policy, all in this file,
 * like Knative's `lb_policy.go`. Policies: `least-loaded`, `knative`, `round-robin`, `random`,
 * `consistent-hash` (with bounded loads).
 *
 * Contract of every policy: it only picks an endpoint with a free slot (inflight < slots, or
 * slots = 0 meaning unlimited) and returns its index, or -1 when none is free (the caller queues
 * the request). State goes in and comes back out; the input state is never mutated.
 *
 * These scan-based pickers are the specification of each policy (pinned by lb.test.ts). The
 * data plane's hot path uses `lb-index.ts`, the same policies as incremental indexes that
 * answer without scanning every endpoint; consistent-hash shares `pickConsistentHash` with it.
 * The data plane takes the consistent-hash key from the `x-dirigent-hash-key` request header
 * (the function name when absent).
 *
 * Each call here is O(n) in the number of endpoints or better, allocates no arrays (only the
 * small result object, and a new state object when the cursor moves), and draws randomness only
 * from the `Rng` port. The consistent-hash ring is built once per endpoint list and cached in the
 * state. Must not import anything but `shared/` helpers.
 */
import { unreachable } from '../../shared/assert.js';
import type { ListNode } from '../../shared/linked-list.js';
import type { Rng } from '../../shared/rng.js';

export interface LbEndpoint {
  id: string;
  inflight: number;
  /** 0 = unlimited. */
  slots: number;
  /**
   * Written by the index of `lb-index.ts` that holds the endpoint (least-loaded, round-robin):
   * its node in the index's list, or null. An endpoint is in one index at a time; an owner that
   * replaces an index removes every endpoint from the old one first.
   */
  lbNode?: ListNode<unknown> | null;
}

/** Every policy name, for config validation ("must be one of …"). */
export const lbPolicyNames = Object.freeze([
  'least-loaded',
  'knative',
  'round-robin',
  'random',
  'consistent-hash',
] as const);
export type LbPolicyName = (typeof lbPolicyNames)[number];
export type LbPolicy = LbPolicyName;

/**
 * Consistent-hash ring over endpoint ids, `lbVirtualNodes` points per endpoint, sorted by hash:
 *
 *   hashes  [ 0x0a.. 0x31.. 0x5c.. 0x9e.. 0xd2.. ]    key hash 0x70.. ─┐
 *   owners  [   1      0      2      0      1    ]    walk clockwise ──┘→ 0x9e.. (endpoint 0),
 *                                                     then 0xd2.. (1), wrapping to 0x0a.. (1)…
 */
export interface LbHashRing {
  /** The endpoint ids, in order, that the ring was built from (the cache key). */
  ids: readonly string[];
  hashes: Uint32Array;
  /** Index into the endpoint array of each ring point's owner. */
  owners: Uint32Array;
}

export interface LbState {
  /** Where the next rotating scan starts (round-robin, least-loaded ties, knative > 3). */
  cursor: number;
  /** consistent-hash only: the cached ring. */
  ring?: LbHashRing;
}

/** Knative: containerConcurrency 1..3 uses first-available, above that round robin. */
export const lbKnativeFirstAvailableMax = 3;
/** Bounded-load factor: no endpoint takes more than ceil(1.25 × average load). */
export const lbConsistentHashLoadFactor = 1.25;
/** Ring points per endpoint: spreads keys evenly enough while keeping rebuilds cheap. */
export const lbVirtualNodes = 64;

export function lbInitialState(): LbState {
  return { cursor: 0 };
}

/** True when the endpoint can take one more request. */
export function lbHasFreeSlot(endpoint: LbEndpoint): boolean {
  return endpoint.slots === 0 || endpoint.inflight < endpoint.slots;
}

export function pick(
  policy: LbPolicy,
  endpoints: readonly LbEndpoint[],
  concurrency: number,
  state: LbState,
  rng: Rng,
  key?: string,
): { index: number; state: LbState } {
  switch (policy) {
    case 'least-loaded':
      return pickLeastLoaded(endpoints, state);
    case 'knative':
      return pickKnative(endpoints, concurrency, state, rng);
    case 'round-robin':
      return pickRoundRobin(endpoints, state);
    case 'random':
      return { index: pickRandom(endpoints, rng), state };
    case 'consistent-hash':
      return pickConsistentHash(endpoints, state, key ?? '');
    default:
      return unreachable(policy, 'load-balancing policy');
  }
}

/**
 * Fewest in flight among the free endpoints. The scan starts at the cursor and only a strictly
 * smaller load replaces the pick, so ties go to the first free endpoint at or after the cursor;
 * the cursor then moves past the pick, so idle endpoints take turns.
 */
export function pickLeastLoaded(
  endpoints: readonly LbEndpoint[],
  state: LbState,
): { index: number; state: LbState } {
  const n = endpoints.length;
  const start = lbStart(state.cursor, n);
  let best = -1;
  for (let k = 0; k < n; k++) {
    const i = (start + k) % n;
    const e = endpoints[i];
    if (!lbHasFreeSlot(e)) continue;
    if (best < 0 || e.inflight < endpoints[best].inflight) best = i;
  }
  if (best < 0) return { index: -1, state };
  return { index: best, state: lbWithCursor(state, (best + 1) % n) };
}

/**
 * Knative's activator, chosen by containerConcurrency:
 *   1..3       first free endpoint in the given order (fills sandboxes in a stable order);
 *   0          power of two choices, keeping the LESS loaded (Dirigent keeps the more loaded:
 *              a bug we do not copy), ties by a coin flip;
 *   otherwise  round robin over the free endpoints.
 */
export function pickKnative(
  endpoints: readonly LbEndpoint[],
  concurrency: number,
  state: LbState,
  rng: Rng,
): { index: number; state: LbState } {
  if (concurrency >= 1 && concurrency <= lbKnativeFirstAvailableMax) {
    for (let i = 0; i < endpoints.length; i++) {
      if (lbHasFreeSlot(endpoints[i])) return { index: i, state };
    }
    return { index: -1, state };
  }
  if (concurrency === 0) return { index: pickPowerOfTwo(endpoints, rng), state };
  return pickRoundRobin(endpoints, state);
}

/** The first free endpoint at or after the cursor; the cursor moves past it. */
export function pickRoundRobin(
  endpoints: readonly LbEndpoint[],
  state: LbState,
): { index: number; state: LbState } {
  const n = endpoints.length;
  const start = lbStart(state.cursor, n);
  for (let k = 0; k < n; k++) {
    const i = (start + k) % n;
    if (lbHasFreeSlot(endpoints[i])) return { index: i, state: lbWithCursor(state, (i + 1) % n) };
  }
  return { index: -1, state };
}

/** Uniform among the free endpoints. */
export function pickRandom(endpoints: readonly LbEndpoint[], rng: Rng): number {
  const free = lbCountFree(endpoints);
  if (free === 0) return -1;
  return lbNthFree(endpoints, rng.int(free), free);
}

/**
 * Two distinct free endpoints drawn uniformly (Knative's `randomChoice2Policy`): the second
 * draw skips the first, so b = int(free − 1), b ≥ a → b + 1.
 */
export function pickPowerOfTwo(endpoints: readonly LbEndpoint[], rng: Rng): number {
  const free = lbCountFree(endpoints);
  if (free === 0) return -1;
  if (free === 1) return lbNthFree(endpoints, 0, free);
  let a = 0;
  let b = 1;
  if (free > 2) {
    a = rng.int(free);
    b = rng.int(free - 1);
    if (b >= a) b++;
  }
  const ia = lbNthFree(endpoints, a, free);
  const ib = lbNthFree(endpoints, b, free);
  const loadA = endpoints[ia].inflight;
  const loadB = endpoints[ib].inflight;
  if (loadA !== loadB) return loadA < loadB ? ia : ib;
  return rng.int(2) === 0 ? ia : ib;
}

/**
 * Consistent hashing with bounded loads (Mirrokni et al.). The key's hash is placed on the ring
 * and the walk goes clockwise to the first free endpoint whose load + 1 ≤ bound, where
 * bound = ceil(1.25 × (Σ inflight + 1) / n), the average counting this request. Such an endpoint
 * always exists when all have free slots (the least loaded one fits); if slot limits exclude
 * every endpoint under the bound, the first free endpoint on the walk is taken instead.
 *
 * Example: 4 endpoints with loads 3, 1, 1, 1: bound = ceil(1.25 × 7 / 4) = 3, so a key whose
 * home is endpoint 0 (load 3, 3 + 1 > 3) moves on to the next endpoint on the ring.
 */
export function pickConsistentHash(
  endpoints: readonly LbEndpoint[],
  state: LbState,
  key: string,
  totalInflight?: number,
): { index: number; state: LbState } {
  const n = endpoints.length;
  if (n === 0) return { index: -1, state };
  // A caller passing the total keeps the ring in step with the endpoints itself (lb-index).
  const owned = totalInflight !== undefined && state.ring !== undefined;
  const ring = owned || lbRingMatches(state.ring, endpoints) ? state.ring! : lbBuildRing(endpoints);
  const next: LbState = ring === state.ring ? state : { cursor: state.cursor, ring };
  // An index that keeps the running total passes it; otherwise it is summed here.
  let total = totalInflight ?? 0;
  if (totalInflight === undefined) for (let i = 0; i < n; i++) total += endpoints[i].inflight;
  const bound = Math.ceil((lbConsistentHashLoadFactor * (total + 1)) / n);
  const points = ring.hashes.length;
  const home = lbLowerBound(ring.hashes, lbHash(key));
  let fallback = -1;
  for (let step = 0; step < points; step++) {
    const i = ring.owners[(home + step) % points];
    const e = endpoints[i];
    if (!lbHasFreeSlot(e)) continue;
    if (e.inflight + 1 <= bound) return { index: i, state: next };
    if (fallback < 0) fallback = i;
  }
  return { index: fallback, state: next };
}

/** 32-bit FNV-1a over UTF-16 code units, then murmur3's fmix32 to spread similar strings. */
export function lbHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Builds the ring for these endpoints (only when the endpoint id list changed). */
export function lbBuildRing(endpoints: readonly LbEndpoint[]): LbHashRing {
  const points: { hash: number; owner: number }[] = [];
  for (let owner = 0; owner < endpoints.length; owner++) {
    for (let v = 0; v < lbVirtualNodes; v++) {
      points.push({ hash: lbHash(`${endpoints[owner].id}#${v}`), owner });
    }
  }
  points.sort((x, y) => x.hash - y.hash || x.owner - y.owner);
  const hashes = new Uint32Array(points.length);
  const owners = new Uint32Array(points.length);
  for (let i = 0; i < points.length; i++) {
    hashes[i] = points[i].hash;
    owners[i] = points[i].owner;
  }
  return { ids: endpoints.map((e) => e.id), hashes, owners };
}

function lbRingMatches(
  ring: LbHashRing | undefined,
  endpoints: readonly LbEndpoint[],
): ring is LbHashRing {
  if (ring === undefined || ring.ids.length !== endpoints.length) return false;
  for (let i = 0; i < endpoints.length; i++) if (ring.ids[i] !== endpoints[i].id) return false;
  return true;
}

/** Index of the first ring point with hash ≥ h, wrapping to 0 past the end. */
function lbLowerBound(hashes: Uint32Array, h: number): number {
  let lo = 0;
  let hi = hashes.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (hashes[mid] < h) lo = mid + 1;
    else hi = mid;
  }
  return lo === hashes.length ? 0 : lo;
}

function lbCountFree(endpoints: readonly LbEndpoint[]): number {
  let free = 0;
  for (let i = 0; i < endpoints.length; i++) if (lbHasFreeSlot(endpoints[i])) free++;
  return free;
}

/** Index of the k-th (0-based) free endpoint; direct when every endpoint is free. */
function lbNthFree(endpoints: readonly LbEndpoint[], k: number, free: number): number {
  if (free === endpoints.length) return k;
  let left = k;
  for (let i = 0; i < endpoints.length; i++) {
    if (lbHasFreeSlot(endpoints[i]) && left-- === 0) return i;
  }
  return -1;
}

function lbStart(cursor: number, n: number): number {
  if (n === 0) return 0;
  return ((Math.trunc(cursor) % n) + n) % n;
}

/** Same object when the cursor does not move: no allocation on the common path. */
function lbWithCursor(state: LbState, cursor: number): LbState {
  if (state.cursor === cursor) return state;
  // An object literal of known shape: much cheaper than a spread on this path.
  return state.ring === undefined ? { cursor } : { cursor, ring: state.ring };
}

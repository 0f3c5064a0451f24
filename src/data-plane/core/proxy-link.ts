/**
 * @module data-plane/core/proxy-link
 * Proxy processes (`--proxy-threads N`): one DP is a primary process that owns the data-plane
 * core (routing table, per-sandbox slots, queues, demand reports, the CP link) and serves
 * invocations itself, plus N-1 proxy processes that accept connections on the same listening
 * socket. A proxy process parses HTTP and streams bodies to and from sandboxes; every slot
 * decision stays in the primary's one core, so a sandbox's concurrency limit, the FIFO queues,
 * the load balancing and the CP's view of demand are the same as with one process.
 *
 * The two ends of the link, without I/O (the shells move the messages):
 * - `RemoteAdmission` (in a proxy process) stands where the core's admission calls stand in the
 *   proxy: `admit` sends the request's function and key and answers `queued`; the primary's
 *   `dispatch` or `fail` comes back as the effect the proxy carries out.
 * - `ProxyHub` (in the primary) runs those calls on the real core for each proxy process, and
 *   settles every request of a proxy process that died (its connections died with it).
 *
 * Held slots: a proxy process whose request ended keeps that slot (the primary still counts it
 * busy) for `heldSlotIdleMs`, and gives it to its next request for the same function without a
 * round trip. In steady traffic a proxy process then sends nothing per request. A held slot goes
 * back when it idles that long, when its sandbox stops being routable, or at once when the
 * primary queues a request for the function (`recall`; the process then holds none of that
 * function for `recallHoldOffMs`). Its cost: up to `heldSlotIdleMs` of idle time per gap counts
 * as demand, and a queue elsewhere waits one round trip for a held slot.
 *
 * A proxy process keeps a replica of the routing table (the primary forwards every update it
 * applied, after a snapshot of its own table) for what it decides alone: unknown functions,
 * invoke tokens, function timeouts, readiness.
 */
import type { RoutingUpdateMsg } from '../../api/cluster.js';
import { autoProxyThreadsCoresMin, proxyThreadsMax } from '../../config/defaults.js';
import type { AdmitResult, DpEffect, DpEndpoint, DpFunction, RetryCause, Waiter } from './types.js';

/** `proxyThreads` as configured, or for 0 (auto) from the machine's core count. */
export function resolveProxyThreads(configured: number, cores: number): number {
  if (configured > 0) return configured;
  return cores >= autoProxyThreadsCoresMin ? Math.min(cores, proxyThreadsMax) : 1;
}

/** What the invocation proxy asks of admission; the core itself, or `RemoteAdmission`. */
export interface Admission {
  admit(name: string, w: Waiter, nowMs: number): AdmitResult;
  cancel(w: Waiter, nowMs: number): DpEffect[];
  release(w: Waiter, nowMs: number): DpEffect[];
  retry(w: Waiter, nowMs: number, cause: RetryCause): DpEffect[];
}

/** Proxy process -> primary. Ids are the proxy process's own, unique while it lives. */
export type ToPrimary =
  | readonly ['admit', id: number, fn: string, key: string | null]
  | readonly ['release', id: number]
  | readonly ['cancel', id: number]
  /** `ageMs`: since the request arrived at the proxy process (its wait limit runs from then). */
  | readonly ['retry', id: number, cause: RetryCause, ageMs: number]
  /** Its replica could not apply an update: send a snapshot. */
  | readonly ['resync'];

/** Primary -> proxy process. */
export type ToProxy =
  | readonly ['dispatch', id: number, sandboxId: string, address: string, cold: boolean]
  | readonly ['fail', id: number, status: number, code: string, message: string]
  /** The function has a queue here: give back its idle held slots, and hold none for a while. */
  | readonly ['recall', fn: string]
  | readonly ['routing', term: number, update: RoutingUpdateMsg];

const retryCauses = new Set<string>(['refused', 'reset']);
/** Longest function key or hash key a proxy process may send (the HTTP head limit bounds them anyway). */
const keyLengthMax = 16_384;

/**
 * A message from a proxy process, checked at the boundary: another process's bytes, even our
 * own child's, are never trusted to have the shape the types claim. Null when malformed.
 */
export function parseToPrimary(raw: unknown): ToPrimary | null {
  if (!Array.isArray(raw) || raw.length < 1) return null;
  const [op, id] = raw as unknown[];
  if (op === 'resync') return raw.length === 1 ? ['resync'] : null;
  if (!Number.isSafeInteger(id) || (id as number) <= 0) return null;
  const n = id as number;
  if (op === 'admit') {
    const [, , fn, key] = raw as unknown[];
    if (raw.length !== 4 || typeof fn !== 'string' || fn.length === 0 || fn.length > keyLengthMax) return null;
    if (key !== null && (typeof key !== 'string' || key.length > keyLengthMax)) return null;
    return ['admit', n, fn, key];
  }
  if ((op === 'release' || op === 'cancel') && raw.length === 2) return [op, n];
  if (op === 'retry' && raw.length === 4 && retryCauses.has(raw[2] as string)) {
    const age = raw[3];
    if (typeof age !== 'number' || !Number.isFinite(age) || age < 0) return null;
    return ['retry', n, raw[2] as RetryCause, age];
  }
  return null;
}

/**
 * A message from the primary, checked at the boundary like the other direction (the routing
 * update itself was validated where it entered the primary, from the CP). Null when malformed.
 */
export function parseToProxy(raw: unknown): ToProxy | null {
  if (!Array.isArray(raw) || raw.length < 2) return null;
  const r = raw as unknown[];
  const id = r[1];
  const isId = Number.isSafeInteger(id) && (id as number) > 0;
  if (r[0] === 'dispatch' && r.length === 5 && isId && typeof r[2] === 'string' && typeof r[3] === 'string' && typeof r[4] === 'boolean') {
    return ['dispatch', id as number, r[2], r[3], r[4]];
  }
  if (r[0] === 'fail' && r.length === 5 && isId && Number.isInteger(r[2]) && (r[2] as number) >= 400 && (r[2] as number) <= 599
    && typeof r[3] === 'string' && typeof r[4] === 'string') {
    return ['fail', id as number, r[2] as number, r[3], r[4]];
  }
  if (r[0] === 'recall' && r.length === 2 && typeof r[1] === 'string' && r[1].length > 0) return ['recall', r[1]];
  if (r[0] === 'routing' && r.length === 3 && Number.isSafeInteger(r[1]) && (r[1] as number) >= 0) {
    const u = r[2] as { case?: unknown; value?: unknown } | null;
    if (u && (u.case === 'snapshot' || u.case === 'delta') && typeof u.value === 'object' && u.value !== null) return ['routing', r[1] as number, u as RoutingUpdateMsg];
  }
  return null;
}

// ------------------------------------------------------------------ proxy-process end

/** How long a proxy process keeps an idle slot for its next request of the same function. */
export const heldSlotIdleMs = 5;
/** After a recall, a proxy process holds no slot of that function for this long. */
export const recallHoldOffMs = 500;
/** The primary recalls a function's held slots at most this often while it has a queue. */
export const recallGapMs = recallHoldOffMs / 2;

interface RemoteWaiterFields {
  /** This proxy process's id of the request while the primary knows it. */
  remoteId?: number;
}

/** A slot the primary gave this process, idle now, kept for its next request of the function. */
interface HeldSlot {
  remoteId: number;
  endpoint: DpEndpoint;
  sinceMs: number;
}

/**
 * Admission through the primary. A request is `queued` here from `admit` until the primary's
 * dispatch or failure arrives (even when the primary dispatches at once: it is a round trip).
 */
export class RemoteAdmission implements Admission {
  private nextId = 1;
  private readonly pending = new Map<number, Waiter & RemoteWaiterFields>();
  /** Idle held slots per function object, oldest first. */
  private readonly held = new Map<DpFunction, HeldSlot[]>();
  private heldCount = 0;
  /** Function name -> until when no slot of it is held (after a recall). */
  private readonly holdOffUntilMs = new Map<string, number>();

  constructor(
    private readonly replica: { readonly functions: ReadonlyMap<string, DpFunction>; readonly endpoints: ReadonlyMap<string, DpEndpoint>; readonly synced: boolean },
    private readonly send: (m: ToPrimary) => void,
    /** Called when a slot becomes held: the shell arms a timer for `expireHeld` if none is armed. */
    private readonly onHold: () => void = () => {},
    private readonly holdIdleMs = heldSlotIdleMs,
  ) {}

  /** Idle held slots now. */
  get heldSlots(): number {
    return this.heldCount;
  }

  admit(name: string, w: Waiter & RemoteWaiterFields, nowMs: number): AdmitResult {
    const fn = this.replica.functions.get(name);
    if (!fn) return { kind: this.replica.synced ? 'not_found' : 'not_ready', effects: [] };
    const slot = this.takeHeld(fn);
    if (slot) {
      // No round trip: the primary counts this slot busy since the request that got it.
      w.owner = fn;
      w.remoteId = slot.remoteId;
      w.state = 'dispatched';
      w.endpoint = slot.endpoint;
      w.cold = false;
      w.dispatchedAtMs = nowMs;
      this.pending.set(slot.remoteId, w);
      return { kind: 'dispatched', effects: [{ kind: 'dispatch', waiter: w }] };
    }
    const id = this.nextId++;
    w.owner = fn;
    w.state = 'queued';
    w.remoteId = id;
    this.pending.set(id, w);
    this.send(['admit', id, name, w.key ?? null]);
    return { kind: 'queued', effects: [] };
  }

  cancel(w: Waiter & RemoteWaiterFields, _nowMs: number): DpEffect[] {
    if (w.state !== 'queued' || w.remoteId === undefined) return [];
    w.state = 'cancelled';
    this.pending.delete(w.remoteId);
    // The primary may have dispatched it already (the messages crossed): it frees the slot then.
    this.send(['cancel', w.remoteId]);
    return [];
  }

  release(w: Waiter & RemoteWaiterFields, nowMs: number): DpEffect[] {
    if (w.state !== 'dispatched' || w.remoteId === undefined) return [];
    w.state = 'done';
    this.pending.delete(w.remoteId);
    const fn = w.owner!;
    if (this.holdIdleMs > 0 && this.mayHold(fn, w.endpoint!, nowMs)) {
      let list = this.held.get(fn);
      if (!list) {
        list = [];
        this.held.set(fn, list);
      }
      list.push({ remoteId: w.remoteId, endpoint: w.endpoint!, sinceMs: nowMs });
      this.heldCount += 1;
      this.onHold();
    } else {
      this.send(['release', w.remoteId]);
    }
    return [];
  }

  retry(w: Waiter & RemoteWaiterFields, nowMs: number, cause: RetryCause): DpEffect[] {
    if (w.state !== 'dispatched' || w.remoteId === undefined) return [];
    w.state = 'queued';
    w.endpoint = null;
    this.send(['retry', w.remoteId, cause, Math.max(0, nowMs - w.arrivalMs)]);
    return [];
  }

  /** When the oldest idle held slot is due back (null: none held); the shell arms a timer. */
  nextHeldExpiryMs(): number | null {
    let next: number | null = null;
    for (const list of this.held.values()) {
      const first = list[0];
      if (first && (next === null || first.sinceMs + this.holdIdleMs < next)) next = first.sinceMs + this.holdIdleMs;
    }
    return next;
  }

  /** Gives back held slots idle for `heldSlotIdleMs`, and those no longer usable (sandbox drained or gone, function deleted). */
  expireHeld(nowMs: number): void {
    for (const [fn, list] of this.held) {
      const keep = list.filter((h) => {
        const ok = nowMs - h.sinceMs < this.holdIdleMs && this.usable(fn, h.endpoint);
        if (!ok) this.giveBack(h);
        return ok;
      });
      if (keep.length === 0) this.held.delete(fn);
      else this.held.set(fn, keep);
    }
  }

  /** A message from the primary: the effects for the proxy (a routing update is the shell's). */
  handle(m: ToProxy, nowMs: number): DpEffect[] {
    if (m[0] === 'recall') {
      if (this.holdOffUntilMs.size >= recallMemoryMax) this.dropPastHoldOffs(nowMs);
      this.holdOffUntilMs.set(m[1], nowMs + recallHoldOffMs);
      for (const [fn, list] of this.held) {
        if (fn.name !== m[1]) continue;
        for (const h of list) this.giveBack(h);
        this.held.delete(fn);
      }
      return [];
    }
    if (m[0] === 'dispatch') {
      const [, id, sandboxId, address, cold] = m;
      const w = this.pending.get(id);
      // Unknown: cancelled here while the primary dispatched it; the cancel frees that slot.
      if (!w || w.state !== 'queued') return [];
      w.state = 'dispatched';
      w.endpoint = this.endpointFor(w, sandboxId, address);
      w.cold = cold;
      w.dispatchedAtMs = nowMs;
      return [{ kind: 'dispatch', waiter: w }];
    }
    if (m[0] === 'fail') {
      const [, id, status, code, message] = m;
      const w = this.pending.get(id);
      if (!w || w.state !== 'queued') return [];
      this.pending.delete(id);
      w.state = 'done';
      return [{ kind: 'fail', waiter: w, status, code, message }];
    }
    return [];
  }

  private takeHeld(fn: DpFunction): HeldSlot | null {
    const list = this.held.get(fn);
    // The newest first: the oldest expire, so a steady stream keeps the fewest slots.
    for (let h = list?.pop(); h; h = list!.pop()) {
      this.heldCount -= 1;
      if (this.usable(fn, h.endpoint)) return h;
      this.send(['release', h.remoteId]);
    }
    return null;
  }

  private mayHold(fn: DpFunction, ep: DpEndpoint, nowMs: number): boolean {
    const offUntil = this.holdOffUntilMs.get(fn.name);
    if (offUntil !== undefined && nowMs < offUntil) return false;
    if (offUntil !== undefined) this.holdOffUntilMs.delete(fn.name);
    return this.usable(fn, ep);
  }

  /** The replica still routes this function and this sandbox. */
  private usable(fn: DpFunction, ep: DpEndpoint): boolean {
    return !fn.deleted && this.replica.functions.get(fn.name) === fn && this.replica.endpoints.get(ep.id) === ep && ep.state === 'routable';
  }

  private dropPastHoldOffs(nowMs: number): void {
    for (const [name, untilMs] of this.holdOffUntilMs) if (untilMs <= nowMs) this.holdOffUntilMs.delete(name);
  }

  private giveBack(h: HeldSlot): void {
    this.heldCount -= 1;
    this.send(['release', h.remoteId]);
  }

  /**
   * The replica's endpoint (updates arrive before the dispatches that use them, on one ordered
   * channel), or a stand-in when this replica dropped it in between (only its id and address
   * are used to send the request).
   */
  private endpointFor(w: Waiter, sandboxId: string, address: string): DpEndpoint {
    const known = this.replica.endpoints.get(sandboxId);
    if (known && known.address === address) return known;
    const owner = w.owner!;
    return { id: sandboxId, fn: owner.name, owner, address, workerId: '', inflight: 0, slots: 0, state: 'removed', addedAtMs: 0, index: -1, lbNode: null };
  }
}

// ------------------------------------------------------------------ primary end

/** A request of a proxy process, as the primary's core holds it. */
export interface HubWaiter extends Waiter {
  proxy: number;
  remoteId: number;
}

export function isHubWaiter(w: Waiter): w is HubWaiter {
  return typeof (w as Partial<HubWaiter>).proxy === 'number';
}

/** Functions whose last recall time is remembered; past it the memory starts afresh. */
const recallMemoryMax = 100_000;

/** Requests one proxy process may have in the primary at once; beyond it the process is faulty. */
const remoteRequestsMax = 1_000_000;

/**
 * Runs proxy processes' admission calls on the core. Every effect the core returns goes back to
 * the shell's effect runner, which sends a `HubWaiter`'s dispatch or failure to its process
 * (`dispatchMessage`, `failMessage`).
 */
export class ProxyHub {
  private readonly byProxy = new Map<number, Map<number, HubWaiter>>();
  /** Requests each proxy process sent, by process index (for metrics: how the kernel spread connections). */
  readonly admitted = new Map<number, number>();
  private readonly recalledAtMs = new Map<string, number>();

  constructor(
    private readonly core: Admission,
    private readonly newWaiter: (fn: string, nowMs: number, key?: string) => Waiter,
  ) {}

  /** Requests the core holds for this proxy process now. */
  held(proxy: number): number {
    return this.byProxy.get(proxy)?.size ?? 0;
  }

  handle(proxy: number, m: ToPrimary, nowMs: number): { effects: DpEffect[]; reply: ToProxy[] } {
    const held = this.mapOf(proxy);
    if (m[0] === 'admit') {
      const [, id, fn, key] = m;
      this.admitted.set(proxy, (this.admitted.get(proxy) ?? 0) + 1);
      if (held.has(id)) return { effects: [], reply: [] }; // a repeated id: the first one stands
      if (held.size >= remoteRequestsMax) return { effects: [], reply: [['fail', id, 503, 'queue_full', `proxy process ${proxy} holds ${held.size} requests`]] };
      const w = Object.assign(this.newWaiter(fn, nowMs, key ?? undefined), { proxy, remoteId: id }) as HubWaiter;
      const r = this.core.admit(fn, w, nowMs);
      if (r.kind === 'dispatched' || r.kind === 'queued') {
        held.set(id, w);
        return { effects: r.effects, reply: [] };
      }
      return { effects: r.effects, reply: [admitFailure(id, fn, r)] };
    }
    if (m[0] === 'resync') return { effects: [], reply: [] };
    const w = held.get(m[1]);
    if (!w) return { effects: [], reply: [] };
    if (m[0] === 'retry') {
      // Its wait limit runs from its arrival at the proxy process (a held slot's waiter is older).
      w.arrivalMs = nowMs - m[3];
      return { effects: this.core.retry(w, nowMs, m[2]), reply: [] };
    }
    held.delete(m[1]);
    // A cancel that crossed the dispatch frees the slot like a release.
    if (w.state === 'queued') return { effects: this.core.cancel(w, nowMs), reply: [] };
    return { effects: this.core.release(w, nowMs), reply: [] };
  }

  /**
   * Recalls for functions that queued a request behind busy sandboxes (`DataPlaneCore.takeNewlyQueued`),
   * to every proxy process; at most one per function per `recallGapMs`.
   */
  recalls(queued: readonly DpFunction[], nowMs: number): ToProxy[] {
    const out: ToProxy[] = [];
    for (const fn of queued) {
      // Without a routable sandbox the queue waits for a new one: no held slot could serve it.
      if (fn.endpoints.length === 0) continue;
      const last = this.recalledAtMs.get(fn.name);
      if (last !== undefined && nowMs - last < recallGapMs) continue;
      this.recalledAtMs.set(fn.name, nowMs);
      out.push(['recall', fn.name]);
    }
    if (this.recalledAtMs.size > recallMemoryMax) this.recalledAtMs.clear();
    return out;
  }

  /** The message for a dispatch effect of a `HubWaiter`. */
  dispatchMessage(w: HubWaiter): ToProxy {
    const ep = w.endpoint!;
    return ['dispatch', w.remoteId, ep.id, ep.address, w.cold];
  }

  /** The message for a failure effect of a `HubWaiter`; the core is done with it. */
  failMessage(w: HubWaiter, status: number, code: string, message: string): ToProxy {
    this.byProxy.get(w.proxy)?.delete(w.remoteId);
    return ['fail', w.remoteId, status, code, message];
  }

  /** The proxy process is gone, and its clients' connections with it: every request it had ends. */
  lost(proxy: number, nowMs: number): DpEffect[] {
    const held = this.byProxy.get(proxy);
    this.byProxy.delete(proxy);
    if (!held) return [];
    const effects: DpEffect[] = [];
    for (const w of held.values()) {
      if (w.state === 'queued') effects.push(...this.core.cancel(w, nowMs));
      else effects.push(...this.core.release(w, nowMs));
    }
    return effects;
  }

  private mapOf(proxy: number): Map<number, HubWaiter> {
    let m = this.byProxy.get(proxy);
    if (!m) {
      m = new Map();
      this.byProxy.set(proxy, m);
    }
    return m;
  }
}

function admitFailure(id: number, fn: string, r: AdmitResult): ToProxy {
  if (r.kind === 'not_found') return ['fail', id, 404, 'function_not_found', `function ${fn} not found`];
  if (r.kind === 'not_ready') return ['fail', id, 503, 'not_ready', 'no routing table from a control plane yet; retry'];
  if (r.kind === 'queue_full') return ['fail', id, 503, 'queue_full', `queue of ${fn} is full (${r.depth} waiting)`];
  return ['fail', id, 500, 'internal', `unexpected admission ${r.kind}`];
}

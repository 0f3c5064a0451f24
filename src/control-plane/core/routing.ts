/**
 * @module control-plane/core/routing
 * The routing table the CP pushes to every data plane: functions and ready endpoints, versioned.
 * Changes made during one `handle`/`tick` call accumulate in a pending delta; `seal()` turns
 * them into one delta with the next version. A (re)connecting DP gets `snapshot()`.
 *
 *   version:   1 ──delta──▶ 2 ──delta──▶ 3          DP at 2 receiving delta 4 = gap ▶ resync
 */
import type {
  DataPlanePeerMsg,
  EndpointMsg as Endpoint,
  FunctionFailureCode,
  InvokeTokenMsg,
  FunctionSpecMsg as WireSpec,
  RoutingDeltaMsg as RoutingDelta,
  RoutingSnapshotMsg as RoutingSnapshot,
} from '../../api/cluster.js';
import { emptySmallSet, smallSetAdd, smallSetDelete, smallSetSize, type SmallSet } from '../../shared/small-set.js';

/**
 * A delta's lists start as one shared frozen empty list and get their own on their first entry:
 * a delta is sealed per turn that changed the table (one per sandbox ready at 4,000 cold
 * starts/s), and most of its ten lists stay empty (ten arrays per delta were 5 % of what the CP
 * allocated; BENCHMARKS.md, "Fewer bytes per cold start"). Sealed deltas are read, never written.
 */
const noEntries: readonly never[] = Object.freeze([]);

function emptyDelta(): RoutingDelta {
  const none = noEntries as never[];
  return { version: 0, upsertFunctions: none, deleteFunctions: none, addEndpoints: none, removeEndpoints: none, drainEndpoints: none, failures: none, upsertTokens: none, revokeTokens: none, upsertPeers: none, removePeers: none };
}

/** `list` with `item` appended: a list of its own for the first entry, in place after. */
function pushed<T>(list: T[], item: T): T[] {
  if (list === (noEntries as unknown)) return [item];
  list.push(item);
  return list;
}

export class RoutingTable {
  private versionNow = 0;
  private readonly functions = new Map<string, WireSpec>();
  private readonly endpoints = new Map<string, Endpoint>();
  /**
   * Endpoint ids per function, so deleting a function is O(its endpoints); a function without
   * endpoints has no entry (a SmallSet: a list while few).
   */
  private readonly byFunction = new Map<string, SmallSet>();
  /** Tokens that may invoke `auth: token` functions, by id (only their hashes). */
  private readonly tokens = new Map<string, InvokeTokenMsg>();
  /** Data planes by id: each DP forwards reads of another's async invocations to it. */
  private readonly peers = new Map<string, DataPlanePeerMsg>();
  private pending: RoutingDelta = emptyDelta();
  private dirty = false;

  get version(): number {
    return this.versionNow;
  }

  /** The version the changes made now are sealed into (the next `seal()`). */
  get nextVersion(): number {
    return this.versionNow + 1;
  }

  /**
   * A function's spec, new or changed. The same uid and generation the table already holds is
   * the same record (a generation is never reused): no delta, as when a create announced while
   * its commit ran becomes live.
   */
  upsertFunction(spec: WireSpec): void {
    const held = this.functions.get(spec.name);
    this.functions.set(spec.name, spec);
    if (held !== undefined && held.uid === spec.uid && held.generation === spec.generation) return;
    this.pending.upsertFunctions = pushed(this.pending.upsertFunctions, spec);
    this.dirty = true;
  }

  deleteFunction(name: string): void {
    const spec = this.functions.get(name);
    if (!spec) return;
    this.functions.delete(name);
    for (const id of this.byFunction.get(name) ?? []) this.endpoints.delete(id);
    this.byFunction.delete(name);
    this.pending.deleteFunctions = pushed(this.pending.deleteFunctions, { name, uid: spec.uid });
    this.dirty = true;
  }

  addEndpoint(ep: Endpoint): void {
    this.endpoints.set(ep.sandboxId, ep);
    const ids = this.byFunction.get(ep.function) ?? emptySmallSet;
    const next = smallSetAdd(ids, ep.sandboxId);
    if (next !== ids) this.byFunction.set(ep.function, next);
    this.pending.addEndpoints = pushed(this.pending.addEndpoints, ep);
    this.dirty = true;
  }

  /** Gone without draining (crash, worker loss): DPs drop it at once. */
  removeEndpoint(sandboxId: string): void {
    if (!this.forget(sandboxId)) return;
    this.unadd(sandboxId);
    this.pending.removeEndpoints = pushed(this.pending.removeEndpoints, sandboxId);
    this.dirty = true;
  }

  /**
   * Scale-down: DPs stop routing to it and report when its last request is done. If it was
   * added in this same delta, the add is withdrawn (DPs apply drains before adds, and would
   * otherwise route to a deleted sandbox); the drain stays so DPs acknowledge it at once.
   */
  drainEndpoint(sandboxId: string): void {
    if (!this.forget(sandboxId)) return;
    this.unadd(sandboxId);
    this.pending.drainEndpoints = pushed(this.pending.drainEndpoints, sandboxId);
    this.dirty = true;
  }

  /**
   * A sandbox the table never routed in this incarnation (a reconnecting worker's leftover): DPs
   * that still run requests on it from before acknowledge it when idle, the others at once.
   */
  drainUnrouted(sandboxId: string): void {
    if (this.endpoints.has(sandboxId)) return this.drainEndpoint(sandboxId);
    this.pending.drainEndpoints = pushed(this.pending.drainEndpoints, sandboxId);
    this.dirty = true;
  }

  private forget(sandboxId: string): boolean {
    const ep = this.endpoints.get(sandboxId);
    if (!ep) return false;
    this.endpoints.delete(sandboxId);
    const ids = this.byFunction.get(ep.function);
    if (ids) {
      const next = smallSetDelete(ids, sandboxId);
      if (smallSetSize(next) === 0) this.byFunction.delete(ep.function);
      else if (next !== ids) this.byFunction.set(ep.function, next);
    }
    return true;
  }

  private unadd(sandboxId: string): void {
    const adds = this.pending.addEndpoints;
    const i = adds.findIndex((e) => e.sandboxId === sandboxId);
    if (i >= 0) adds.splice(i, 1);
  }

  /** DPs fail the function's queued requests now: 502 for 'sandbox_failure', 503 for 'unschedulable'. */
  failFunction(name: string, code: FunctionFailureCode, reason: string): void {
    const functionUid = this.functions.get(name)?.uid ?? '';
    this.pending.failures = pushed(this.pending.failures, { function: name, functionUid, code, reason });
    this.dirty = true;
  }

  /**
   * The whole token set: new or changed tokens go in the next delta's upserts, missing ones in
   * its revokes. O(tokens) per call; tokens change at human pace.
   */
  setTokens(tokens: readonly InvokeTokenMsg[]): void {
    const next = new Map(tokens.map((t) => [t.id, t]));
    for (const id of [...this.tokens.keys()]) {
      if (next.has(id)) continue;
      this.tokens.delete(id);
      this.pending.upsertTokens = this.pending.upsertTokens.filter((t) => t.id !== id);
      this.pending.revokeTokens = pushed(this.pending.revokeTokens, id);
      this.dirty = true;
    }
    for (const t of next.values()) {
      const known = this.tokens.get(t.id);
      if (known && sameToken(known, t)) continue;
      this.tokens.set(t.id, { ...t });
      this.pending.revokeTokens = this.pending.revokeTokens.filter((id) => id !== t.id);
      this.pending.upsertTokens = pushed(this.pending.upsertTokens, { ...t });
      this.dirty = true;
    }
  }

  /** A data plane said hello (or was restored): new or moved ones go in the next delta. */
  upsertPeer(peer: DataPlanePeerMsg): void {
    if (this.peers.get(peer.dataPlaneId)?.proxyAddress === peer.proxyAddress) return;
    this.peers.set(peer.dataPlaneId, { ...peer });
    this.pending.removePeers = this.pending.removePeers!.filter((id) => id !== peer.dataPlaneId);
    this.pending.upsertPeers = pushed(this.pending.upsertPeers!, { ...peer });
    this.dirty = true;
  }

  /** A data plane the CP forgot: its invocation ids become unknown (404) on the others. */
  removePeer(dataPlaneId: string): void {
    if (!this.peers.delete(dataPlaneId)) return;
    this.pending.upsertPeers = this.pending.upsertPeers!.filter((p) => p.dataPlaneId !== dataPlaneId);
    this.pending.removePeers = pushed(this.pending.removePeers!, dataPlaneId);
    this.dirty = true;
  }

  tokenCount(): number {
    return this.tokens.size;
  }

  /** The accumulated changes as one delta with the next version, or null if nothing changed. */
  seal(): RoutingDelta | null {
    if (!this.dirty) return null;
    this.versionNow += 1;
    const delta = this.pending;
    delta.version = this.versionNow;
    this.pending = emptyDelta();
    this.dirty = false;
    return delta;
  }

  /** The whole table; `draining` lists the sandboxes a DP must still acknowledge as idle. */
  snapshot(draining: string[]): RoutingSnapshot {
    return {
      version: this.versionNow,
      functions: [...this.functions.values()],
      endpoints: [...this.endpoints.values()],
      drainEndpoints: draining,
      tokens: [...this.tokens.values()],
      peers: [...this.peers.values()],
    };
  }

  endpointCount(): number {
    return this.endpoints.size;
  }

  /** Invariant (simulator): every endpoint is listed once under its function, and no list is empty. */
  indexIsExact(): boolean {
    let listed = 0;
    for (const [fn, set] of this.byFunction) {
      const ids = [...set];
      if (ids.length === 0 || new Set(ids).size !== ids.length) return false;
      for (const id of ids) if (this.endpoints.get(id)?.function !== fn) return false;
      listed += ids.length;
    }
    return listed === this.endpoints.size;
  }

  hasEndpoint(sandboxId: string): boolean {
    return this.endpoints.has(sandboxId);
  }
}

function sameToken(a: InvokeTokenMsg, b: InvokeTokenMsg): boolean {
  return a.sha256Hex === b.sha256Hex && a.scope === b.scope && a.namespace === b.namespace;
}

/**
 * @module control-plane/core/registry
 * The function registry: existence, uid and generation of every function, and the order of
 * the API's create/update/delete operations. Operations on one name run one at a time:
 *
 *   api op ──▶ queue(name) ──▶ store_function / store_delete_function effect ──▶ shell awaits
 *   the store ──▶ persisted ──▶ apply (routing, sandboxes) ──▶ api_done ──▶ next op of name
 *
 * A create is announced to the DPs (a routing upsert) when its store write starts, so the DPs
 * apply it while the commit runs; it becomes live here (autoscaler, quotas, sandboxes) only
 * once persisted, and the API answers only after the commit and every DP's ack of the
 * announcement. A commit that fails takes the announcement back (a routing delete). Until it
 * is persisted, a DP may queue an invocation of it, and the CP ignores that DP's demand for it
 * (it is not live yet): the DP's next periodic report asks again. Updates and deletes change
 * the routing only once persisted.
 *
 * so 50 concurrent PATCHes all apply (each patches the result of the previous one), a DELETE
 * racing a PATCH never answers 204 and then sees the function come back, and 50 concurrent
 * creates of one name store exactly one record. The queue per name is bounded.
 */
import type { FunctionRecord, IdleHistoryRecord } from '../../api/types.js';
import { idleHistoryFits, newFnState, sandboxSpecChanged, specGenerationOf, toWireSpec } from './functions.js';
import { cancelSandbox, drain } from './sandboxes.js';
import type { CoreState } from './state.js';
import type { ApiOp, ApiResult } from './types.js';

interface InFlight {
  op: ApiOp;
  opId: number;
  record: FunctionRecord | null;
  /** A create announced to the DPs while its commit runs: the routing version carrying it; else 0. */
  announcedVersion: number;
}

interface NameQueue {
  inFlight: InFlight | null;
  waiting: ApiOp[];
}

export class Registry {
  private readonly queues = new Map<string, NameQueue>();
  private readonly byOpId = new Map<number, string>();
  private opSeq = 0;

  constructor(private readonly s: CoreState) {}

  submit(op: ApiOp, nowMs: number): void {
    const name = op.kind === 'api_create' ? op.spec.name : op.name;
    let q = this.queues.get(name);
    if (!q) this.queues.set(name, (q = { inFlight: null, waiting: [] }));
    if (q.inFlight) {
      if (q.waiting.length >= this.s.registryQueuePerNameMax) return this.done(op, 'queue_full');
      q.waiting.push(op);
      return;
    }
    this.start(name, q, op, nowMs);
  }

  onPersisted(opId: number, nowMs: number): void {
    const { name, q, f } = this.take(opId) ?? {};
    if (!name || !q || !f) return;
    if (f.op.kind === 'api_delete') {
      applyDelete(this.s, name, nowMs);
      this.done(f.op, 'deleted');
    } else {
      applyUpsert(this.s, f.record!, nowMs, false);
      this.done(f.op, f.op.kind === 'api_create' ? 'created' : 'updated', f.announcedVersion);
    }
    this.next(name, q, nowMs);
  }

  onPersistFailed(opId: number, error: string, nowMs: number): void {
    const { name, q, f } = this.take(opId) ?? {};
    if (!name || !q || !f) return;
    this.s.log.error('function.store_failed', { fn: name, op: f.op.kind, error });
    // An announced create that did not commit: the DPs forget it (no record of it is live here).
    if (f.announcedVersion > 0 && !this.s.functions.has(name)) this.s.routing.deleteFunction(name);
    this.done(f.op, 'store_failed');
    this.next(name, q, nowMs);
  }

  /** Operations waiting or in flight (for tests and metrics). */
  pendingCount(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.waiting.length + (q.inFlight ? 1 : 0);
    return n;
  }

  private take(opId: number) {
    const name = this.byOpId.get(opId);
    if (name === undefined) return null;
    this.byOpId.delete(opId);
    const q = this.queues.get(name);
    const f = q?.inFlight;
    if (!q || !f || f.opId !== opId) return null;
    q.inFlight = null;
    return { name, q, f };
  }

  /** Start the next waiting operation of `name`; drop the queue once it is empty. */
  private next(name: string, q: NameQueue, nowMs: number): void {
    while (!q.inFlight && q.waiting.length > 0) this.start(name, q, q.waiting.shift()!, nowMs);
    if (!q.inFlight && q.waiting.length === 0) this.queues.delete(name);
  }

  /** Decide the operation against the current registry; ask the store if it changes anything. */
  private start(name: string, q: NameQueue, op: ApiOp, nowMs: number): void {
    const current = this.s.functions.get(name)?.record;
    if (op.kind === 'api_create') {
      if (current) return this.finishNow(name, q, op, 'exists', nowMs);
      const record: FunctionRecord = { spec: op.spec, uid: op.uid, generation: 1, createdAtMs: op.wallMs, updatedAtMs: op.wallMs };
      this.store(name, q, op, record);
      // Announced now, so the DPs apply it while the store commits: the answer still waits for
      // both, but for the longer of the two instead of their sum.
      q.inFlight!.announcedVersion = this.s.routing.nextVersion;
      this.s.routing.upsertFunction(toWireSpec(record));
      return;
    }
    if (!current) return this.finishNow(name, q, op, 'not_found', nowMs);
    if (op.kind === 'api_delete') return this.store(name, q, op, null);
    const spec = op.patch(current.spec);
    if (spec === current.spec) return this.finishNow(name, q, op, 'updated', nowMs);
    const generation = current.generation + 1;
    const record: FunctionRecord = { ...current, spec, generation, updatedAtMs: op.wallMs };
    const restart = sandboxSpecChanged(toWireSpec(current), toWireSpec(record));
    record.specGeneration = restart ? generation : specGenerationOf(current);
    this.store(name, q, op, record);
  }

  private finishNow(name: string, q: NameQueue, op: ApiOp, result: ApiResult, nowMs: number): void {
    this.done(op, result);
    this.next(name, q, nowMs);
  }

  private store(name: string, q: NameQueue, op: ApiOp, record: FunctionRecord | null): void {
    this.opSeq += 1;
    const opId = this.opSeq;
    q.inFlight = { op, opId, record, announcedVersion: 0 };
    this.byOpId.set(opId, name);
    if (record) this.s.effects.push({ kind: 'store_function', opId, record });
    else this.s.effects.push({ kind: 'store_delete_function', opId, name });
  }

  /** `routingVersion` 0: filled in by flush(), after this call's routing changes are sealed. */
  private done(op: ApiOp, result: ApiResult, routingVersion = 0): void {
    this.s.effects.push({ kind: 'api_done', requestId: op.requestId, result, routingVersion });
  }
}

/** Make a stored record live: routing, and sandboxes of an old spec drained. */
export function applyUpsert(s: CoreState, record: FunctionRecord, nowMs: number, reconstructed: boolean, idleHistory?: IdleHistoryRecord): void {
  const name = record.spec.name;
  const existing = s.functions.get(name);
  if (existing && existing.record.uid !== record.uid) applyDelete(s, name, nowMs);
  const fn = s.functions.get(name);
  if (!fn) {
    const created = newFnState(record, nowMs, reconstructed, idleHistory);
    // A stored history that does not fit (the keep-alive was off, or its window changed, when the
    // last leader went) would never be read again: the store forgets it.
    if (idleHistory && !idleHistoryFits(record, idleHistory)) s.effects.push({ kind: 'store_delete_idle_history', name });
    s.functions.set(name, created);
    s.quotas.countFunction(name, 1);
    s.routing.upsertFunction(created.wire);
    s.markDirty(created);
    s.log.info('function.registered', { fn: name, uid: record.uid, desired: created.desired });
    return;
  }
  const wire = toWireSpec(record);
  const restart = sandboxSpecChanged(fn.wire, wire);
  const keptAlive = fn.record.spec.scaling.keepAliveWindowS !== 0;
  fn.record = record;
  fn.wire = wire;
  fn.failures = 0;
  fn.retryAtMs = 0;
  fn.blockedEpoch = -1;
  fn.desired = Math.min(record.spec.scaling.max, Math.max(record.spec.scaling.min, fn.desired));
  if (record.spec.scaling.keepAliveWindowS === 0) {
    fn.keepAlive = null;
    fn.keepAliveWakeAtMs = 0;
    fn.keepAliveHeld = 0;
    fn.keepAliveNote = '';
    // The learned idle times go with the policy, in the store as here: a later leader must not
    // bring back what this update turned off.
    if (keptAlive) s.effects.push({ kind: 'store_delete_idle_history', name });
  }
  s.routing.upsertFunction(wire);
  if (restart) {
    // Running sandboxes run the old spec: drain them all; reconcile starts new ones.
    for (const id of [...fn.sandboxIds]) {
      const sb = s.sandboxes.get(id)!;
      if (sb.state === 'ready') drain(s, sb, fn, nowMs);
      else if (sb.state === 'creating') cancelSandbox(s, sb, 'spec changed');
    }
  }
  s.markDirty(fn);
  s.log.info('function.updated', { fn: name, generation: record.generation, restart });
}

/**
 * Remove a function: creations are cancelled, ready sandboxes drain (requests in flight finish,
 * bounded by the drain limit) and are deleted once every DP reported them idle.
 */
export function applyDelete(s: CoreState, name: string, nowMs: number): void {
  const fn = s.functions.get(name);
  if (!fn) return;
  for (const id of [...fn.sandboxIds]) {
    const sb = s.sandboxes.get(id)!;
    if (sb.state === 'creating') cancelSandbox(s, sb, 'function deleted');
    else if (sb.state === 'ready') drain(s, sb, fn, nowMs);
  }
  s.routing.deleteFunction(name);
  s.functions.delete(name);
  s.quotas.countFunction(name, -1);
  s.deactivate(fn);
  fn.dirty = false;
  fn.removed = true;
  s.log.info('function.deleted', { fn: name, uid: fn.record.uid });
}

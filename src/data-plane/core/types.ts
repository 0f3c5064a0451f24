/**
 * @module data-plane/core/types
 * The data-plane core's state objects and the effects it returns to its shell.
 *
 * Identity: a function is a `DpFunction` object (name + uid). Waiters and endpoints hold a
 * reference to the object they belong to, never a name, so a request that outlives its
 * function (deleted, or re-created under the same name with a new uid) settles on the object it
 * started on and cannot touch the new function's counts.
 */
import type { FunctionSpecMsg } from '../../api/cluster.js';
import type { LbIndex } from '../../policy/load-balancing/lb-index.js';
import type { LbPolicyName } from '../../policy/load-balancing/lb.js';
import type { LinkedList, ListNode } from '../../shared/linked-list.js';

export type EndpointState = 'routable' | 'draining' | 'removed';

export interface DpEndpoint {
  id: string;
  /** Name of its function, for logs and metrics. */
  fn: string;
  owner: DpFunction;
  address: string;
  workerId: string;
  inflight: number;
  /** 0 = unlimited. */
  slots: number;
  state: EndpointState;
  addedAtMs: number;
  /** Position in `owner.endpoints` while routable (O(1) removal), else -1. */
  index: number;
  /** The load-balancing index's node (see LbEndpoint.lbNode). */
  lbNode: ListNode<unknown> | null;
}

export type WaiterState = 'new' | 'queued' | 'dispatched' | 'done' | 'cancelled';

export interface Waiter {
  /** The function name the request asked for. */
  fn: string;
  arrivalMs: number;
  state: WaiterState;
  /** Set by `admit`: the function object it was admitted to. */
  owner: DpFunction | null;
  endpoint: DpEndpoint | null;
  /** The sandbox it got appeared after it arrived: it waited for a cold start. */
  cold: boolean;
  dispatchedAtMs: number;
  /** Tries that got nothing back from a sandbox so far (absent: none); see `DataPlaneCore.retry`. */
  retries?: number;
  /** Key for consistent-hash load balancing (the function name when absent). */
  key?: string;
  /** Its entries in its function's queue and in the expiry order, while queued. */
  queueNode?: ListNode<Waiter> | null;
  expiryNode?: ListNode<Waiter> | null;
}

export interface DpFunction {
  name: string;
  uid: string;
  spec: FunctionSpecMsg;
  /** Routable endpoints (not draining); order is not meaningful. */
  endpoints: DpEndpoint[];
  queue: LinkedList<Waiter>;
  queued: number;
  inflight: number;
  lb: LbIndex<DpEndpoint>;
  /** Deleted or replaced: requests still running settle here; nothing new is admitted. */
  deleted: boolean;
  /** Demand integral: (inflight + queued) over time since the last report. */
  level: number;
  levelSinceMs: number;
  integral: number;
  reportedSinceMs: number;
  /** Last urgent report of a queue behind busy sandboxes (-Infinity: none yet). */
  urgentAtMs: number;
}

/** What the shell carries out after a core call, in order. */
export type DpEffect =
  | { kind: 'dispatch'; waiter: Waiter }
  | { kind: 'fail'; waiter: Waiter; status: number; code: string; message: string }
  /** The sandbox has no request in flight any more after a drain: tell the CP. */
  | { kind: 'drained'; sandboxId: string }
  /** No request will use this endpoint again: its upstream connections may go. */
  | { kind: 'close_pool'; endpoint: DpEndpoint }
  /** A function got demand without a sandbox: send `firstDemandReport()` soon. */
  | { kind: 'first_demand' }
  /**
   * The core had nothing for its periodic calls (`takeDemand`, `expire`) and now has: a request
   * queued or demand to report. The shell runs its timers again until `hasTimedWork` is false.
   */
  | { kind: 'timed_work' };

/** Why a dispatched request is tried again: connection refused, or closed before any answer. */
export type RetryCause = 'refused' | 'reset';

export type AdmitOutcome =
  | { kind: 'dispatched' }
  | { kind: 'queued' }
  | { kind: 'not_found' }
  /** No routing snapshot yet: whether the function exists is not known (503, not 404). */
  | { kind: 'not_ready' }
  | { kind: 'queue_full'; depth: number };

export type AdmitResult = AdmitOutcome & { effects: DpEffect[] };

export interface DataPlaneCoreConfig {
  queueDepthMax: number;
  queueWaitMsMax: number;
  loadBalancing: LbPolicyName;
  /**
   * A request queued behind busy sandboxes is reported to the CP at once (it adds sandboxes),
   * at most once per this many ms per function; default `dataPlaneDefaults.urgentReportMsMin`.
   */
  urgentReportMsMin?: number;
  /** Retries of a request its sandbox refused or reset; default `dataPlaneDefaults.upstreamRetriesMax`. */
  upstreamRetriesMax?: number;
}

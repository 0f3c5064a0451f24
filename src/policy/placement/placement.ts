/**
 * @module policy/placement/placement
 * Where a new sandbox goes: the `kubernetes`, `random` and `round-robin` placement policies.
 *
 * Pipeline (kube-scheduler's framework, reduced to what a sandbox needs):
 *
 *   nodes ──filter──► feasible ──score──► best total ──tie? one uniform draw among the tied with rng──► placed
 *            │ (schedulable, runtime, cpu, memory)
 *            └─ every rejected node keeps one reason ──► unschedulable { reasons }
 *
 * Owns: the feasibility filter and its stable reason strings, the two kube-scheduler scorers
 * (LeastAllocated, BalancedAllocation over *allocated* resources, i.e. reservations, not measured
 * usage as Dirigent does), and the three selection rules. "No node fits" is a value, never null
 * and never thrown: the caller keeps the demand queued and retries when capacity appears.
 * Pure: inputs are never mutated; randomness only through the `Rng` port.
 * Must not import anything but `api/` types and `shared/` helpers.
 */
import type { Resources } from '../../api/types.js';
import { assert, unreachable } from '../../shared/assert.js';
import type { Rng } from '../../shared/rng.js';
import type { NodeTable } from './node-table.js';

export interface NodeView {
  id: string;
  schedulable: boolean;
  capacity: Resources;
  /** Sum of the reservations of the sandboxes already on the node. */
  allocated: Resources;
  runtimes: readonly string[];
}

export interface PlacementRequest {
  resources: Resources;
  runtime: string;
}

export type PlacementResult =
  | { kind: 'placed'; nodeId: string; score?: number }
  | { kind: 'unschedulable'; reasons: { nodeId: string; reason: string }[] };

/** Every policy name, for config validation ("must be one of …"). */
export const placementPolicyNames = Object.freeze(['kubernetes', 'random', 'round-robin'] as const);
export type PlacementPolicy = (typeof placementPolicyNames)[number];

/** Why a node was rejected. Stable strings: logs, status and tests match on them. */
export const PlacementReason = Object.freeze({
  unschedulable: 'unschedulable',
  runtimeNotSupported: 'runtime not supported',
  insufficientCpu: 'insufficient cpu',
  insufficientMemory: 'insufficient memory',
  /** The only reason of an empty cluster, with nodeId '*'. */
  noNodes: 'no nodes',
} as const);
export type PlacementReason = (typeof PlacementReason)[keyof typeof PlacementReason];

/** kube-scheduler's `MaxNodeScore`: every scorer returns an integer in 0..100. */
const placementScoreMax = 100;

export type FilterResult = { ok: true } | { ok: false; reason: PlacementReason };
const filterOk: FilterResult = Object.freeze({ ok: true });

/**
 * The one entry point: runs `policy` and returns the result with the advanced cursor. With
 * `table` (kept in step with `nodes` by the caller) `kubernetes` reads its rows instead of the
 * node objects: the same decision, without a cache miss per node on large clusters.
 */
export function placeWith(
  policy: PlacementPolicy,
  nodes: readonly NodeView[],
  req: PlacementRequest,
  ctx: { rng: Rng; cursor: number; table?: NodeTable },
): { result: PlacementResult; cursor: number } {
  switch (policy) {
    case 'kubernetes':
      return ctx.table ? ctx.table.placeKubernetes(nodes, req, ctx.rng, ctx.cursor) : placeKubernetesFrom(nodes, req, ctx.rng, ctx.cursor);
    case 'random':
      return { result: placeRandom(nodes, req, ctx.rng), cursor: ctx.cursor };
    case 'round-robin':
      return placeRoundRobin(nodes, req, ctx.cursor);
    default:
      return unreachable(policy, 'placement policy');
  }
}

/**
 * A node is feasible when it is schedulable, supports the runtime, and allocated + request fits
 * its capacity in cpu and in memory. The first failing check is the reason.
 */
export function placementFilter(node: NodeView, req: PlacementRequest): FilterResult {
  if (!node.schedulable) return { ok: false, reason: PlacementReason.unschedulable };
  if (!node.runtimes.includes(req.runtime)) {
    return { ok: false, reason: PlacementReason.runtimeNotSupported };
  }
  if (node.allocated.cpuMillis + req.resources.cpuMillis > node.capacity.cpuMillis) {
    return { ok: false, reason: PlacementReason.insufficientCpu };
  }
  if (node.allocated.memoryMiB + req.resources.memoryMiB > node.capacity.memoryMiB) {
    return { ok: false, reason: PlacementReason.insufficientMemory };
  }
  return filterOk;
}

/**
 * kube-scheduler's default: filter, then score = LeastAllocated + BalancedAllocation (weight 1
 * each) over requested = allocated + the new request. Highest total wins; ties are broken
 * uniformly: one rng draw among the tied nodes (the distribution of kube-scheduler's reservoir sampling).
 */
/** kube-scheduler's minFeasibleNodesToFind: below this many nodes every node is scored. */
const feasibleNodesToFindMin = 100;
/** kube-scheduler's floor of the adaptive percentageOfNodesToScore. */
const feasibleNodesPercentMin = 5;
/** kube-scheduler's base of the adaptive percentage: 50 % minus one point per 125 nodes. */
const feasibleNodesPercentBase = 50;
const feasibleNodesPercentStep = 125;

/**
 * How many feasible nodes kube-scheduler looks for before it stops filtering and scores them
 * (numFeasibleNodesToFind with the adaptive percentage). Worked examples: 100 nodes -> 100;
 * 1,000 nodes -> 42 % = 420; 5,000 nodes -> 10 % = 500; 10,000 nodes -> 5 % = 500.
 */
export function feasibleNodesToFind(total: number): number {
  if (total < feasibleNodesToFindMin) return total;
  const percent = Math.max(
    feasibleNodesPercentMin,
    feasibleNodesPercentBase - Math.floor(total / feasibleNodesPercentStep),
  );
  return Math.max(feasibleNodesToFindMin, Math.floor((total * percent) / 100));
}

/** Every node considered (small clusters, and the examples from kube-scheduler's tests). */
export function placeKubernetes(
  nodes: readonly NodeView[],
  req: PlacementRequest,
  rng: Rng,
): PlacementResult {
  return placeKubernetesFrom(nodes, req, rng, 0).result;
}

/**
 * LeastAllocated + BalancedAllocation over the first `feasibleNodesToFind(n)` feasible nodes
 * found from `start`, wrapping around; the cursor moves past the nodes examined so the next
 * placement starts elsewhere (kube-scheduler's nextStartNodeIndex). Ties: one uniform draw among them.
 */
export function placeKubernetesFrom(
  nodes: readonly NodeView[],
  req: PlacementRequest,
  rng: Rng,
  start: number,
): { result: PlacementResult; cursor: number } {
  const n = nodes.length;
  const wanted = feasibleNodesToFind(n);
  const first = n > 0 ? ((start % n) + n) % n : 0;
  const pick = objectPick.start();
  let found = 0;
  let examined = 0;
  for (; examined < n && found < wanted; examined++) {
    const i = (first + examined) % n;
    const node = nodes[i];
    if (!placementFilter(node, req).ok) continue;
    found++;
    const requested: Resources = {
      cpuMillis: node.allocated.cpuMillis + req.resources.cpuMillis,
      memoryMiB: node.allocated.memoryMiB + req.resources.memoryMiB,
    };
    pick.offer(i, scoreLeastAllocated(node.capacity, requested) + scoreBalancedAllocation(node.capacity, requested));
  }
  const cursor = n > 0 ? (first + examined) % n : start;
  if (pick.finish(rng) < 0) return { result: placementUnschedulable(nodes, req), cursor };
  return { result: { kind: 'placed', nodeId: nodes[pick.index].id, score: pick.score }, cursor };
}

/**
 * The highest score offered wins; ties are broken uniformly: the tied candidates are kept and one
 * is drawn at the end (one rng draw per placement, not one per tie: with thousands of idle nodes
 * of one size most of the 500 scored are tied). The same distribution as kube-scheduler's
 * reservoir sampling. One instance is reused; `start` clears it.
 */
export class BestPick {
  index = -1;
  score = -1;
  private tied: number[] = [];

  start(): this {
    this.index = -1;
    this.score = -1;
    this.tied.length = 0;
    return this;
  }

  offer(index: number, score: number): void {
    if (score > this.score) {
      this.score = score;
      this.tied.length = 0;
      this.tied.push(index);
    } else if (score === this.score) {
      this.tied.push(index);
    }
  }

  /** Draws the winner among the tied best; -1 when nothing was offered. */
  finish(rng: Rng): number {
    const n = this.tied.length;
    this.index = n === 0 ? -1 : n === 1 ? this.tied[0]! : this.tied[rng.int(n)]!;
    return this.index;
  }
}

/** The object path's pick, reused across placements (one thread, no reentry). */
const objectPick = new BestPick();

/** Uniform among the feasible nodes (Dirigent's default placement, with the filters added). */
export function placeRandom(
  nodes: readonly NodeView[],
  req: PlacementRequest,
  rng: Rng,
): PlacementResult {
  let feasible = 0;
  for (const node of nodes) if (placementFilter(node, req).ok) feasible++;
  if (feasible === 0) return placementUnschedulable(nodes, req);
  let k = rng.int(feasible);
  let i = 0;
  for (; i < nodes.length; i++) {
    if (placementFilter(nodes[i], req).ok && k-- === 0) break;
  }
  assert(i < nodes.length, 'placeRandom: feasible count changed between passes');
  return { kind: 'placed', nodeId: nodes[i].id };
}

/**
 * The first feasible node at or after `cursor` in the given order (wrapping); the returned
 * cursor is the index after the pick, so equal nodes take turns. Stable as long as the caller
 * passes the nodes in a stable order (Dirigent's map order was not).
 */
export function placeRoundRobin(
  nodes: readonly NodeView[],
  req: PlacementRequest,
  cursor: number,
): { result: PlacementResult; cursor: number } {
  const n = nodes.length;
  if (n === 0) return { result: placementUnschedulable(nodes, req), cursor };
  const start = ((Math.trunc(cursor) % n) + n) % n;
  for (let k = 0; k < n; k++) {
    const i = (start + k) % n;
    if (placementFilter(nodes[i], req).ok) {
      return { result: { kind: 'placed', nodeId: nodes[i].id }, cursor: (i + 1) % n };
    }
  }
  return { result: placementUnschedulable(nodes, req), cursor };
}

/**
 * NodeResourcesFit, strategy LeastAllocated, cpu and memory weight 1: per resource
 * (cap − req) × 100 / cap in integer arithmetic, 0 if req > cap or cap = 0; then the
 * weighted mean, again an integer division. `requested` includes the new sandbox.
 * Example: cap 4000 m / 10000 MiB, requested 3000 / 5000 → cpu 25, memory 50 → 37.
 */
export function scoreLeastAllocated(capacity: Resources, requested: Resources): number {
  const cpu = leastAllocatedResource(requested.cpuMillis, capacity.cpuMillis);
  const memory = leastAllocatedResource(requested.memoryMiB, capacity.memoryMiB);
  return Math.floor((cpu + memory) / 2);
}

/**
 * NodeResourcesBalancedAllocation: f = min(1, req / cap) per resource, std = |fCpu − fMem| / 2,
 * score = trunc((1 − std) × 100). A resource with cap 0 is skipped, as kube-scheduler does; with
 * fewer than two resources left, std = 0.
 * Example: cap 10000 / 20000, requested 6000 / 5000 → f 0.6 / 0.25, std 0.175 → 82.
 */
export function scoreBalancedAllocation(capacity: Resources, requested: Resources): number {
  if (capacity.cpuMillis <= 0 || capacity.memoryMiB <= 0) return placementScoreMax;
  const fCpu = Math.min(1, requested.cpuMillis / capacity.cpuMillis);
  const fMemory = Math.min(1, requested.memoryMiB / capacity.memoryMiB);
  const std = Math.abs((fCpu - fMemory) / 2);
  return Math.trunc((1 - std) * placementScoreMax);
}

function leastAllocatedResource(requested: number, capacity: number): number {
  if (capacity <= 0 || requested > capacity) return 0;
  return Math.floor(((capacity - requested) * placementScoreMax) / capacity);
}

function placementUnschedulable(
  nodes: readonly NodeView[],
  req: PlacementRequest,
): PlacementResult {
  if (nodes.length === 0) {
    return { kind: 'unschedulable', reasons: [{ nodeId: '*', reason: PlacementReason.noNodes }] };
  }
  const reasons: { nodeId: string; reason: string }[] = [];
  for (const node of nodes) {
    const verdict = placementFilter(node, req);
    if (!verdict.ok) reasons.push({ nodeId: node.id, reason: verdict.reason });
  }
  return { kind: 'unschedulable', reasons };
}

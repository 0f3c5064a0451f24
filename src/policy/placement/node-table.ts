/**
 * @module policy/placement/node-table
 * The placement-relevant fields of every node (capacity, allocation, schedulable, runtimes) as
 * parallel typed arrays in node-list order, and `kubernetes` placement over them.
 *
 * Why: with thousands of nodes, placement examines hundreds per sandbox (kube-scheduler's
 * numFeasibleNodesToFind: 500 of 10,000). Over `NodeView` objects that is five scattered objects
 * per node (the node, capacity, allocation, runtime list, runtime string); in a control plane
 * whose heap is hundreds of MiB each is a cache miss, and placement cost ~115 µs per sandbox at
 * 10,000 workers. Here the rows it reads are consecutive entries of a few arrays.
 *
 * Same decisions as `placeKubernetesFrom` for the same nodes, start and rng draws (property test);
 * the object list is still read for the winner's id and for the reasons of "no node fits".
 * The owner keeps the table in step with its nodes: `rebuild` when the list changes, `refresh`
 * when one node's fields do.
 * Pure: no I/O; must not import anything but `api/` types, `shared/` helpers and placement.
 */
import type { Rng } from '../../shared/rng.js';
import {
  BestPick, feasibleNodesToFind, placeKubernetesFrom, scoreBalancedAllocation, scoreLeastAllocated,
  type NodeView, type PlacementRequest, type PlacementResult,
} from './placement.js';

/** Runtimes get one bit each; a table seeing more distinct ones falls back to the object path. */
const runtimeBitsMax = 30;

export class NodeTable {
  private capCpu = new Float64Array(0);
  private capMemory = new Float64Array(0);
  private allocCpu = new Float64Array(0);
  private allocMemory = new Float64Array(0);
  /** Runtime bits of each node; 0 when it is not schedulable (nothing fits it). */
  private runtimeMask = new Uint32Array(0);
  private readonly rowById = new Map<string, number>();
  private readonly runtimeBit = new Map<string, number>();
  /** More distinct runtimes than bits: every placement takes the object path. */
  private overflow = false;
  private readonly pick = new BestPick();
  size = 0;

  /** The node list changed (forgotten, reordered): every row again, in list order. O(n). */
  rebuild(nodes: readonly NodeView[]): void {
    const n = nodes.length;
    this.reserve(n);
    this.rowById.clear();
    this.size = n;
    for (let i = 0; i < n; i++) {
      this.rowById.set(nodes[i].id, i);
      this.write(i, nodes[i]);
    }
  }

  /** A node added at the end of the list. Amortized O(1): thousands of workers say hello at start. */
  append(node: NodeView): void {
    this.reserve(this.size + 1);
    this.rowById.set(node.id, this.size);
    this.write(this.size, node);
    this.size += 1;
  }

  /** One node's capacity, allocation, schedulable flag or runtimes changed. */
  refresh(node: NodeView): void {
    const i = this.rowById.get(node.id);
    if (i !== undefined) this.write(i, node);
  }

  /** Whether row `i` says what `node` says (the owner's invariant check). */
  matches(i: number, node: NodeView): boolean {
    return i < this.size && this.capCpu[i] === node.capacity.cpuMillis && this.capMemory[i] === node.capacity.memoryMiB &&
      this.allocCpu[i] === node.allocated.cpuMillis && this.allocMemory[i] === node.allocated.memoryMiB &&
      this.runtimeMask[i] === this.maskOf(node);
  }

  /**
   * `placeKubernetesFrom` over the rows: the same filter (schedulable, runtime, cpu, memory),
   * scores, sampling window, cursor and tie-breaking. `nodes` must be the list the table was
   * built from; it is read only for the winner's id and for the reasons when nothing fits.
   */
  placeKubernetes(nodes: readonly NodeView[], req: PlacementRequest, rng: Rng, start: number): { result: PlacementResult; cursor: number } {
    const bit = this.runtimeBit.get(req.runtime);
    if (this.overflow || nodes.length !== this.size) return placeKubernetesFrom(nodes, req, rng, start);
    const n = this.size;
    const wanted = feasibleNodesToFind(n);
    const first = n > 0 ? ((start % n) + n) % n : 0;
    const needCpu = req.resources.cpuMillis;
    const needMemory = req.resources.memoryMiB;
    const { capCpu, capMemory, allocCpu, allocMemory, runtimeMask } = this;
    const capacity = { cpuMillis: 0, memoryMiB: 0 };
    const requested = { cpuMillis: 0, memoryMiB: 0 };
    const pick = this.pick.start();
    let found = 0;
    let examined = 0;
    // No node has a runtime the table never saw: the loop then only counts the nodes examined.
    const mask = bit === undefined ? 0 : 1 << bit;
    for (let i = first; examined < n && found < wanted; examined++, i = i + 1 === n ? 0 : i + 1) {
      if ((runtimeMask[i] & mask) === 0) continue;
      const cpu = allocCpu[i] + needCpu;
      const memory = allocMemory[i] + needMemory;
      if (cpu > capCpu[i] || memory > capMemory[i]) continue;
      found++;
      capacity.cpuMillis = capCpu[i];
      capacity.memoryMiB = capMemory[i];
      requested.cpuMillis = cpu;
      requested.memoryMiB = memory;
      pick.offer(i, scoreLeastAllocated(capacity, requested) + scoreBalancedAllocation(capacity, requested));
    }
    const cursor = n > 0 ? (first + examined) % n : start;
    // Nothing fits: the object path names each node's reason (and examines the same nodes).
    if (pick.finish(rng) < 0) return { result: placeKubernetesFrom(nodes, req, rng, start).result, cursor };
    return { result: { kind: 'placed', nodeId: nodes[pick.index].id, score: pick.score }, cursor };
  }

  /** Room for `n` rows, keeping the rows there are (the arrays double). */
  private reserve(n: number): void {
    if (this.capCpu.length >= n) return;
    const cap = Math.max(16, n * 2);
    const grow = <T extends Float64Array | Uint32Array>(old: T, fresh: T): T => {
      fresh.set(old);
      return fresh;
    };
    this.capCpu = grow(this.capCpu, new Float64Array(cap));
    this.capMemory = grow(this.capMemory, new Float64Array(cap));
    this.allocCpu = grow(this.allocCpu, new Float64Array(cap));
    this.allocMemory = grow(this.allocMemory, new Float64Array(cap));
    this.runtimeMask = grow(this.runtimeMask, new Uint32Array(cap));
  }

  private write(i: number, node: NodeView): void {
    this.capCpu[i] = node.capacity.cpuMillis;
    this.capMemory[i] = node.capacity.memoryMiB;
    this.allocCpu[i] = node.allocated.cpuMillis;
    this.allocMemory[i] = node.allocated.memoryMiB;
    this.runtimeMask[i] = this.maskOf(node);
  }

  private maskOf(node: NodeView): number {
    if (!node.schedulable) return 0;
    let mask = 0;
    for (const r of node.runtimes) {
      let bit = this.runtimeBit.get(r);
      if (bit === undefined) {
        if (this.runtimeBit.size >= runtimeBitsMax) {
          this.overflow = true;
          continue;
        }
        bit = this.runtimeBit.size;
        this.runtimeBit.set(r, bit);
      }
      mask |= 1 << bit;
    }
    return mask;
  }
}

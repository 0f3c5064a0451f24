/**
 * @module control-plane/store/sqlite-protocol
 * Messages between `SqliteStore` (CP thread) and `sqlite-thread` (its worker_thread). The CP
 * posts the requests of one event-loop turn as one array, in order.
 */

export type StoreRequest = { seq: number } & (
  | { op: 'load' }
  | { op: 'close' }
  | { op: 'putFunction'; name: string; body: string }
  | { op: 'putIdleHistory'; name: string; body: string }
  | { op: 'deleteIdleHistory'; name: string }
  | { op: 'deleteFunction'; name: string }
  | { op: 'putWorker'; id: string; address: string }
  | { op: 'deleteWorker'; id: string }
  | { op: 'putDataPlane'; id: string; proxyAddress: string; internalAddress: string }
  | { op: 'deleteDataPlane'; id: string }
  | { op: 'putToken'; id: string; body: string }
  | { op: 'deleteToken'; id: string }
  | { op: 'putNamespace'; name: string; body: string }
  | { op: 'deleteNamespace'; name: string }
);

export interface LoadedRows {
  /** JSON bodies of FunctionRecords. */
  functions: string[];
  workers: { id: string; address: string }[];
  dataPlanes: { id: string; proxyAddress: string; internalAddress: string }[];
  /** JSON bodies of TokenRecords and NamespaceRecords. */
  tokens: string[];
  namespaces: string[];
  /** JSON bodies of IdleHistoryRecords. */
  idleHistories: string[];
}

/**
 * The writes of one transaction are answered by one message (`seqs`): a burst of N writes
 * costs one cross-thread message per commit, not N.
 */
export type StoreReply =
  | { seq: number; ok: true; contents?: LoadedRows }
  | { seqs: number[]; ok: true }
  | { seqs: number[]; ok: false; error: string };

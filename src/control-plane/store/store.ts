/**
 * @module control-plane/store/store
 * The Store port: durable Function, DataPlane and WorkerNode records (DESIGN §3), API tokens (their
 * hashes only), namespace quotas, and the keep-alive policy's idle-time histograms. Sandbox state
 * is never stored. Writes resolve once durable; implementations may group-commit.
 */
import type { DataPlaneRecord, FunctionRecord, IdleHistoryRecord, NamespaceRecord, TokenRecord, WorkerNodeRecord } from '../../api/types.js';

export interface StoreContents {
  functions: FunctionRecord[];
  workers: WorkerNodeRecord[];
  dataPlanes: DataPlaneRecord[];
  tokens: TokenRecord[];
  namespaces: NamespaceRecord[];
  /** Validated on load: a malformed one is left out (`parseIdleHistory`) and counted. */
  idleHistories: IdleHistoryRecord[];
  idleHistoriesDropped: number;
}

export interface Store {
  load(): Promise<StoreContents>;
  putFunction(record: FunctionRecord): Promise<void>;
  /** Deletes the function's idle history too. */
  deleteFunction(name: string): Promise<void>;
  /** One write per record, keyed by function name (the latest wins). */
  putIdleHistories(records: IdleHistoryRecord[]): Promise<void>;
  /** Forgets one function's idle history (its keep-alive was turned off); a missing one is not an error. */
  deleteIdleHistory(name: string): Promise<void>;
  putWorker(record: WorkerNodeRecord): Promise<void>;
  putDataPlane(record: DataPlaneRecord): Promise<void>;
  /** Forget a worker or data plane gone for good; a missing id is not an error. */
  deleteWorker(id: string): Promise<void>;
  deleteDataPlane(id: string): Promise<void>;
  putToken(record: TokenRecord): Promise<void>;
  /** A missing id is not an error. */
  deleteToken(id: string): Promise<void>;
  putNamespace(record: NamespaceRecord): Promise<void>;
  deleteNamespace(name: string): Promise<void>;
  close(): Promise<void>;
}

export class StoreError extends Error {
  readonly code = 'CM_ERR_STORE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * @module control-plane/store/memory-store
 * A Store kept in memory: for the simulator (it survives a simulated CP restart because the
 * simulator keeps the object) and for tests.
 */
import type { DataPlaneRecord, FunctionRecord, WorkerNodeRecord } from '../../api/types.js';
import type { Store, StoreContents } from './store.js';

export class MemoryStore implements Store {
  private readonly functions = new Map<string, FunctionRecord>();
  private readonly workers = new Map<string, WorkerNodeRecord>();
  private readonly dataPlanes = new Map<string, DataPlaneRecord>();

  async load(): Promise<StoreContents> {
    return this.loadSync();
  }

  loadSync(): StoreContents {
    return {
      functions: [...this.functions.values()].map((r) => structuredClone(r)),
      workers: [...this.workers.values()].map((r) => ({ ...r })),
      dataPlanes: [...this.dataPlanes.values()].map((r) => ({ ...r })),
    };
  }

  async putFunction(record: FunctionRecord): Promise<void> {
    this.functions.set(record.spec.name, structuredClone(record));
  }

  async deleteFunction(name: string): Promise<void> {
    this.functions.delete(name);
  }

  async putWorker(record: WorkerNodeRecord): Promise<void> {
    this.workers.set(record.id, { ...record });
  }

  async putDataPlane(record: DataPlaneRecord): Promise<void> {
    this.dataPlanes.set(record.id, { ...record });
  }

  async close(): Promise<void> {}
}

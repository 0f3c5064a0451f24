/**
 * @module control-plane/store/etcd-store
 * The HA Store: records as JSON values under a key prefix in etcd (`functions/<name>`,
 * `workers/<id>`, `data-planes/<id>`, `tokens/<id>`, `namespaces/<name>`, `idle/<name>`). Writes of one event-loop turn share one transaction per
 * `etcdTxnOpsMax` keys (group commit; the last write of a key in a turn wins, as etcd refuses a
 * key twice in one transaction), and batches commit one after another so writes apply in order.
 *
 * Fencing: once `fence(key, createRevision)` is set (the leader's election key and its term),
 * every transaction compares that key's create revision first. A deposed leader's key is gone
 * or re-created by the new leader with a higher revision, so its writes fail with
 * CM_ERR_STORE ("not the leader") and never land.
 */
import { upgradeFunctionRecord } from './record-upgrade.js';
import { Etcd3, type IOptions, type Namespace } from 'etcd3';
import type { DataPlaneRecord, FunctionRecord, IdleHistoryRecord, NamespaceRecord, TokenRecord, WorkerNodeRecord } from '../../api/types.js';
import { parseIdleHistories } from './idle-history.js';
import { StoreError, type Store, type StoreContents } from './store.js';

/** etcd's default --max-txn-ops: a transaction holds at most this many operations. */
const etcdTxnOpsMax = 128;
/** A unary etcd call (read, transaction) fails after this long instead of waiting forever. */
const etcdCallTimeoutMs = 3_000;

const functionsDir = 'functions/';
const workersDir = 'workers/';
const dataPlanesDir = 'data-planes/';
const tokensDir = 'tokens/';
const namespacesDir = 'namespaces/';
const idleDir = 'idle/';

type Write = { value: string | null; waiters: { resolve: () => void; reject: (e: Error) => void }[] };

/** `etcd://h1:p1,h2:p2` -> client options for those endpoints. */
export function etcdClientOptions(endpoints: string[]): IOptions {
  return {
    hosts: endpoints.map((e) => `http://${e}`),
    dialTimeout: etcdCallTimeoutMs,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + etcdCallTimeoutMs }),
  };
}

export class EtcdStore implements Store {
  private pending = new Map<string, Write>();
  private flushing = false;
  private scheduled = false;
  /** Loads waiting until nothing is pending or being committed. */
  private drained: (() => void)[] = [];
  private fenceKey: { key: string; createRevision: string } | null = null;

  /** `ns` is the client scoped to the store's prefix; `owned` clients are closed by close(). */
  constructor(private readonly ns: Namespace, private readonly client: Etcd3 | null) {}

  /** From now on every write commits only while `key` has this create revision. */
  fence(key: string, createRevision: string): void {
    this.fenceKey = { key, createRevision };
  }

  /** Sees every write asked for before it (they are committed first). */
  async load(): Promise<StoreContents> {
    if (this.flushing || this.pending.size > 0) await new Promise<void>((resolve) => this.drained.push(resolve));
    const dirs = [functionsDir, workersDir, dataPlanesDir, tokensDir, namespacesDir, idleDir];
    const [functions, workers, dataPlanes, tokens, namespaces, idle] = await Promise.all(dirs.map((dir) => this.list(dir)));
    return {
      functions: functions!.map((v) => withDefaults(JSON.parse(v) as FunctionRecord)),
      workers: workers!.map((v) => JSON.parse(v) as WorkerNodeRecord),
      dataPlanes: dataPlanes!.map((v) => JSON.parse(v) as DataPlaneRecord),
      tokens: tokens!.map((v) => JSON.parse(v) as TokenRecord),
      namespaces: namespaces!.map((v) => JSON.parse(v) as NamespaceRecord),
      ...parseIdleHistories(idle!),
    };
  }

  putFunction(record: FunctionRecord): Promise<void> {
    return this.write(functionsDir + record.spec.name, JSON.stringify(record));
  }

  async deleteFunction(name: string): Promise<void> {
    await Promise.all([this.write(functionsDir + name, null), this.write(idleDir + name, null)]);
  }

  async putIdleHistories(records: IdleHistoryRecord[]): Promise<void> {
    await Promise.all(records.map((r) => this.write(idleDir + r.function, JSON.stringify(r))));
  }

  deleteIdleHistory(name: string): Promise<void> {
    return this.write(idleDir + name, null);
  }

  putWorker(record: WorkerNodeRecord): Promise<void> {
    return this.write(workersDir + record.id, JSON.stringify({ id: record.id, address: record.address }));
  }

  deleteWorker(id: string): Promise<void> {
    return this.write(workersDir + id, null);
  }

  putDataPlane(record: DataPlaneRecord): Promise<void> {
    const { id, proxyAddress, internalAddress } = record;
    return this.write(dataPlanesDir + id, JSON.stringify({ id, proxyAddress, internalAddress }));
  }

  deleteDataPlane(id: string): Promise<void> {
    return this.write(dataPlanesDir + id, null);
  }

  putToken(record: TokenRecord): Promise<void> {
    return this.write(tokensDir + record.id, JSON.stringify(record));
  }

  deleteToken(id: string): Promise<void> {
    return this.write(tokensDir + id, null);
  }

  putNamespace(record: NamespaceRecord): Promise<void> {
    return this.write(namespacesDir + record.name, JSON.stringify(record));
  }

  deleteNamespace(name: string): Promise<void> {
    return this.write(namespacesDir + name, null);
  }

  async close(): Promise<void> {
    while (this.flushing || this.pending.size > 0) await new Promise((r) => setTimeout(r, 5));
    this.client?.close();
  }

  private async list(dir: string): Promise<string[]> {
    try {
      return Object.values(await this.ns.getAll().prefix(dir).strings());
    } catch (err) {
      throw new StoreError(`etcd read of ${dir} failed: ${String(err)}`, { cause: err });
    }
  }

  private write(key: string, value: string | null): Promise<void> {
    return new Promise((resolve, reject) => {
      const w = this.pending.get(key);
      if (w) {
        w.value = value;
        w.waiters.push({ resolve, reject });
      } else this.pending.set(key, { value, waiters: [{ resolve, reject }] });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  /** Commits what is pending, chunk by chunk, then whatever arrived meanwhile. */
  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.pending.size > 0) {
      const batch = [...this.pending];
      this.pending = new Map();
      for (let i = 0; i < batch.length; i += etcdTxnOpsMax) await this.commit(batch.slice(i, i + etcdTxnOpsMax));
    }
    this.flushing = false;
    const waiting = this.drained;
    this.drained = [];
    for (const resolve of waiting) resolve();
  }

  private async commit(chunk: [string, Write][]): Promise<void> {
    const ops = chunk.map(([key, w]) => (w.value === null ? this.ns.delete().key(key) : this.ns.put(key).value(w.value)));
    // Without a fence, compare something always true (every create revision is > -1).
    const txn = this.fenceKey
      ? this.ns.if(this.fenceKey.key, 'Create', '==', this.fenceKey.createRevision)
      : this.ns.if(functionsDir, 'Create', '>', -1);
    let error: Error | null = null;
    try {
      const r = await txn.then(...ops).commit();
      if (!r.succeeded) error = new StoreError('etcd write refused: this control plane is not the leader any more');
    } catch (err) {
      error = new StoreError(`etcd write failed: ${String(err)}`, { cause: err });
    }
    for (const [, w] of chunk) {
      for (const waiter of w.waiters) {
        if (error) waiter.reject(error);
        else waiter.resolve();
      }
    }
  }
}

export { parseEtcdUrl } from './store-url.js';

/** A store on its own client; `prefix` scopes every key (e.g. `/dirigent/`). */
export function openEtcdStore(endpoints: string[], prefix: string): EtcdStore {
  const client = new Etcd3(etcdClientOptions(endpoints));
  return new EtcdStore(client.namespace(prefix), client);
}

/** Records written by older versions: fields added since get their defaults. */
function withDefaults(r: FunctionRecord): FunctionRecord {
  return upgradeFunctionRecord(r);
}

/**
 * @module cli/store
 * `dirigent store migrate --from <store> --to <store>`: copies every Function, WorkerNode,
 * DataPlane, token, namespace and idle-history record from one store to another, e.g. from the embedded SQLite file to etcd when a
 * single-CP cluster becomes a replicated one. Stop the control planes first: the copy is a
 * snapshot of the source, and records in the target with the same keys are overwritten.
 */
import type { Command } from 'commander';
import { controlPlaneDefaults } from '../config/defaults.js';
import { parseEtcdUrl } from '../control-plane/store/store-url.js';
import type { Store } from '../control-plane/store/store.js';
import { cliContext, usageError } from './context.js';

/** `sqlite:<path>` or `etcd://h:p[,h:p...]` (keys under `prefix`); a store's client loads only when used. */
async function openStoreUrl(url: string, prefix: string, flag: string): Promise<Store> {
  const endpoints = parseEtcdUrl(url);
  if (endpoints) return (await import('../control-plane/store/etcd-store.js')).openEtcdStore(endpoints, prefix);
  if (url.startsWith('sqlite:') && url.length > 'sqlite:'.length) return new (await import('../control-plane/store/sqlite-store.js')).SqliteStore(url.slice('sqlite:'.length));
  throw usageError(`--${flag} must be sqlite:<path> or etcd://host:port[,host:port...], got ${JSON.stringify(url)}`);
}

export async function migrateStore(from: Store, to: Store): Promise<{ functions: number; workers: number; dataPlanes: number; tokens: number; namespaces: number; idleHistories: number }> {
  const c = await from.load();
  await Promise.all([
    ...c.functions.map((r) => to.putFunction(r)),
    ...c.workers.map((r) => to.putWorker(r)),
    ...c.dataPlanes.map((r) => to.putDataPlane(r)),
    ...c.tokens.map((r) => to.putToken(r)),
    ...c.namespaces.map((r) => to.putNamespace(r)),
    to.putIdleHistories(c.idleHistories),
  ]);
  const counts = { functions: c.functions.length, workers: c.workers.length, dataPlanes: c.dataPlanes.length };
  return { ...counts, tokens: c.tokens.length, namespaces: c.namespaces.length, idleHistories: c.idleHistories.length };
}

export function registerStoreCommands(program: Command): void {
  const store = program.command('store').description('control-plane store maintenance');
  store.command('migrate')
    .description('copy every record from one store to another (stop the control planes first)')
    .requiredOption('--from <store>', 'source: sqlite:<path> or etcd://host:port[,host:port...]')
    .requiredOption('--to <store>', 'target: sqlite:<path> or etcd://host:port[,host:port...]')
    .option('--store-prefix <prefix>', 'etcd key prefix of both sides', controlPlaneDefaults.storePrefix)
    .action(async (opts: { from: string; to: string; storePrefix: string }, cmd: Command) => {
      const from = await openStoreUrl(opts.from, opts.storePrefix, 'from');
      const to = await openStoreUrl(opts.to, opts.storePrefix, 'to').catch(async (err: unknown) => {
        await from.close();
        throw err;
      });
      try {
        const n = await migrateStore(from, to);
        cliContext(cmd).stdout.write(`copied ${n.functions} functions, ${n.workers} workers, ${n.dataPlanes} data planes, ${n.tokens} tokens, ${n.namespaces} namespaces, ${n.idleHistories} idle histories from ${opts.from} to ${opts.to}\n`);
      } finally {
        await Promise.all([from.close(), to.close()]);
      }
    });
}

/**
 * @module control-plane/store/store-url
 * What a store URL names, without loading any store's client: a SQLite CP and the CLI's other
 * commands never load etcd's (its gRPC stack takes about 0.2 s to load).
 */

/** Parses `etcd://h:p[,h:p...]` into its endpoints; null if `url` is not an etcd URL. */
export function parseEtcdUrl(url: string): string[] | null {
  if (!url.startsWith('etcd://')) return null;
  const endpoints = url.slice('etcd://'.length).split(',').map((s) => s.trim()).filter((s) => s !== '');
  return endpoints.length > 0 ? endpoints : null;
}

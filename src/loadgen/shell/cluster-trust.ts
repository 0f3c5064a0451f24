/**
 * @module loadgen/shell/cluster-trust
 * Benches against a TLS cluster (`up --tls`). The cluster's CA is found the way the CLI finds
 * it: DIRIGENT_CA, else <state-dir>/tls/ca.pem, else ./.dirigent/tls/ca.pem. Every client of
 * the bench trusts it: its pools (sender, management) and Node's fetch (metrics scrapes, health
 * polls), through undici's global dispatcher. Set once per process, before a bench starts.
 */
import { setGlobalDispatcher } from 'undici';
import { caFor, tlsAgent } from '../../cli/http.js';

let clusterCaPem: Buffer | undefined;

/** Finds and trusts the cluster's CA, if there is one; http clusters are not affected. */
export function trustClusterCa(stateDir: string): void {
  clusterCaPem = caFor('https:', { env: { ...process.env, DIRIGENT_STATE_DIR: stateDir }, cwd: process.cwd() });
  if (clusterCaPem !== undefined) setGlobalDispatcher(tlsAgent(clusterCaPem));
}

/** The CA found by `trustClusterCa` (undefined: none, so the system roots). */
export function clusterCa(): Buffer | undefined {
  return clusterCaPem;
}

/**
 * @module frontend/discovery
 * Which data planes the front end should send invocations to: the ones given on the command line
 * plus the ones the leader lists in `GET /v1/cluster`. The body comes from another process, so it
 * is validated here and a bad one is ignored.
 */
import { lookup } from 'node:dns/promises';
import { parseHostPort } from './config.js';

/** Proxy addresses of the data planes the CP knows (connected or not), or null if the body is bad. */
export function dataPlanesFromCluster(body: unknown): string[] | null {
  if (typeof body !== 'object' || body === null) return null;
  const dps = (body as { dataPlanes?: unknown }).dataPlanes;
  if (!Array.isArray(dps)) return null;
  const out: string[] = [];
  for (const dp of dps) {
    const addr = (dp as { proxyAddress?: unknown } | null)?.proxyAddress;
    // A DP listening on every interface advertises 0.0.0.0, which names no machine.
    if (typeof addr === 'string' && parseHostPort(addr) && !addr.startsWith('0.0.0.0:')) out.push(addr);
  }
  return out;
}

/**
 * The wanted set: static ones always; discovered ones while the CP lists them. A DP the CP still
 * knows but that is disconnected stays (health checks keep traffic off it); an empty list is
 * taken as "the CP does not know yet" (it just started), never as "every DP left".
 */
export function wantedDataPlanes(staticOnes: readonly string[], discovered: readonly string[] | null, previous: readonly string[]): string[] {
  const fromCp = discovered === null || discovered.length === 0 ? previous : discovered;
  return [...new Set([...staticOnes, ...fromCp])];
}

/** `name:port` to `ip:port` (HAProxy's runtime API takes addresses, not names). */
export async function resolveHostPort(key: string): Promise<string | null> {
  const hp = parseHostPort(key);
  if (!hp) return null;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(hp.host)) return key;
  try {
    const { address } = await lookup(hp.host, { family: 4 });
    return `${address}:${hp.port}`;
  } catch {
    return null;
  }
}

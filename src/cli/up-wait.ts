/**
 * @module cli/up-wait
 * Bounded waits of `dirigent up` during start-up: a health URL answers 200, enough workers are
 * connected. A component that dies meanwhile is restarted by the supervisor, so these only poll.
 */

/** How long `up` waits for each component to answer its health check. */
export const startupTimeoutMs = 30_000;
const healthPollMs = 50;
const workersPollMs = 100;
const probeTimeoutMs = 1_000;

/** A component that died this many times before it was ever healthy will not get better. */
export const startupRestartsMax = 3;

export async function waitHealthy(url: string, name: string, log: string, restarts: () => number): Promise<void> {
  const deadline = Date.now() + startupTimeoutMs;
  while (Date.now() < deadline) {
    if (restarts() >= startupRestartsMax) throw new Error(`${name} died ${restarts()} times during start-up; see ${log}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(probeTimeoutMs) });
      await r.body?.cancel();
      if (r.ok) return;
    } catch {
      // not up yet
    }
    await sleep(healthPollMs);
  }
  throw new Error(`${name} not healthy at ${url} after ${startupTimeoutMs} ms; see ${log}`);
}

/** `token`: the admin token (GET /v1/cluster needs one). */
export async function waitWorkers(url: string, n: number, token: string): Promise<void> {
  const deadline = Date.now() + startupTimeoutMs;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(probeTimeoutMs), headers: { authorization: `Bearer ${token}` } });
      const body = (await r.json()) as { workers?: { connected?: boolean }[] };
      if ((body.workers ?? []).filter((w) => w.connected === true).length >= n) return;
    } catch {
      // not up yet
    }
    await sleep(workersPollMs);
  }
  throw new Error(`fewer than ${n} workers registered after ${startupTimeoutMs} ms; see the worker logs`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

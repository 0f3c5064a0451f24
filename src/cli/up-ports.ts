/**
 * @module cli/up-ports
 * Before `dirigent up` starts anything (or `--fresh` deletes a state directory), every port its
 * components will listen on is tried. A port someone else holds stops `up` at once with the port,
 * the component and the flag that moves it; without this check the component died on
 * EADDRINUSE, was restarted with backoff, and `up` timed out with an unrelated message (or
 * passed its health check against the other cluster).
 */
import { createServer } from 'node:net';
import type { Listen, PlannedComponent } from './up-layout.js';

export interface PortTaken {
  component: string;
  listen: Listen;
  /** The system's error code: EADDRINUSE, or EACCES for a port this user may not bind. */
  code: string;
}

/** Binds and releases host:port; resolves the error code, or null when the port is free. */
export function tryBind(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'EUNKNOWN'));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(null)));
  });
}

/** The first planned port that cannot be bound now; null when all are free. */
export async function firstPortTaken(components: readonly PlannedComponent[], host: string): Promise<PortTaken | null> {
  for (const c of components) {
    for (const listen of c.listens) {
      const code = await tryBind(host, listen.port);
      if (code !== null) return { component: c.name, listen, code };
    }
  }
  return null;
}

/** The error `up` prints for a port it cannot use. */
export function portTakenMessage(t: PortTaken, host: string): string {
  const where = `${host}:${t.listen.port}`;
  if (t.code === 'EADDRINUSE') {
    return `${where} is already in use (${t.component} would listen there, ${t.listen.flag}): another cluster may be running; stop it, or choose another port with ${t.listen.flag}`;
  }
  return `cannot listen on ${where} (${t.component}, ${t.listen.flag}): ${t.code}; choose another port with ${t.listen.flag}`;
}

/**
 * @module worker/runtime/containerd/port-check
 * Is a host port free right now? A foreign process may listen on a port of our range; binding
 * it for a moment is the cheapest honest answer.
 */
import { createServer } from 'node:net';

export function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const server = createServer();
    server.once('error', () => resolvePromise(false));
    server.listen({ host, port, exclusive: true }, () => {
      server.close(() => resolvePromise(true));
    });
  });
}

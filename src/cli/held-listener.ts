/**
 * @module cli/held-listener
 * A listening port that outlives the process serving it. `up` binds the port itself and hands
 * the socket to the component as an inherited file descriptor; the component calls listen(2) on
 * its copy. While `up` keeps its own copy open, the kernel keeps the socket listening, so a
 * connection made while the component restarts waits in the accept queue and the new process
 * serves it, instead of being refused.
 *
 * `up`'s copy is bound and never polled (no listen through libuv here): `up` accepts nothing, so
 * no connection is taken from the component. Node has no public call for a bound socket without
 * a server: `net._createServerHandle` is the one Node's cluster module uses for the same thing.
 * When it is missing or the bind fails, the caller gets an Error and the component binds the
 * port itself (restarts refuse connections again, nothing else changes).
 */
import net from 'node:net';

export interface HeldListener {
  readonly port: number;
  /** Passed to the component in its stdio array. */
  readonly fd: number;
  close(): void;
}

interface RawHandle {
  fd?: unknown;
  getsockname?(out: { port?: number }): number;
  close(): void;
}

type CreateServerHandle = (address: string, port: number, addressType: number) => RawHandle | number;

/** Binds host:port (IPv4) without listening; an Error names the port and the reason. */
export function holdListener(host: string, port: number): HeldListener | Error {
  const create = (net as unknown as { _createServerHandle?: CreateServerHandle })._createServerHandle;
  if (typeof create !== 'function') return new Error('this Node has no net._createServerHandle');
  const handle = create(host, port, 4);
  if (typeof handle === 'number') return new Error(`cannot bind ${host}:${port} (errno ${handle})`);
  // libuv reports a port in use only at listen(2), which `up` never calls: read back what the
  // socket is bound to (an unbound one would listen on a random port in the component).
  const bound: { port?: number } = {};
  const err = typeof handle.getsockname === 'function' ? handle.getsockname(bound) : -1;
  if (err !== 0 || bound.port !== port) {
    handle.close();
    return new Error(`cannot bind ${host}:${port} (in use, or not bound)`);
  }
  const fd = handle.fd;
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) {
    handle.close();
    return new Error(`the socket bound to ${host}:${port} has no file descriptor`);
  }
  let open = true;
  return {
    port,
    fd,
    close: () => {
      if (open) handle.close();
      open = false;
    },
  };
}

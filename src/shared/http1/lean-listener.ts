/**
 * @module shared/http1/lean-listener
 * A plain TCP listener whose connections are read on the lean HTTP/1.1 path first. What the
 * lean path does not take it hands to `h1`, a Node HTTP server that never listens itself.
 * The CP's management API and the emulated responder both serve this way; the DP's proxy
 * listener also tells HTTP/2 apart and holds connections until it is synced, so it keeps its own.
 */
import type { Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import type { LeanConnections } from './lean-h1.js';

export interface LeanListener {
  readonly port: number;
  /** Stops listening and closes every connection, idle keep-alive ones included. */
  close(): Promise<void>;
}

export function startLeanListener(lean: LeanConnections, h1: HttpServer, host: string, port: number): Promise<LeanListener> {
  // Node starts the header and request timeout checks of a server on 'listening'.
  h1.emit('listening');
  const server = createNetServer((socket: Socket) => {
    socket.setNoDelay(true);
    // A client may reset before a reader owns the socket: without a listener that error would
    // be uncaught and end the process.
    socket.on('error', () => socket.destroy());
    lean.accept(socket, null);
  });
  const close = (): Promise<void> => new Promise((resolve) => {
    server.close(() => resolve());
    lean.close(); // idle keep-alive sockets would hold close() for their whole timeout
    h1.closeAllConnections();
    h1.close();
  });
  return new Promise((resolve, reject) => {
    const failed = (err: Error): void => {
      lean.close(); // its sweep timer and Node's timeout checks stop with the failed start
      h1.close();
      reject(err);
    };
    server.once('error', failed);
    server.listen({ host, port }, () => {
      server.off('error', failed);
      resolve({ port: (server.address() as AddressInfo).port, close });
    });
  });
}

/**
 * @module shared/http1/lean-listener
 * A plain TCP listener whose connections are read on the lean HTTP/1.1 path first. What the
 * lean path does not take it hands to `h1`, a Node HTTP server that never listens itself.
 * The CP's management API and the emulated responder both serve this way; the DP's proxy
 * listener also tells HTTP/2 apart and holds connections until it is synced, so it keeps its own.
 *
 * With `tls` the listener speaks TLS (HTTP/1.1 only, no ALPN) and the lean path reads the
 * decrypted stream: HTTPS costs the handshake and the cipher, not Node's request objects too.
 */
import type { Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { LeanConnections } from './lean-h1.js';
import { listenOptions } from '../listen-backlog.js';

/** Certificate and key of a TLS listener, and how long a handshake may take. */
export interface LeanListenerTls {
  certPem: Buffer;
  keyPem: Buffer;
  /** A client that has not finished its handshake by then is dropped (slowloris before the first byte). */
  handshakeTimeoutMs: number;
}

export interface LeanListener {
  readonly port: number;
  /** Stops listening and closes every connection, idle keep-alive ones included. */
  close(): Promise<void>;
}

export function startLeanListener(
  lean: LeanConnections, h1: HttpServer, host: string, port: number, tls: LeanListenerTls | null = null,
  /** An inherited socket bound to the port, listened on instead of host:port (-1: none). */
  fd = -1,
): Promise<LeanListener> {
  // Node starts the header and request timeout checks of a server on 'listening'.
  h1.emit('listening');
  const serve = (socket: Socket): void => {
    socket.setNoDelay(true);
    // A client may reset before a reader owns the socket: without a listener that error would
    // be uncaught and end the process.
    socket.on('error', () => socket.destroy());
    lean.accept(socket, null);
  };
  let server: Server;
  if (tls) {
    // A failed handshake concerns that client only: Node destroys its socket.
    server = createTlsServer({ cert: tls.certPem, key: tls.keyPem, handshakeTimeout: tls.handshakeTimeoutMs }, serve);
  } else {
    server = createNetServer(serve);
  }
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
    server.listen(listenOptions(host, port, fd), () => {
      server.off('error', failed);
      resolve({ port: (server.address() as AddressInfo).port, close });
    });
  });
}

/**
 * @module shared/http1/client-socket
 * The TCP connection of the lean HTTP/1.1 clients (the DP's to sandboxes, data-plane/shell/
 * lean-upstream; the load generator's to the DP, loadgen/shell/lean-sender): Nagle off, a
 * connect timeout, and every read of the process into one shared buffer (Node's `onread`), so
 * no buffer is allocated per read and no stream machinery runs for it. A read's bytes live only
 * until the next read of any such connection: a reader copies what it keeps (the response
 * reader's `detachInput`, body bytes copied before they are handed on).
 */
import { connect, type Socket } from 'node:net';

/** Bytes per socket read, into the one buffer every connection of the process shares. */
const readBytes = 65_536;
let sharedReadBuffer: Buffer | null = null;

/**
 * Connects to `host:port`; `onRead(bytes, buffer)` gets each read (valid during the call only).
 * A connect that takes longer than `connectTimeoutMs` destroys the socket with `timeoutError()`.
 */
export function connectSharedReads(host: string, port: number, connectTimeoutMs: number,
  onRead: (bytes: number, buf: Buffer) => boolean, timeoutError: () => Error): Socket {
  const socket = connect({ host, port, onread: { buffer: (sharedReadBuffer ??= Buffer.allocUnsafe(readBytes)), callback: onRead } });
  socket.setNoDelay(true);
  socket.setTimeout(connectTimeoutMs, () => socket.destroy(timeoutError()));
  socket.once('connect', () => socket.setTimeout(0));
  return socket;
}

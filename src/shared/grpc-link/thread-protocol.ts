/**
 * @module shared/grpc-link/thread-protocol
 * Messages between `ThreadGrpcServer` (the owner's event loop) and `thread-server-worker` (the
 * worker thread that holds the sockets and HTTP/2 sessions). Each side posts what one of its
 * turns produced as one message; the message bodies of a turn travel in one ArrayBuffer that
 * is transferred, not copied, and each op names its slice of it.
 */
import type { CallStatus, HeaderBag } from './frames.js';
import type { ServerLimits, ServerTls } from './server.js';

export interface ThreadServerInit {
  limits: ServerLimits;
  /** The methods' paths: the thread answers others UNIMPLEMENTED itself. */
  paths: string[];
  /**
   * One Int32: messages the thread posted that the owner has not handled yet. The thread adds,
   * the owner subtracts; past `messagesPendingMax` the thread stops reading every call, and
   * reads again once they are down to half of it.
   */
  pending: SharedArrayBuffer;
  messagesPendingMax: number;
}

/** A slice of the turn's transferred buffer. */
export interface Slice {
  offset: number;
  length: number;
}

export type CallOp =
  | { id: number; op: 'headers' }
  /** One message, already framed (5-byte prefix and body). */
  | ({ id: number; op: 'write' } & Slice)
  | { id: number; op: 'end'; status: CallStatus }
  | { id: number; op: 'pause' | 'resume' };

export type CallIn =
  | { id: number; ev: 'open'; path: string; metadata: HeaderBag; peer: string }
  /** One message's body (without its prefix). */
  | ({ id: number; ev: 'data' } & Slice)
  | { id: number; ev: 'end' }
  | { id: number; ev: 'close' };

export type ToServerThread =
  | { kind: 'listen'; host: string; port: number; tls: ServerTls | null }
  | { kind: 'ops'; ops: CallOp[]; bytes: ArrayBuffer }
  | { kind: 'close' };

export type FromServerThread =
  | { kind: 'listening'; port: number }
  /** The listen error's own fields, so that the owner reports it as a local bind failure. */
  | { kind: 'listen_failed'; message: string; code: string; syscall: string; address: string; port: number }
  | { kind: 'in'; ins: CallIn[]; bytes: ArrayBuffer }
  /** The listening socket failed after listen (e.g. EMFILE on accept). */
  | { kind: 'server_error'; message: string }
  | { kind: 'peer_refused'; peer: string; reason: string }
  | { kind: 'paused'; pending: number }
  | { kind: 'resumed'; pending: number }
  | { kind: 'closed' };

/** Packs the byte strings of one turn into one exact-size buffer to transfer. */
export class TurnBytes {
  private parts: Uint8Array[] = [];
  private total = 0;

  add(bytes: Uint8Array): Slice {
    const slice = { offset: this.total, length: bytes.byteLength };
    this.parts.push(bytes);
    this.total += bytes.byteLength;
    return slice;
  }

  take(): ArrayBuffer {
    const out = new Uint8Array(this.total);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.byteLength;
    }
    this.parts = [];
    this.total = 0;
    return out.buffer;
  }
}

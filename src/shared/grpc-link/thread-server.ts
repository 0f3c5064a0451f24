/**
 * @module shared/grpc-link/thread-server
 * A gRPC server whose connections live on a worker thread (thread-server-worker): sockets, TLS,
 * HTTP/2 and the framing run there, off the owner's event loop; the owner's handlers see the
 * same `ServerCall`s as with `GrpcServer` and decode and encode the messages themselves.
 *
 * Structured cloning of decoded messages across threads cost the owner as much as the stream
 * work it saved (BENCHMARKS.md, "The CP's streams on a thread"), so only bytes cross: the
 * bodies of one turn in one transferred buffer each way. When the owner falls behind by
 * `messagesPendingMax` messages, the thread stops reading until it is down to half
 * (`paused` / `resumed` reported through `onFlow`).
 */
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import { grpcStatus, type CallStatus, type HeaderBag } from './frames.js';
import { defaultServerLimits, emitDecoded, type GrpcServing, type ServerCall, type ServerLimits, type ServerMethod, type ServerTls } from './server.js';
import { TurnBytes, type CallIn, type CallOp, type FromServerThread, type ThreadServerInit, type ToServerThread } from './thread-protocol.js';

/**
 * Messages the thread may have handed over that the owner has not handled yet. Each holds a few
 * hundred bytes here at most: tens of MiB. An owner this far behind is overloaded; the peers'
 * messages then wait on their side, as they do when the owner reads its sockets itself.
 */
export const threadMessagesPendingMax = 100_000;

export interface ThreadServerOptions {
  limits?: ServerLimits;
  onError?: (err: Error) => void;
  onPeerRefused?: (peer: string, reason: string) => void;
  /** The thread stopped (`paused`) or resumed reading, with the messages pending then. */
  onFlow?: (what: 'paused' | 'resumed', pending: number) => void;
  /** Called if the thread dies or exits unasked: every call on it is gone. */
  onThreadLost?: (err: Error) => void;
  messagesPendingMax?: number;
}

export class ThreadGrpcServer implements GrpcServing {
  private readonly methods = new Map<string, ServerMethod<unknown, unknown>>();
  private readonly calls = new Map<number, RemoteCall<unknown, unknown>>();
  private readonly pending = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
  private thread: Worker | null = null;
  private ops: CallOp[] = [];
  private readonly bytes = new TurnBytes();
  private listening: { resolve: (port: number) => void; reject: (err: Error) => void } | null = null;
  private closing: Promise<void> | null = null;
  private resolveClosed: () => void = () => {};

  constructor(private readonly options: ThreadServerOptions = {}) {}

  addMethod<In, Out>(method: ServerMethod<In, Out>): void {
    if (this.thread) throw new Error('methods are added before listen');
    if (this.methods.has(method.path)) throw new Error(`method ${method.path} added twice`);
    this.methods.set(method.path, method as ServerMethod<unknown, unknown>);
  }

  listen(host: string, port: number, tls: ServerTls | null = null): Promise<number> {
    if (this.thread) throw new Error('the server listens already');
    const init: ThreadServerInit = {
      limits: this.options.limits ?? defaultServerLimits,
      paths: [...this.methods.keys()],
      pending: this.pending.buffer as SharedArrayBuffer,
      messagesPendingMax: this.options.messagesPendingMax ?? threadMessagesPendingMax,
    };
    const thread = new Worker(new URL('./thread-server-worker.js', import.meta.url), { workerData: init });
    this.thread = thread;
    thread.on('message', (m: FromServerThread) => this.onMessage(m));
    thread.on('error', (err) => this.lost(err));
    thread.on('exit', (code) => {
      if (this.closing) this.resolveClosed();
      else this.lost(new Error(`the server thread exited (code ${code})`));
    });
    return new Promise((resolve, reject) => {
      this.listening = { resolve, reject };
      this.post({ kind: 'listen', host, port, tls });
    });
  }

  /** Ends every call and stops listening; resolves once the thread is gone. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    if (!this.thread) this.resolveClosed();
    else this.post({ kind: 'close' });
    return this.closing;
  }

  /** @internal An op of a call, sent with the others of this turn. */
  op(o: CallOp): void {
    if (this.ops.length === 0) setImmediate(this.flush);
    this.ops.push(o);
  }

  /** @internal A framed message of call `id`, sent with the others of this turn. */
  write(id: number, framed: Uint8Array): void {
    this.op({ id, op: 'write', ...this.bytes.add(framed) });
  }

  private readonly flush = (): void => {
    if (this.ops.length === 0 || !this.thread) return;
    const ops = this.ops;
    this.ops = [];
    const buffer = this.bytes.take();
    this.post({ kind: 'ops', ops, bytes: buffer }, [buffer]);
  };

  private post(m: ToServerThread, transfer: ArrayBuffer[] = []): void {
    this.thread?.postMessage(m, transfer);
  }

  private onMessage(m: FromServerThread): void {
    switch (m.kind) {
      case 'in':
        return this.deliver(m.ins, m.bytes);
      case 'listening':
        this.listening?.resolve(m.port);
        this.listening = null;
        return;
      case 'listen_failed':
        this.listening?.reject(Object.assign(new Error(m.message), { code: m.code, syscall: m.syscall, address: m.address, port: m.port }));
        this.listening = null;
        return;
      case 'server_error':
        return this.options.onError?.(new Error(m.message));
      case 'peer_refused':
        return this.options.onPeerRefused?.(m.peer, m.reason);
      case 'paused':
      case 'resumed':
        return this.options.onFlow?.(m.kind, m.pending);
      case 'closed':
        for (const call of this.calls.values()) call.closed();
        this.calls.clear();
        // A timer still pending there must not keep it.
        void this.thread?.terminate();
    }
  }

  private deliver(ins: CallIn[], bytes: ArrayBuffer): void {
    let messages = 0;
    for (const e of ins) {
      if (e.ev === 'open') {
        const method = this.methods.get(e.path)!;
        const call = new RemoteCall(this, e.id, method, e.metadata, e.peer);
        this.calls.set(e.id, call);
        method.handler(call);
        continue;
      }
      const call = this.calls.get(e.id);
      if (e.ev === 'data') {
        messages += 1;
        call?.message(new Uint8Array(bytes, e.offset, e.length));
      } else if (e.ev === 'end') {
        call?.ended();
      } else {
        this.calls.delete(e.id);
        call?.closed();
      }
    }
    if (messages > 0) Atomics.sub(this.pending, 0, messages);
  }

  private lost(err: Error): void {
    for (const call of this.calls.values()) call.closed();
    this.calls.clear();
    this.listening?.reject(err);
    this.listening = null;
    this.options.onThreadLost?.(err);
  }
}

/** A call served on the thread, as its handler sees it: the same events and methods as `GrpcServer`'s. */
class RemoteCall<In, Out> extends EventEmitter implements ServerCall<Out> {
  private status: CallStatus | null = null;
  private isClosed = false;

  constructor(
    private readonly server: ThreadGrpcServer,
    private readonly id: number,
    private readonly method: ServerMethod<In, Out>,
    readonly metadata: HeaderBag,
    readonly peer: string,
  ) {
    super();
  }

  get writable(): boolean {
    return this.status === null && !this.isClosed;
  }

  sendHeaders(): void {
    if (this.writable) this.server.op({ id: this.id, op: 'headers' });
  }

  write(message: Out): boolean {
    if (!this.writable) return false;
    this.server.write(this.id, this.method.encodeFramed(message));
    return true;
  }

  end(status: CallStatus = { code: grpcStatus.OK, details: '' }): void {
    if (this.status || this.isClosed) return;
    this.status = status;
    this.server.op({ id: this.id, op: 'end', status });
  }

  pause(): void {
    if (!this.isClosed) this.server.op({ id: this.id, op: 'pause' });
  }

  resume(): void {
    if (!this.isClosed) this.server.op({ id: this.id, op: 'resume' });
  }

  message(body: Uint8Array): void {
    if (!this.status) emitDecoded(this, this.method.decode, body);
  }

  ended(): void {
    if (!this.status) this.emit('end');
  }

  closed(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.emit('close');
  }
}

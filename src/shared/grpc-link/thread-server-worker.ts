/**
 * @module shared/grpc-link/thread-server-worker
 * The worker thread behind `ThreadGrpcServer`: a `GrpcServer` whose methods pass message bytes
 * through. Here run the sockets, TLS, HTTP/2, keepalive and ping budgets, and the gRPC framing;
 * each call's opening (path, metadata, peer), message bodies, half-close and close go to the
 * owner batched per turn, and the owner's headers, framed messages and statuses come back the
 * same way. Decoding, encoding and every decision stay with the owner.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ServerCall } from './server.js';
import { GrpcServer } from './server.js';
import { TurnBytes, type CallIn, type FromServerThread, type ThreadServerInit, type ToServerThread } from './thread-protocol.js';

/** How often a thread that stopped reading looks whether its owner caught up. */
const pausedCheckMs = 5;

const port = parentPort!;
const init = workerData as ThreadServerInit;
const post = (m: FromServerThread, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);
const pending = new Int32Array(init.pending);
const calls = new Map<number, ServerCall<Uint8Array>>();
/** Calls the owner paused itself: they stay paused when the thread reads on after its own pause. */
const ownerPaused = new Set<number>();
let nextId = 1;
let ins: CallIn[] = [];
let messages = 0;
const bytes = new TurnBytes();
let pausedCheck: NodeJS.Timeout | null = null;

function queue(item: CallIn): void {
  if (ins.length === 0) setImmediate(flush);
  ins.push(item);
}

function flush(): void {
  if (ins.length === 0) return;
  const batch = ins;
  const count = messages;
  ins = [];
  messages = 0;
  const buffer = bytes.take();
  post({ kind: 'in', ins: batch, bytes: buffer }, [buffer]);
  if (Atomics.add(pending, 0, count) + count > init.messagesPendingMax && pausedCheck === null) pause();
}

/** The owner is far behind: every call stops reading, and the peers' flow control holds them. */
function pause(): void {
  for (const c of calls.values()) c.pause();
  post({ kind: 'paused', pending: Atomics.load(pending, 0) });
  pausedCheck = setInterval(() => {
    if (Atomics.load(pending, 0) > init.messagesPendingMax / 2) return;
    clearInterval(pausedCheck!);
    pausedCheck = null;
    for (const [id, c] of calls) if (!ownerPaused.has(id)) c.resume();
    post({ kind: 'resumed', pending: Atomics.load(pending, 0) });
  }, pausedCheckMs);
}

const server = new GrpcServer(init.limits, (err) => post({ kind: 'server_error', message: String(err) }),
  (peer, reason) => post({ kind: 'peer_refused', peer, reason }));
for (const path of init.paths) {
  server.addMethod<Uint8Array, Uint8Array>({
    path,
    decode: (body) => body,
    encodeFramed: (framed) => framed as Buffer,
    handler: (call) => {
      const id = nextId++;
      calls.set(id, call);
      if (pausedCheck !== null) call.pause();
      queue({ id, ev: 'open', path, metadata: call.metadata, peer: call.peer });
      call.on('data', (body: Uint8Array) => {
        messages += 1;
        queue({ id, ev: 'data', ...bytes.add(body) });
      });
      call.on('end', () => queue({ id, ev: 'end' }));
      call.on('close', () => {
        calls.delete(id);
        ownerPaused.delete(id);
        queue({ id, ev: 'close' });
      });
    },
  });
}

port.on('message', (m: ToServerThread) => {
  switch (m.kind) {
    case 'listen':
      server.listen(m.host, m.port, m.tls).then(
        (bound) => post({ kind: 'listening', port: bound }),
        (err: NodeJS.ErrnoException & { address?: string; port?: number }) => post({
          kind: 'listen_failed', message: err.message, code: err.code ?? '', syscall: err.syscall ?? '', address: err.address ?? m.host, port: err.port ?? m.port,
        }),
      );
      return;
    case 'ops':
      for (const o of m.ops) {
        const call = calls.get(o.id);
        if (!call) continue; // closed meanwhile
        if (o.op === 'headers') call.sendHeaders();
        else if (o.op === 'write') call.write(new Uint8Array(m.bytes, o.offset, o.length));
        else if (o.op === 'end') call.end(o.status);
        else if (o.op === 'pause') {
          ownerPaused.add(o.id);
          call.pause();
        } else {
          ownerPaused.delete(o.id);
          if (pausedCheck === null) call.resume(); // not while the owner is far behind
        }
      }
      return;
    case 'close':
      if (pausedCheck !== null) clearInterval(pausedCheck);
      server.close();
      // The calls close on the next ticks: their closes reach the owner before this does.
      setImmediate(() => {
        flush();
        post({ kind: 'closed' });
      });
  }
});

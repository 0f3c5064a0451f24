/**
 * @module control-plane/shell/rpc-server
 * The CP's gRPC side: accepts worker and data-plane streams, decodes and validates every event
 * with the wire codec, turns valid ones into core events, and writes the core's effects back,
 * batched per event-loop turn. An invalid message is logged (`rpc.invalid_message`, naming the
 * peer and the field) and dropped: nothing another process sends reaches a core assertion. An
 * exception while handling a batch is logged with the event and never ends the process.
 * With `rpcThread` on, the streams' sockets, TLS, HTTP/2 and framing run on a worker thread
 * (shared/grpc-link/thread-server); everything here stays on the loop and works the same.
 *
 * Every stream must carry the cluster token (`authorization: Bearer <token>` metadata): it is
 * checked against the token's digest, in constant time, before any message is read or any
 * redirect is answered; a missing or wrong one ends the call UNAUTHENTICATED (`rpc.refused`).
 */
import { availableParallelism } from 'node:os';
import type { DataPlaneEventMsg, WorkerEventMsg } from '../../api/cluster.js';
import { autoRpcThreadCoresMin } from '../../config/defaults.js';
import {
  ControlPlane,
  type DataPlaneBatch,
  type RoutingBatch,
  type RoutingUpdate,
  type WorkerBatch,
  type WorkerCommand,
  type WorkerCommandBatch,
} from '../../gen/dirigent/v1/cluster_pb.js';
import { Batcher, deferrableFlushMs, serveService, type StreamHandler } from '../../shared/grpc.js';
import { grpcStatus } from '../../shared/grpc-link/frames.js';
import { GrpcServer, defaultServerLimits, type GrpcServing, type ServerCall, type ServerTls } from '../../shared/grpc-link/server.js';
import { ThreadGrpcServer } from '../../shared/grpc-link/thread-server.js';
import type { Logger } from '../../shared/logger.js';
import { bearerOf, sameDigest, sha256Hex } from '../../shared/secrets.js';
import { decodeDataPlaneEvent, decodeWorkerEvent, encodeRoutingBatch, encodeWorkerCommandBatch, type Decoded } from '../../wire/codec.js';
import type { CpEvent } from '../core/types.js';
import { dataPlaneEventToCp, workerEventToCp } from './peer-events.js';

type WorkerCall = ServerCall<WorkerCommandBatch>;
type DpCall = ServerCall<RoutingBatch>;

export interface RpcHooks {
  /** Feed one event to the core and carry out its effects. */
  handle(event: CpEvent): void;
  /** The leader's term, written on every command and routing batch (fencing; the runtime's core). */
  readonly core: { readonly term: number };
  /** null while this CP leads; on a standby the leader's RPC address ('' = unknown), for a redirect. */
  standbyLeader?(): string | null;
  /** SHA-256 (hex) of the cluster token every worker and DP stream must present. */
  readonly clusterTokenSha256Hex: string;
  /** HTTP/2 pings a connection may send at once, and one more per refill (default: grpc-link's). */
  readonly pingLimits?: { burstMax: number; refillMs: number };
}

interface StreamHandlers<Batch, Msg> {
  role: 'worker' | 'data_plane';
  events(batch: Batch): Decoded<Msg>[];
  onEvent(peer: { id: string }, msg: Msg): void;
  /** The stream of peer `id` ended. */
  closed(id: string): void;
}

/**
 * Where the streams' sockets, HTTP/2 and framing run: on this loop, or on a worker thread
 * (`rpcThread`; decoding, validation and every decision stay on the loop either way).
 * `messagesPendingMax`: see thread-server (tests set a small one).
 */
export interface RpcServing {
  onThread: boolean;
  messagesPendingMax?: number;
}

/** `rpcThread` as configured ('auto', 'thread' or 'loop'; checked by the config), for a machine of `cores` cores. */
export function rpcOnThread(mode: string, cores: number = availableParallelism()): boolean {
  if (mode === 'auto') return cores >= autoRpcThreadCoresMin;
  return mode === 'thread';
}

/** Events before hello, or invalid messages, tolerated per stream before it is closed. */
const invalidMessagesPerStreamMax = 100;

export class RpcServer {
  /** Keepalive 10 s / 5 s, 64 MiB messages, 100,000 streams per connection (grpc-link defaults); pings as configured. */
  private readonly server: GrpcServing;
  private readonly workerOut = new Map<string, Batcher<WorkerCommand>>();
  private readonly dpOut = new Map<string, Batcher<RoutingUpdate>>();

  constructor(private readonly hooks: RpcHooks, private readonly log: Logger, serving: RpcServing = { onThread: false }) {
    const limits = hooks.pingLimits ? { ...defaultServerLimits, pingBurstMax: hooks.pingLimits.burstMax, pingRefillMs: hooks.pingLimits.refillMs } : defaultServerLimits;
    const onError = (err: Error): void => log.error('rpc.server_error', { error: String(err) });
    const onPeerRefused = (peer: string, reason: string): void => log.warn('rpc.peer_refused', { peer, reason });
    this.server = serving.onThread
      ? new ThreadGrpcServer({
        limits, onError, onPeerRefused, messagesPendingMax: serving.messagesPendingMax,
        onFlow: (what, pending) => log[what === 'paused' ? 'warn' : 'info'](`rpc.reading_${what}`, { messagesPending: pending }),
        onThreadLost: (err) => {
          // Every stream went with it: the CP cannot serve; its supervisor restarts it.
          log.error('rpc.thread_failed', { error: String(err), stack: err.stack });
          throw err;
        },
      })
      : new GrpcServer(limits, onError, onPeerRefused);
    const workerStream: StreamHandler<WorkerBatch, WorkerCommandBatch> = (call) => {
      if (this.refused(call, 'worker')) return;
      if (!this.redirected(call, (leaderAddress) => encodeWorkerCommandBatch({ term: 0, leaderAddress }, []))) this.onWorkerStream(call);
    };
    const dataPlaneStream: StreamHandler<DataPlaneBatch, RoutingBatch> = (call) => {
      if (this.refused(call, 'data_plane')) return;
      if (!this.redirected(call, (leaderAddress) => encodeRoutingBatch({ term: 0, leaderAddress }, []))) this.onDataPlaneStream(call);
    };
    serveService(this.server, ControlPlane, { workerStream, dataPlaneStream } as Record<string, StreamHandler<never, never>>);
  }

  /** Listens for worker and DP streams; resolves with the port bound. */
  listen(host: string, port: number, tls: ServerTls | null): Promise<number> {
    return this.server.listen(host, port, tls);
  }

  /** Ends every stream and stops listening (peers see the connection go and dial again). */
  async close(): Promise<void> {
    await this.server.close();
  }

  /** A stream without the cluster token ends UNAUTHENTICATED before anything of it is read. */
  private refused(call: WorkerCall | DpCall, stream: 'worker' | 'data_plane'): boolean {
    const value = call.metadata['authorization'];
    const token = typeof value === 'string' ? bearerOf(value) : null;
    if (token !== null && sameDigest(sha256Hex(token), this.hooks.clusterTokenSha256Hex)) return false;
    this.log.warn('rpc.refused', { stream, peer: call.peer, reason: token === null ? 'no cluster token' : 'wrong cluster token' });
    call.end({
      code: grpcStatus.UNAUTHENTICATED,
      details: 'refused: this stream must carry the cluster token (authorization: Bearer <token>; see --cluster-token-file)',
    });
    return true;
  }

  /** A standby answers a stream with one batch naming the leader and ends it (DESIGN §6). */
  private redirected<T>(call: ServerCall<T>, batch: (leaderAddress: string) => T): boolean {
    const leader = this.hooks.standbyLeader?.() ?? null;
    if (leader === null) return false;
    call.write(batch(leader));
    call.end();
    return true;
  }

  /** `deferrable`: nothing waits on it (see `Batcher.push`). */
  sendWorker(workerId: string, command: WorkerCommand, deferrable = false): void {
    this.workerOut.get(workerId)?.push(command, deferrable);
  }

  sendDataPlane(dataPlaneId: string, update: RoutingUpdate, deferrable = false): void {
    this.dpOut.get(dataPlaneId)?.push(update, deferrable);
  }

  broadcastDataPlanes(update: RoutingUpdate, deferrable = false): void {
    for (const out of this.dpOut.values()) out.push(update, deferrable);
  }

  /** Runs a stream callback; whatever it throws is logged with the peer and never escapes. */
  private guarded(peer: string, what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error('rpc.handler_failed', { peer, event: what, error: String(err), stack: (err as Error).stack });
    }
  }

  private onWorkerStream(call: WorkerCall): void {
    const out = new Batcher<WorkerCommand>((commands) => {
      call.write(encodeWorkerCommandBatch({ term: this.hooks.core.term, leaderAddress: '' }, commands));
    }, deferrableFlushMs);
    this.serve<WorkerBatch, WorkerEventMsg>(call, {
      role: 'worker',
      events: (batch) => batch.events.map(decodeWorkerEvent),
      onEvent: (peer, e) => this.onWorkerEvent(peer, out, e),
      closed: (id) => {
        if (this.workerOut.get(id) !== out) return;
        this.workerOut.delete(id);
        this.hooks.handle({ kind: 'worker_disconnected', workerId: id });
      },
    });
  }

  private onWorkerEvent(peer: { id: string }, out: Batcher<WorkerCommand>, e: WorkerEventMsg): void {
    if (e.case === 'hello') {
      peer.id = e.value.workerId;
      if (this.workerOut.get(peer.id)) this.hooks.handle({ kind: 'worker_disconnected', workerId: peer.id });
      this.workerOut.set(peer.id, out);
    }
    this.hooks.handle(workerEventToCp(peer.id, e));
  }

  private onDataPlaneStream(call: DpCall): void {
    const out = new Batcher<RoutingUpdate>((updates) => {
      call.write(encodeRoutingBatch({ term: this.hooks.core.term, leaderAddress: '' }, updates));
    }, deferrableFlushMs);
    this.serve<DataPlaneBatch, DataPlaneEventMsg>(call, {
      role: 'data_plane',
      events: (batch) => batch.events.map(decodeDataPlaneEvent),
      onEvent: (peer, e) => this.onDataPlaneEvent(peer, out, e),
      closed: (id) => {
        if (this.dpOut.get(id) !== out) return;
        this.dpOut.delete(id);
        this.hooks.handle({ kind: 'dp_disconnected', dataPlaneId: id });
      },
    });
  }

  /**
   * One peer stream: every event is decoded (an invalid one is logged and dropped), nothing but a
   * hello is taken before the hello, and the stream's end reports the peer gone once.
   */
  private serve<Batch, Msg extends { case: string }>(call: WorkerCall | DpCall, h: StreamHandlers<Batch, Msg>): void {
    const peer = { id: '', invalid: 0 };
    // Headers at once: until a stream has them, a grpc-js client keeps every message it writes
    // for a transparent retry (up to 256 KiB per stream), e.g. all the heartbeats of a worker
    // that has had no sandbox placed on it yet. Our own channel does not, but says it is up.
    call.sendHeaders();
    call.on('data', (batch: Batch) => this.guarded(peer.id || call.peer, `${h.role}.batch`, () => {
      for (const d of h.events(batch)) {
        if (!d.ok) {
          this.invalid(call, peer, h.role, d.field, d.reason);
          continue;
        }
        if (d.msg.case !== 'hello' && !peer.id) {
          this.invalid(call, peer, h.role, 'event', 'event before hello');
          continue;
        }
        this.guarded(peer.id, `${h.role}.${d.msg.case}`, () => h.onEvent(peer, d.msg));
      }
    }));
    const closed = (): void => this.guarded(peer.id, `${h.role}.closed`, () => {
      if (peer.id) h.closed(peer.id);
      peer.id = '';
    });
    this.onClose(call, closed);
  }

  private onDataPlaneEvent(peer: { id: string }, out: Batcher<RoutingUpdate>, e: DataPlaneEventMsg): void {
    if (e.case === 'hello') {
      peer.id = e.value.dataPlaneId;
      this.dpOut.set(peer.id, out);
    }
    this.hooks.handle(dataPlaneEventToCp(peer.id, e));
  }

  /** Log and drop an invalid message; a peer that keeps sending them loses its stream. */
  private invalid(call: WorkerCall | DpCall, peer: { id: string; invalid: number }, role: string, field: string, reason: string): void {
    peer.invalid += 1;
    this.log.warn('rpc.invalid_message', { peer: peer.id || call.peer, role, field, reason });
    if (peer.invalid === invalidMessagesPerStreamMax) {
      this.log.warn('rpc.stream_closed', { peer: peer.id || call.peer, role, reason: 'too many invalid messages' });
      call.end({ code: grpcStatus.INVALID_ARGUMENT, details: `${invalidMessagesPerStreamMax} invalid messages` });
    }
  }

  /** The client half-closing ends the call (OK); a reset or a lost connection only closes it. */
  private onClose(call: WorkerCall | DpCall, closed: () => void): void {
    call.on('end', () => {
      closed();
      call.end();
    });
    call.on('close', closed);
  }
}

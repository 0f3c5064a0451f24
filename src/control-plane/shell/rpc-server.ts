/**
 * @module control-plane/shell/rpc-server
 * The CP's gRPC side: accepts worker and data-plane streams, decodes and validates every event
 * with the wire codec, turns valid ones into core events, and writes the core's effects back,
 * batched per event-loop turn. An invalid message is logged (`rpc.invalid_message`, naming the
 * peer and the field) and dropped: nothing another process sends reaches a core assertion. An
 * exception while handling a batch is logged with the event and never ends the process.
 */
import * as grpc from '@grpc/grpc-js';
import { create } from '@bufbuild/protobuf';
import type { DataPlaneEventMsg, WorkerEventMsg } from '../../api/cluster.js';
import {
  ControlPlane,
  RoutingBatchSchema,
  WorkerCommandBatchSchema,
  type DataPlaneBatch,
  type RoutingBatch,
  type RoutingUpdate,
  type WorkerBatch,
  type WorkerCommand,
  type WorkerCommandBatch,
} from '../../gen/dirigent/v1/cluster_pb.js';
import { Batcher, serviceDefinition } from '../../shared/grpc.js';
import type { Logger } from '../../shared/logger.js';
import { decodeDataPlaneEvent, decodeWorkerEvent } from '../../wire/codec.js';
import type { CpEvent } from '../core/types.js';
import { dataPlaneEventToCp, workerEventToCp } from './peer-events.js';

type WorkerCall = grpc.ServerDuplexStream<WorkerBatch, WorkerCommandBatch>;
type DpCall = grpc.ServerDuplexStream<DataPlaneBatch, RoutingBatch>;

export interface RpcHooks {
  /** Feed one event to the core and carry out its effects. */
  handle(event: CpEvent): void;
}

/** Events before hello, or invalid messages, tolerated per stream before it is closed. */
const invalidMessagesPerStreamMax = 100;

export class RpcServer {
  readonly server = new grpc.Server({
    'grpc.max_concurrent_streams': 100_000,
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 4_000,
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
  });
  private readonly workerOut = new Map<string, Batcher<WorkerCommand>>();
  private readonly dpOut = new Map<string, Batcher<RoutingUpdate>>();

  constructor(private readonly hooks: RpcHooks, private readonly log: Logger) {
    this.server.addService(serviceDefinition(ControlPlane), {
      workerStream: (call: WorkerCall) => this.onWorkerStream(call),
      dataPlaneStream: (call: DpCall) => this.onDataPlaneStream(call),
    });
  }

  sendWorker(workerId: string, command: WorkerCommand): void {
    this.workerOut.get(workerId)?.push(command);
  }

  sendDataPlane(dataPlaneId: string, update: RoutingUpdate): void {
    this.dpOut.get(dataPlaneId)?.push(update);
  }

  broadcastDataPlanes(update: RoutingUpdate): void {
    for (const out of this.dpOut.values()) out.push(update);
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
    const peer = { id: '', invalid: 0 };
    const out = new Batcher<WorkerCommand>((commands) => {
      if (!call.destroyed && call.writable) call.write(create(WorkerCommandBatchSchema, { commands }));
    });
    call.on('data', (batch: WorkerBatch) => this.guarded(peer.id || call.getPeer(), 'worker.batch', () => {
      for (const ev of batch.events) {
        const d = decodeWorkerEvent(ev);
        if (!d.ok) {
          this.invalid(call, peer, 'worker', d.field, d.reason);
          continue;
        }
        if (d.msg.case !== 'hello' && !peer.id) {
          this.invalid(call, peer, 'worker', 'event', 'event before hello');
          continue;
        }
        this.guarded(peer.id, `worker.${d.msg.case}`, () => this.onWorkerEvent(peer, out, d.msg));
      }
    }));
    const closed = (): void => this.guarded(peer.id, 'worker.closed', () => {
      if (peer.id && this.workerOut.get(peer.id) === out) {
        this.workerOut.delete(peer.id);
        this.hooks.handle({ kind: 'worker_disconnected', workerId: peer.id });
      }
      peer.id = '';
    });
    this.onClose(call, closed);
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
    const peer = { id: '', invalid: 0 };
    const out = new Batcher<RoutingUpdate>((updates) => {
      if (!call.destroyed && call.writable) call.write(create(RoutingBatchSchema, { updates }));
    });
    call.on('data', (batch: DataPlaneBatch) => this.guarded(peer.id || call.getPeer(), 'data_plane.batch', () => {
      for (const ev of batch.events) {
        const d = decodeDataPlaneEvent(ev);
        if (!d.ok) {
          this.invalid(call, peer, 'data_plane', d.field, d.reason);
          continue;
        }
        if (d.msg.case !== 'hello' && !peer.id) {
          this.invalid(call, peer, 'data_plane', 'event', 'event before hello');
          continue;
        }
        this.guarded(peer.id, `data_plane.${d.msg.case}`, () => this.onDataPlaneEvent(peer, out, d.msg));
      }
    }));
    const closed = (): void => this.guarded(peer.id, 'data_plane.closed', () => {
      if (peer.id && this.dpOut.get(peer.id) === out) {
        this.dpOut.delete(peer.id);
        this.hooks.handle({ kind: 'dp_disconnected', dataPlaneId: peer.id });
      }
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
    this.log.warn('rpc.invalid_message', { peer: peer.id || call.getPeer(), role, field, reason });
    if (peer.invalid === invalidMessagesPerStreamMax) {
      this.log.warn('rpc.stream_closed', { peer: peer.id || call.getPeer(), role, reason: 'too many invalid messages' });
      call.end();
    }
  }

  private onClose(call: WorkerCall | DpCall, closed: () => void): void {
    call.on('end', () => {
      closed();
      call.end();
    });
    call.on('error', closed);
    call.on('cancelled', closed);
    call.on('close', closed);
  }
}

/**
 * @module control-plane/shell/rpc-server
 * The CP's gRPC side: accepts worker and data-plane streams, turns their messages into core
 * events, and writes the core's effects back, batched per event-loop turn.
 */
import * as grpc from '@grpc/grpc-js';
import { create } from '@bufbuild/protobuf';
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
import type { CpEvent } from '../core/types.js';

type WorkerCall = grpc.ServerDuplexStream<WorkerBatch, WorkerCommandBatch>;
type DpCall = grpc.ServerDuplexStream<DataPlaneBatch, RoutingBatch>;

export interface RpcHooks {
  /** Feed one event to the core and carry out its effects. */
  handle(event: CpEvent): void;
}

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

  private onWorkerStream(call: WorkerCall): void {
    let workerId = '';
    const out = new Batcher<WorkerCommand>((commands) => {
      if (!call.destroyed && call.writable) call.write(create(WorkerCommandBatchSchema, { commands }));
    });
    call.on('data', (batch: WorkerBatch) => {
      for (const ev of batch.events) {
        const e = ev.event;
        if (e.case === 'hello') {
          workerId = e.value.workerId;
          const previous = this.workerOut.get(workerId);
          if (previous) this.hooks.handle({ kind: 'worker_disconnected', workerId });
          this.workerOut.set(workerId, out);
          this.hooks.handle({ kind: 'worker_connected', hello: e.value });
        } else if (!workerId) {
          this.log.warn('worker.protocol_error', { reason: 'event before hello' });
          call.end();
          return;
        } else if (e.case === 'heartbeat') {
          this.hooks.handle({ kind: 'worker_heartbeat', workerId, heartbeat: e.value });
        } else if (e.case === 'ready') {
          const ready = e.value;
          this.hooks.handle({
            kind: 'sandbox_ready',
            workerId,
            sandbox: ready.sandbox!,
            creationMs: ready.breakdown?.totalMs ?? 0,
          });
        } else if (e.case === 'failed') {
          const f = e.value;
          this.hooks.handle({
            kind: 'sandbox_failed', workerId, sandboxId: f.sandboxId, failure: f.kind, reason: f.reason,
          });
        } else if (e.case === 'deleted') {
          this.hooks.handle({ kind: 'sandbox_deleted', workerId, sandboxId: e.value.sandboxId });
        }
      }
    });
    const closed = (): void => {
      if (workerId && this.workerOut.get(workerId) === out) {
        this.workerOut.delete(workerId);
        this.hooks.handle({ kind: 'worker_disconnected', workerId });
      }
      workerId = '';
    };
    call.on('end', () => {
      closed();
      call.end();
    });
    call.on('error', closed);
    call.on('cancelled', closed);
    call.on('close', closed);
  }

  private onDataPlaneStream(call: DpCall): void {
    let dpId = '';
    const out = new Batcher<RoutingUpdate>((updates) => {
      if (!call.destroyed && call.writable) call.write(create(RoutingBatchSchema, { updates }));
    });
    call.on('data', (batch: DataPlaneBatch) => {
      for (const ev of batch.events) {
        const e = ev.event;
        if (e.case === 'hello') {
          dpId = e.value.dataPlaneId;
          this.dpOut.set(dpId, out);
          this.hooks.handle({ kind: 'dp_connected', hello: e.value });
        } else if (!dpId) {
          call.end();
          return;
        } else if (e.case === 'demand') {
          this.hooks.handle({ kind: 'dp_demand', dataPlaneId: dpId, report: e.value });
        } else if (e.case === 'drained') {
          this.hooks.handle({ kind: 'dp_drained', dataPlaneId: dpId, sandboxIds: e.value.sandboxIds });
        } else if (e.case === 'resync') {
          this.hooks.handle({ kind: 'dp_resync', dataPlaneId: dpId });
        } else if (e.case === 'ack') {
          this.hooks.handle({ kind: 'dp_ack', dataPlaneId: dpId, version: e.value.version });
        }
      }
    });
    const closed = (): void => {
      if (dpId && this.dpOut.get(dpId) === out) {
        this.dpOut.delete(dpId);
        this.hooks.handle({ kind: 'dp_disconnected', dataPlaneId: dpId });
      }
      dpId = '';
    };
    call.on('end', () => {
      closed();
      call.end();
    });
    call.on('error', closed);
    call.on('cancelled', closed);
    call.on('close', closed);
  }
}

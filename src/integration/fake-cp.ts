/**
 * A fake control plane for data-plane tests: a real gRPC server on loopback serving
 * `dataPlaneStream`, recording what each data plane sends and letting the test write routing
 * batches to it.
 */
import { create } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import {
  ControlPlane, RoutingBatchSchema, type DataPlaneBatch, type DataPlaneEvent, type RoutingBatch,
} from '../gen/dirigent/v1/cluster_pb.js';
import { bindServer, serviceDefinition } from '../shared/grpc.js';

export type DpCall = grpc.ServerDuplexStream<DataPlaneBatch, RoutingBatch>;

export class FakeControlPlane {
  readonly server = new grpc.Server();
  readonly events: DataPlaneEvent['event'][] = [];
  readonly calls: DpCall[] = [];
  port = 0;

  async start(): Promise<void> {
    this.server.addService(serviceDefinition(ControlPlane), {
      workerStream: (call: grpc.ServerDuplexStream<unknown, unknown>) => call.end(),
      dataPlaneStream: (call: DpCall) => {
        this.calls.push(call);
        call.on('data', (b: DataPlaneBatch) => { for (const e of b.events) this.events.push(e.event); });
        call.on('error', () => {});
      },
    });
    this.port = await bindServer('127.0.0.1', 0, this.server);
  }

  send(call: DpCall, updates: Parameters<typeof create<typeof RoutingBatchSchema>>[1]): void {
    call.write(create(RoutingBatchSchema, updates));
  }

  count(kind: string): number {
    return this.events.filter((e) => e.case === kind).length;
  }
}


/**
 * @module shared/grpc
 * Binds protobuf-es generated service descriptors to the gRPC ends of our links, so the wire
 * schema lives only in `proto/` and the generated code: both ends on the lean HTTP/2 code of
 * grpc-link/ (the CP's server, the workers' and DPs' channels). grpc-js stays for test doubles
 * and interop tests (`serviceDefinition`, `bindServer`). Every internal link is one
 * bidirectional stream.
 */
import * as grpc from '@grpc/grpc-js';
import type { DescMessage } from '@bufbuild/protobuf';
import type { GenService } from '@bufbuild/protobuf/codegenv2';
import { fastCodec } from '../wire/fast-codec.js';
import { GrpcChannel, type BidiStream } from './grpc-link/channel.js';
import { grpcStatus } from './grpc-link/frames.js';
import type { GrpcServing, ServerCall } from './grpc-link/server.js';

type AnyService = GenService<Record<string, { methodKind: 'bidi_streaming'; input: DescMessage; output: DescMessage }>>;

export function serviceDefinition(service: AnyService): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    // Compiled codecs, not protobuf-es reflection: the stream messages are the hot path of
    // every cold start (wire/fast-codec).
    const input = fastCodec(method.input);
    const output = fastCodec(method.output);
    def[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === 'bidi_streaming' || method.methodKind === 'client_streaming',
      responseStream: method.methodKind === 'bidi_streaming' || method.methodKind === 'server_streaming',
      requestSerialize: input.encode,
      requestDeserialize: input.decode,
      responseSerialize: output.encode,
      responseDeserialize: output.decode,
      originalName: method.localName,
    };
  }
  return def as grpc.ServiceDefinition;
}

/** A handler of one method: it sees the call's decoded messages and writes typed ones. */
export type StreamHandler<In, Out> = (call: ServerCall<Out> & { on(event: 'data', listener: (message: In) => void): unknown }) => void;

/** Serves every method of `service` on the lean server, each with its handler (by local name). */
export function serveService(server: GrpcServing, service: AnyService, handlers: Record<string, StreamHandler<never, never>>): void {
  for (const method of service.methods) {
    const handler = handlers[method.localName];
    if (!handler) throw new Error(`no handler for ${service.typeName}.${method.localName}`);
    const input = fastCodec(method.input);
    const output = fastCodec(method.output);
    server.addMethod({
      path: `/${service.typeName}/${method.name}`,
      decode: input.decode,
      encodeFramed: output.encodeFramed as (m: unknown) => Buffer,
      handler: handler as (call: ServerCall<unknown>) => void,
    });
  }
}

export type { BidiStream } from './grpc-link/channel.js';
export { CallError } from './grpc-link/channel.js';

/**
 * How a worker or DP reaches the CP: the cluster token every stream carries, and the CA the CP's
 * certificate chains to (null = plain TCP).
 */
export interface LinkSecurity {
  /** Read at every stream open, so a fixed token file heals a refused link without a restart. */
  clusterToken(): string;
  /** Where the token comes from, named when the CP refuses it. */
  clusterTokenFile: string;
  caPem: Buffer | null;
}

/** A client channel to the CP: one HTTP/2 connection, TLS when a CA is given (grpc-link/channel). */
export function makeClient(address: string, caPem: Buffer | null): GrpcChannel {
  return new GrpcChannel(address, caPem);
}

/** Opens a bidi stream of `service` whose call carries `authorization: Bearer <clusterToken>`. */
export function openStream<Out, In>(channel: GrpcChannel, service: AnyService, localName: string, clusterToken: string): BidiStream<Out> {
  const method = service.methods.find((m) => m.localName === localName);
  if (!method) throw new Error(`no method ${localName} on ${service.typeName}`);
  const input = fastCodec(method.input);
  const output = fastCodec(method.output);
  return channel.openStream<Out, In>(
    { path: `/${service.typeName}/${method.name}`, encodeFramed: input.encodeFramed as (m: Out) => Buffer, decode: output.decode as (b: Uint8Array) => In },
    clusterToken,
  );
}

/** Whether a stream's error is the CP refusing our cluster token. */
export function isUnauthenticated(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === grpcStatus.UNAUTHENTICATED;
}

/** PEM certificate chain and key a server presents (null = plain TCP). */
export interface ServerTls {
  certPem: Buffer;
  keyPem: Buffer;
}

export function bindServer(host: string, port: number, server: grpc.Server, tls: ServerTls | null = null): Promise<number> {
  const creds = tls
    ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: tls.certPem, private_key: tls.keyPem }], false)
    : grpc.ServerCredentials.createInsecure();
  return new Promise((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, creds, (err, bound) => {
      if (err) reject(err);
      else resolve(bound);
    });
  });
}

/**
 * How long a link's deferrable messages (drains, deletions) wait for others to share a write:
 * at 500 cold starts/s each message otherwise wakes its peer alone, and waking is the largest
 * single cost on a VM (BENCHMARKS, "Sandbox reads into one reused buffer").
 */
export const deferrableFlushMs = 5;

/**
 * Coalesces items produced within one event-loop turn into one batch, so a burst of events
 * costs one stream frame. `flush` runs on setImmediate (after pending I/O callbacks), or after
 * `deferMs` when only deferrable items wait.
 */
export class Batcher<T> {
  private items: T[] = [];
  private immediate = false;
  private timer: NodeJS.Timeout | null = null;

  /** `deferMs`: how long a batch of only deferrable items waits for company (0: it does not). */
  constructor(private readonly flush: (items: T[]) => void, private readonly deferMs = 0) {}

  /**
   * Queues `item`; everything queued leaves together at the end of this turn. A `deferrable`
   * item (no request waits on it: a drain, a deletion) alone waits up to `deferMs`, so
   * that the messages of many cold starts at a low rate share one write and one wake-up of the
   * peer; an urgent item queued meanwhile takes it along at the end of its turn, in order.
   */
  push(item: T, deferrable = false): void {
    this.items.push(item);
    if (this.immediate) return;
    if (deferrable && this.deferMs > 0) {
      this.timer ??= setTimeout(this.run, this.deferMs);
      return;
    }
    this.immediate = true;
    setImmediate(this.run);
  }

  private readonly run = (): void => {
    this.immediate = false;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const items = this.items;
    if (items.length === 0) return;
    this.items = [];
    this.flush(items);
  };
}

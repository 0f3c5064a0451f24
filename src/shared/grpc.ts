/**
 * @module shared/grpc
 * Binds protobuf-es generated service descriptors to @grpc/grpc-js, so the wire schema lives
 * only in `proto/` and the generated code. Every internal link is one bidirectional stream.
 */
import * as grpc from '@grpc/grpc-js';
import type { DescMessage } from '@bufbuild/protobuf';
import type { GenService } from '@bufbuild/protobuf/codegenv2';
import { fastCodec } from '../wire/fast-codec.js';

type AnyService = GenService<Record<string, { methodKind: 'bidi_streaming'; input: DescMessage; output: DescMessage }>>;

/** Channel options shared by both ends: generous stream limits, fast liveness detection. */
const channelOptions: grpc.ChannelOptions = {
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_time_between_pings_ms': 5_000,
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
  // grpc-js's own reconnect back-off (1 s, x1.6, up to 120 s) would keep a channel refusing
  // for seconds after a restarted CP listens again; the callers' back-off paces retries.
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 500,
};

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

export type BidiStream<Out, In> = grpc.ClientDuplexStream<Out, In>;

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

/** A typed client whose methods open bidi streams; TLS when a CA is given. */
export function makeClient(service: AnyService, address: string, caPem: Buffer | null): grpc.Client {
  const Ctor = grpc.makeGenericClientConstructor(serviceDefinition(service), service.typeName);
  const creds = caPem ? grpc.credentials.createSsl(caPem) : grpc.credentials.createInsecure();
  return new Ctor(address, creds, channelOptions);
}

/** Opens a bidi stream whose call metadata carries `authorization: Bearer <clusterToken>`. */
export function openStream<Out, In>(client: grpc.Client, service: AnyService, localName: string, clusterToken: string): BidiStream<Out, In> {
  const method = service.methods.find((m) => m.localName === localName);
  if (!method) throw new Error(`no method ${localName} on ${service.typeName}`);
  const def = serviceDefinition(service)[localName]!;
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${clusterToken}`);
  return client.makeBidiStreamRequest(
    def.path,
    def.requestSerialize as (v: Out) => Buffer,
    def.responseDeserialize as (b: Buffer) => In,
    metadata,
  ) as BidiStream<Out, In>;
}

/** Whether a stream's error is the CP refusing our cluster token. */
export function isUnauthenticated(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === grpc.status.UNAUTHENTICATED;
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
 * Coalesces items produced within one event-loop turn into one batch, so a burst of events
 * costs one stream frame. `flush` runs on setImmediate (after pending I/O callbacks).
 */
export class Batcher<T> {
  private items: T[] = [];
  private scheduled = false;
  constructor(private readonly flush: (items: T[]) => void) {}

  push(item: T): void {
    this.items.push(item);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }

  private run = (): void => {
    this.scheduled = false;
    const items = this.items;
    if (items.length === 0) return;
    this.items = [];
    this.flush(items);
  };
}

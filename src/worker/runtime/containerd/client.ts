/**
 * @module worker/runtime/containerd/client
 * A small gRPC client for containerd's API over its Unix socket: unary, server-streaming and
 * bidi calls bound to the generated descriptors in src/gen/containerd (the wire schema lives in
 * proto/containerd only). Every call carries the `containerd-namespace` header, and the
 * `containerd-lease` header when the caller holds a lease (so GC keeps what it creates).
 */
import * as grpc from '@grpc/grpc-js';
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethod,
  type MessageInitShape,
  type MessageShape,
} from '@bufbuild/protobuf';

/** One containerd call that takes longer than this is stuck (image layers are applied in one call). */
export const containerdCallTimeoutMs = 120_000;
/** containerd messages are small except content chunks, which we bound ourselves. */
const messageBytesMax = 16 * 1024 * 1024;

/** A generated method descriptor with typed input and output. */
export type TypedMethod<I extends DescMessage, O extends DescMessage> = DescMethod & { input: I; output: O };

export interface CallOptions {
  /** Lease id: what the call creates is kept by that lease until it is deleted. */
  lease?: string;
  timeoutMs?: number;
}

export class ContainerdClient {
  private readonly client: grpc.Client;

  constructor(
    readonly socketPath: string,
    readonly namespace: string,
  ) {
    this.client = new grpc.Client(`unix://${socketPath}`, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': messageBytesMax,
      'grpc.max_send_message_length': messageBytesMax,
      'grpc.initial_reconnect_backoff_ms': 50,
      'grpc.max_reconnect_backoff_ms': 500,
    });
  }

  /** Resolves once the socket accepts a connection, or rejects after `timeoutMs`. */
  waitReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve()));
    });
  }

  unary<I extends DescMessage, O extends DescMessage>(
    method: TypedMethod<I, O>,
    request: MessageInitShape<I>,
    opts: CallOptions = {},
  ): Promise<MessageShape<O>> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        methodPath(method),
        (m: MessageInitShape<I>) => Buffer.from(toBinary(method.input, create(method.input, m))),
        (b: Buffer) => fromBinary(method.output, b),
        request,
        this.metadata(opts.lease),
        { deadline: Date.now() + (opts.timeoutMs ?? containerdCallTimeoutMs) },
        (err, value) => (err || value === undefined ? reject(err ?? new Error('empty answer')) : resolve(value)),
      );
    });
  }

  /** A server stream without deadline (event subscriptions live as long as the runtime). */
  serverStream<I extends DescMessage, O extends DescMessage>(
    method: TypedMethod<I, O>,
    request: MessageInitShape<I>,
  ): grpc.ClientReadableStream<MessageShape<O>> {
    return this.client.makeServerStreamRequest(
      methodPath(method),
      (m: MessageInitShape<I>) => Buffer.from(toBinary(method.input, create(method.input, m))),
      (b: Buffer) => fromBinary(method.output, b),
      request,
      this.metadata(undefined),
      {},
    );
  }

  bidi<I extends DescMessage, O extends DescMessage>(
    method: TypedMethod<I, O>,
    opts: CallOptions = {},
  ): grpc.ClientDuplexStream<MessageInitShape<I>, MessageShape<O>> {
    return this.client.makeBidiStreamRequest(
      methodPath(method),
      (m: MessageInitShape<I>) => Buffer.from(toBinary(method.input, create(method.input, m))),
      (b: Buffer) => fromBinary(method.output, b),
      this.metadata(opts.lease),
      { deadline: Date.now() + (opts.timeoutMs ?? containerdCallTimeoutMs) },
    );
  }

  close(): void {
    this.client.close();
  }

  private metadata(lease: string | undefined): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set('containerd-namespace', this.namespace);
    if (lease !== undefined) md.set('containerd-lease', lease);
    return md;
  }
}

function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

export function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

export const isNotFound = (err: unknown): boolean => grpcCode(err) === grpc.status.NOT_FOUND;
export const isAlreadyExists = (err: unknown): boolean => grpcCode(err) === grpc.status.ALREADY_EXISTS;

/** containerd's error text without grpc-js's "13 INTERNAL: " prefix. */
export function errorText(err: unknown): string {
  const e = err as { details?: unknown; message?: unknown } | null;
  if (typeof e?.details === 'string' && e.details !== '') return e.details;
  return typeof e?.message === 'string' ? e.message : String(err);
}

/** Runs a call whose NOT_FOUND means "already gone" (teardown steps). */
export async function ignoreNotFound(call: Promise<unknown>): Promise<void> {
  try {
    await call;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

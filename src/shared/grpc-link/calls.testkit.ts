/**
 * @module shared/grpc-link/calls.testkit
 * How a client call ended, for the grpc-link tests: its one ending ('end' for OK, or the
 * CallError), which 'close' must follow exactly once.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { BidiStream, CallError } from './channel.js';

export type Ending = { ok: true } | { ok: false; err: CallError };

/** Resolves with the call's ending once it has closed; rejects on a second ending or a close before one. */
export function ending(s: BidiStream<Buffer>): Promise<Ending> {
  return new Promise((resolve, reject) => {
    let outcome: Ending | null = null;
    s.on('end', () => { if (outcome) reject(new Error('a second ending')); outcome = { ok: true }; });
    s.on('error', (err: CallError) => { if (outcome) reject(new Error('a second ending')); outcome = { ok: false, err }; });
    s.on('close', () => (outcome ? resolve(outcome) : reject(new Error('close before an ending'))));
  });
}

/** The CallError a call ended with; the test fails if it ended OK. */
export async function failure(end: Promise<Ending>): Promise<CallError> {
  const r = await end;
  assert.ok(!r.ok, 'the call must not end OK');
  return r.err;
}

/** A TCP relay on 127.0.0.1 to `port` that can stop moving bytes either way, as a network partition does. */
export interface PartitionRelay {
  port: number;
  partition(): void;
  close(): void;
}

export async function partitionRelay(port: number): Promise<PartitionRelay> {
  const sockets: net.Socket[] = [];
  let partitioned = false;
  const relay = net.createServer((down) => {
    const up = net.connect(port, '127.0.0.1');
    sockets.push(down, up);
    down.on('data', (b) => { if (!partitioned) up.write(b); });
    up.on('data', (b) => { if (!partitioned) down.write(b); });
    down.on('error', () => undefined);
    up.on('error', () => undefined);
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  return {
    port: (relay.address() as net.AddressInfo).port,
    partition: () => { partitioned = true; },
    close: () => {
      for (const sock of sockets) sock.destroy();
      relay.close();
    },
  };
}

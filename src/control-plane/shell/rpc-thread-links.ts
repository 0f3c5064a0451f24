/**
 * @module control-plane/shell/rpc-thread-links
 * `RpcLinks` served on a worker thread (`rpcThread: 'thread'`, see rpc-thread). What the loop
 * sends in one turn crosses to the thread in one message with the leader's term; the events the
 * thread decoded come back batched per its turn and are fed to the core in order. Who leads is
 * polled while this CP stands by (a standby redirects streams to the leader) and posted when it
 * changes; once this CP leads, the poll stops (it leads until its process exits).
 *
 * A thread that dies or exits takes every stream with it: that is logged (`rpc.thread_failed`)
 * and thrown, so the CP exits and its supervisor restarts it, as for any fault it cannot mend.
 */
import { Worker } from 'node:worker_threads';
import type { RoutingUpdate, WorkerCommand } from '../../gen/dirigent/v1/cluster_pb.js';
import type { ServerTls } from '../../shared/grpc-link/server.js';
import type { Logger } from '../../shared/logger.js';
import type { CpEvent } from '../core/types.js';
import type { RpcLinks } from './rpc-links.js';
import type { RpcHooks } from './rpc-server.js';
import { rpcEventsPendingMax, type FromRpcThread, type RpcOut, type RpcThreadInit, type ToRpcThread } from './rpc-thread-protocol.js';

/** How often a standby looks up the leader for the thread's redirects (the election polls at 200 ms). */
const standbyPollMs = 50;

export class RpcThreadLinks implements RpcLinks {
  private readonly thread: Worker;
  private out: RpcOut[] = [];
  private standbyLeader: string | null;
  private readonly standbyTimer: NodeJS.Timeout | null = null;
  private listening: { resolve: (port: number) => void; reject: (err: Error) => void } | null = null;
  private closing: Promise<void> | null = null;
  private resolveClosed: () => void = () => {};
  /** Events the thread posted and this loop has not handled yet (see `RpcThreadInit.pending`). */
  private readonly pending = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));

  /** `eventsPendingMax`: see `RpcThreadInit` (tests set a small one). */
  constructor(private readonly hooks: RpcHooks, private readonly log: Logger, eventsPendingMax = rpcEventsPendingMax) {
    this.standbyLeader = hooks.standbyLeader?.() ?? null;
    const init: RpcThreadInit = {
      clusterTokenSha256Hex: hooks.clusterTokenSha256Hex,
      pingLimits: hooks.pingLimits ?? null,
      standbyLeader: this.standbyLeader,
      debugLogs: log.isDebugEnabled(),
      pending: this.pending.buffer as SharedArrayBuffer,
      eventsPendingMax,
    };
    this.thread = new Worker(new URL('./rpc-thread.js', import.meta.url), { workerData: init });
    this.thread.on('message', (m: FromRpcThread) => this.onMessage(m));
    this.thread.on('error', (err) => {
      this.log.error('rpc.thread_failed', { error: String(err), stack: err.stack });
      throw err;
    });
    this.thread.on('exit', (code) => {
      if (this.closing) return this.resolveClosed();
      this.log.error('rpc.thread_failed', { error: `the stream thread exited (code ${code})` });
      throw new Error(`the CP's stream thread exited (code ${code})`);
    });
    if (this.standbyLeader !== null) this.standbyTimer = setInterval(() => this.pollStandby(), standbyPollMs);
  }

  listen(host: string, port: number, tls: ServerTls | null): Promise<number> {
    this.pollStandby(); // the thread knows who leads before any stream can arrive
    return new Promise((resolve, reject) => {
      this.listening = { resolve, reject };
      this.post({ kind: 'listen', host, port, tls });
    });
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    if (this.standbyTimer) clearInterval(this.standbyTimer);
    this.closing = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    this.post({ kind: 'close' });
    return this.closing;
  }

  sendWorker(workerId: string, command: WorkerCommand, deferrable = false): void {
    this.queue({ to: 'worker', id: workerId, command, deferrable });
  }

  sendDataPlane(dataPlaneId: string, update: RoutingUpdate, deferrable = false): void {
    this.queue({ to: 'data_plane', id: dataPlaneId, update, deferrable });
  }

  broadcastDataPlanes(update: RoutingUpdate, deferrable = false): void {
    this.queue({ to: 'data_planes', update, deferrable });
  }

  /** What this turn sends leaves together at its end, with the term it was sent under. */
  private queue(item: RpcOut): void {
    if (this.out.length === 0) setImmediate(this.flush);
    this.out.push(item);
  }

  private readonly flush = (): void => {
    const items = this.out;
    this.out = [];
    if (this.closing === null) this.post({ kind: 'send', term: this.hooks.core.term, items });
  };

  private post(m: ToRpcThread): void {
    this.thread.postMessage(m);
  }

  private pollStandby(): void {
    const leader = this.hooks.standbyLeader?.() ?? null;
    if (leader === this.standbyLeader) return;
    this.standbyLeader = leader;
    this.post({ kind: 'standby_leader', leader });
    if (leader === null && this.standbyTimer) clearInterval(this.standbyTimer);
  }

  private onMessage(m: FromRpcThread): void {
    switch (m.kind) {
      case 'events':
        return this.handle(m.events);
      case 'log':
        return this.log[m.level](m.event, m.fields);
      case 'listening':
        this.listening?.resolve(m.port);
        this.listening = null;
        return;
      case 'listen_failed': {
        const err = Object.assign(new Error(m.message), { code: m.code });
        this.listening?.reject(err);
        this.listening = null;
        return;
      }
      case 'closed':
        // Its streams are ended; a timer still pending there (a deferred batch) must not keep it.
        void this.thread.terminate();
        return;
    }
  }

  private handle(events: CpEvent[]): void {
    for (const e of events) this.hooks.handle(e);
    Atomics.sub(this.pending, 0, events.length);
  }
}

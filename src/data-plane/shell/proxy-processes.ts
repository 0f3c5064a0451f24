/**
 * @module data-plane/shell/proxy-processes
 * The primary's side of `--proxy-threads N` (see core/proxy-link): forks N-1 proxy processes,
 * hands each the invocation listener, keeps their routing replicas current, moves their
 * admission messages to and from the core (one IPC message per process per event-loop turn),
 * and brings a process that died back after a backoff, once its requests are settled.
 *
 * Processes, not worker threads: Node cannot hand a listening socket to a worker thread, and
 * Node 20 has no SO_REUSEPORT; a forked process gets its own descriptor of the same socket.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { RoutingUpdateMsg } from '../../api/cluster.js';
import type { DataPlaneConfig } from '../../config/compile.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import type { DataPlaneCore, DpEffect, DpFunction } from '../core/data-plane.js';
import { parseToPrimary, type HubWaiter, type ProxyHub, type ToProxy } from '../core/proxy-link.js';
import type { ProxyProcessInit } from '../proxy-process.js';
import { guarded } from '../../shared/guard.js';

/** A proxy process that died comes back after this, doubled per quick death up to the max. */
const respawnBackoffMsMin = 100;
const respawnBackoffMsMax = 5_000;
/** A process that lived this long resets the backoff. */
const respawnStableMs = 10_000;
/** How long `close` waits for a process to exit before SIGKILL. */
const exitWaitMs = 2_000;
/** Malformed messages logged per process (then counted silently). */
const malformedLogsMax = 10;

/** Only the profiling and heap flags of the primary pass to its proxy processes. */
const inheritedFlags = /^--(cpu-prof|heap-prof|max-old-space-size|max-semi-space-size)/;

interface Slot {
  index: number;
  child: ChildProcess | null;
  outbox: ToProxy[];
  /** It said it listens for messages: it has been sent its settings and the socket. */
  ready: boolean;
  startedAtMs: number;
  backoffMs: number;
  malformed: number;
  timer: NodeJS.Timeout | null;
}

export interface ProxyProcessesDeps {
  /** Proxy processes besides the primary. */
  count: number;
  cfg: DataPlaneConfig;
  listener: Server;
  delegateAddress: string;
  core: DataPlaneCore;
  hub: ProxyHub;
  run: (effects: DpEffect[]) => void;
  clock: Clock;
  log: Logger;
}

/** IPC traffic since start: messages and the batches (one write or read each) carrying them. */
export interface IpcCounts {
  batchesOut: number;
  messagesOut: number;
  batchesIn: number;
  messagesIn: number;
}

export class ProxyProcesses {
  readonly ipc: IpcCounts = { batchesOut: 0, messagesOut: 0, batchesIn: 0, messagesIn: 0 };
  private readonly slots: Slot[] = [];
  private closing = false;
  private readonly connectionsMax: number;

  constructor(private readonly d: ProxyProcessesDeps) {
    // The connection limit is the DP's: each of the N processes accepts its share.
    this.connectionsMax = Math.ceil(d.cfg.invocationConnectionsMax / (d.count + 1));
    d.listener.maxConnections = this.connectionsMax;
    for (let i = 1; i <= d.count; i++) {
      this.slots.push({ index: i, child: null, outbox: [], ready: false, startedAtMs: 0, backoffMs: respawnBackoffMsMin, malformed: 0, timer: null });
    }
  }

  start(): void {
    for (const slot of this.slots) this.spawn(slot);
  }

  /** Processes running now (for metrics and tests). */
  get pids(): number[] {
    return this.slots.flatMap((s) => (s.ready && s.child?.pid !== undefined && s.child.exitCode === null ? [s.child.pid] : []));
  }

  /** A routing update the core applied: every replica applies it too, in the same order. */
  routing(term: number, update: RoutingUpdateMsg): void {
    for (const slot of this.slots) if (slot.ready) this.post(slot, ['routing', term, update]);
  }

  /** The effect runner's part: a proxy process's request was dispatched or failed by the core. */
  dispatched(w: HubWaiter): void {
    const slot = this.slots[w.proxy - 1];
    if (slot?.child) this.post(slot, this.d.hub.dispatchMessage(w));
  }

  /** Functions that queued a request: every proxy process gives back its idle held slots of them. */
  recall(queued: readonly DpFunction[]): void {
    const messages = this.d.hub.recalls(queued, this.d.clock.nowMs());
    if (messages.length === 0) return;
    for (const slot of this.slots) if (slot.ready) for (const m of messages) this.post(slot, m);
  }

  failed(w: HubWaiter, status: number, code: string, message: string): void {
    const m = this.d.hub.failMessage(w, status, code, message);
    const slot = this.slots[w.proxy - 1];
    if (slot?.child) this.post(slot, m);
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map(async (slot) => {
      if (slot.timer) clearTimeout(slot.timer);
      const child = slot.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.disconnect(); // it exits when its channel closes
      const killTimer = setTimeout(() => child.kill('SIGKILL'), exitWaitMs);
      await exited;
      clearTimeout(killTimer);
    }));
  }

  private spawn(slot: Slot): void {
    slot.timer = null;
    if (this.closing) return;
    const { log } = this.d;
    const child = fork(fileURLToPath(new URL('../proxy-process.js', import.meta.url)), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: process.execArgv.filter((a) => inheritedFlags.test(a)),
    });
    slot.child = child;
    slot.ready = false;
    slot.outbox = [];
    slot.startedAtMs = this.d.clock.nowMs();
    child.on('message', guarded(log, 'callback', 'proxy_processes.message', (batch: unknown) => this.received(slot, child, batch)));
    child.on('error', (err) => log.warn('proxy_process.error', { index: slot.index, error: err.message }));
    child.once('exit', guarded(log, 'callback', 'proxy_processes.exit', (code: number | null, signal: string | null) => this.exited(slot, child, code, signal)));
    log.info('proxy_process.forked', { index: slot.index, pid: child.pid });
  }

  /** It listens for messages now: its settings, the socket, then the routing table. */
  private handshake(slot: Slot, child: ChildProcess): void {
    slot.ready = true;
    const init: ProxyProcessInit = { init: { cfg: this.d.cfg, index: slot.index, delegateAddress: this.d.delegateAddress, connectionsMax: this.connectionsMax } };
    child.send(init, undefined, {}, () => {});
    child.send({ listen: true }, this.d.listener, {}, () => {});
    if (this.d.core.synced) this.post(slot, ['routing', this.d.core.term, { case: 'snapshot', value: this.d.core.routingSnapshot() }]);
  }

  private received(slot: Slot, child: ChildProcess, batch: unknown): void {
    if (slot.child !== child) return;
    if (!slot.ready && (batch as { ready?: unknown } | null)?.ready === true) return this.handshake(slot, child);
    if (!slot.ready || !Array.isArray(batch)) return this.malformed(slot, batch);
    const nowMs = this.d.clock.nowMs();
    this.ipc.batchesIn += 1;
    this.ipc.messagesIn += batch.length;
    for (const raw of batch) {
      const m = parseToPrimary(raw);
      if (!m) {
        this.malformed(slot, raw);
        continue;
      }
      if (m[0] === 'resync') {
        this.post(slot, ['routing', this.d.core.term, { case: 'snapshot', value: this.d.core.routingSnapshot() }]);
        continue;
      }
      const r = this.d.hub.handle(slot.index, m, nowMs);
      for (const reply of r.reply) this.post(slot, reply);
      this.d.run(r.effects);
    }
  }

  private malformed(slot: Slot, raw: unknown): void {
    slot.malformed += 1;
    if (slot.malformed <= malformedLogsMax) this.d.log.warn('proxy_process.malformed_message', { index: slot.index, message: JSON.stringify(raw)?.slice(0, 200) });
  }

  private exited(slot: Slot, child: ChildProcess, code: number | null, signal: string | null): void {
    if (slot.child !== child) return;
    slot.child = null;
    slot.ready = false;
    slot.outbox = [];
    const nowMs = this.d.clock.nowMs();
    // Its clients' connections closed with it: its requests end here too, queued or running.
    this.d.run(this.d.hub.lost(slot.index, nowMs));
    if (this.closing) return;
    slot.backoffMs = nowMs - slot.startedAtMs >= respawnStableMs ? respawnBackoffMsMin : Math.min(respawnBackoffMsMax, slot.backoffMs * 2);
    this.d.log.warn('proxy_process.exited', { index: slot.index, pid: child.pid, code, signal, respawnInMs: slot.backoffMs });
    slot.timer = setTimeout(guarded(this.d.log, 'timer', 'proxy_process_respawn', () => this.spawn(slot)), slot.backoffMs);
  }

  private post(slot: Slot, m: ToProxy): void {
    if (slot.outbox.length === 0) setImmediate(() => this.flush(slot));
    slot.outbox.push(m);
  }

  private flush(slot: Slot): void {
    const batch = slot.outbox;
    slot.outbox = [];
    const child = slot.child;
    // A failed send means the process is going: its 'exit' settles its requests.
    if (batch.length === 0 || !child?.connected) return;
    this.ipc.batchesOut += 1;
    this.ipc.messagesOut += batch.length;
    child.send(batch, undefined, {}, () => {});
  }
}

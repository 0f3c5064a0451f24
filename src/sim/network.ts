/**
 * @module sim/network
 * A fake network between the control plane and each peer (worker or data plane).
 *
 * Fault model — connection level, not message level. The real transport is one gRPC stream
 * per peer: reliable and ordered while it lives. A stream never duplicates or reorders, and it
 * never loses one message while delivering the next. What really happens is that a stream
 * breaks: everything in flight both ways is lost, the CP sees the stream close (the
 * rpc-server's `closed()` → `worker_disconnected`/`dp_disconnected`) and the peer reconnects
 * after a back-off with a new hello. So:
 *  - drop: a message lost on send breaks the connection (it and all in-flight messages vanish);
 *  - delay: per-message extra delay, but delivery stays FIFO per direction (like TCP);
 *  - partition (link down): nothing is delivered; held messages arrive if the link comes back
 *    before the keep-alive timeout, otherwise the connection breaks; reconnects fail while down;
 *  - duplication/reorder exist only across connections: after a reconnect the peer re-reports
 *    state (the worker's hello lists its sandboxes, the DP gets a snapshot) that the CP or DP
 *    may already hold, and nothing from a dead connection is ever delivered after it.
 * Message-level duplicate/reorder would test a transport we do not have; the invariants in
 * `checkers.ts` are the ones a correct system must keep under broken streams.
 */
import { assert } from '../shared/assert.js';
import type { Rng } from '../shared/rng.js';
import type { TimerQueue } from './clock.js';

export interface LinkFaults {
  /** Base one-way delay range, ms. */
  delayMs: readonly [number, number];
  /** Probability that a message gets extra delay, and its range. */
  slowRate: number;
  slowMs: readonly [number, number];
  /** Probability that sending a message loses it, which breaks the stream. */
  dropRate: number;
  /** A partitioned stream breaks after this long without traffic (gRPC keep-alive). */
  keepaliveTimeoutMs: number;
  /** Peer reconnect back-off, doubling from min to max (the shells' reconnectBackoffMs). */
  backoffMs: readonly [number, number];
}

interface InFlight<M> {
  atMs: number;
  msg: M;
}

export class Link<Up, Down> {
  connected = false;
  down = false;
  /** Set by the owner: a dead peer (crashed worker) does not reconnect. */
  peerAlive = true;
  epoch = 0;
  breakAtMs = Infinity;
  backoffMs: number;
  reconnectPending = false;
  readonly toCp: InFlight<Up>[] = [];
  readonly toPeer: InFlight<Down>[] = [];
  lastToCpMs = 0;
  lastToPeerMs = 0;

  constructor(readonly peerId: string, backoffMinMs: number) {
    this.backoffMs = backoffMinMs;
  }
}

export interface NetworkHandlers<Up, Down> {
  /** The CP side received a message. */
  onCp(link: Link<Up, Down>, msg: Up, nowMs: number): void;
  /** The peer received a message. */
  onPeer(link: Link<Up, Down>, msg: Down, nowMs: number): void;
  /** A stream broke; `cpSees` is false when the CP itself died (nobody is left to notice). */
  onBroken(link: Link<Up, Down>, cpSees: boolean, nowMs: number): void;
  /** A new stream is up: the peer sends its hello. */
  onConnected(link: Link<Up, Down>, nowMs: number): void;
}

/** Per-direction queues are bounded: a stream that never drains is a bug in the sim. */
const inFlightMax = 100_000;

export class Network<Up, Down> {
  readonly links = new Map<string, Link<Up, Down>>();
  lost = 0;
  breaks = 0;

  constructor(
    private readonly faults: LinkFaults,
    private readonly rng: Rng,
    private readonly timers: TimerQueue,
    private readonly handlers: NetworkHandlers<Up, Down>,
  ) {}

  /** Faults can be switched off for the quiet phase without rebuilding the network. */
  quiet = false;
  /** The CP is down: connection attempts are refused, as by a closed port. */
  refuse = false;

  add(peerId: string): Link<Up, Down> {
    assert(!this.links.has(peerId), `duplicate link ${peerId}`);
    const link = new Link<Up, Down>(peerId, this.faults.backoffMs[0]);
    this.links.set(peerId, link);
    return link;
  }

  connect(link: Link<Up, Down>, nowMs: number): void {
    assert(!link.connected, `link ${link.peerId} already connected`);
    link.connected = true;
    link.epoch += 1;
    link.lastToCpMs = nowMs;
    link.lastToPeerMs = nowMs;
    this.handlers.onConnected(link, nowMs);
  }

  sendToCp(link: Link<Up, Down>, msg: Up, nowMs: number): void {
    if (!this.admitSend(link, nowMs)) return;
    link.lastToCpMs = Math.max(link.lastToCpMs, nowMs + this.delayMs());
    assert(link.toCp.length < inFlightMax, 'to-CP queue overflow');
    link.toCp.push({ atMs: link.lastToCpMs, msg });
  }

  sendToPeer(link: Link<Up, Down>, msg: Down, nowMs: number): void {
    if (!this.admitSend(link, nowMs)) return;
    link.lastToPeerMs = Math.max(link.lastToPeerMs, nowMs + this.delayMs());
    assert(link.toPeer.length < inFlightMax, 'to-peer queue overflow');
    link.toPeer.push({ atMs: link.lastToPeerMs, msg });
  }

  /** False when the message is lost: no stream, or a drop that breaks the stream. */
  private admitSend(link: Link<Up, Down>, nowMs: number): boolean {
    if (!link.connected) {
      this.lost += 1;
      return false;
    }
    if (!this.quiet && this.faults.dropRate > 0 && this.rng.next() < this.faults.dropRate) {
      this.lost += 1;
      this.breakLink(link, true, nowMs);
      return false;
    }
    return true;
  }

  private delayMs(): number {
    const [lo, hi] = this.faults.delayMs;
    let d = lo + this.rng.next() * (hi - lo);
    if (!this.quiet && this.rng.next() < this.faults.slowRate) {
      const [slowLo, slowHi] = this.faults.slowMs;
      d += slowLo + this.rng.next() * (slowHi - slowLo);
    }
    return d;
  }

  /** Delivers every message due by nowMs, link by link in creation order (deterministic). */
  deliver(nowMs: number): void {
    for (const link of this.links.values()) {
      if (!link.connected) continue;
      if (link.down) {
        if (nowMs >= link.breakAtMs) this.breakLink(link, true, nowMs);
        continue;
      }
      this.deliverLink(link, nowMs);
    }
  }

  private deliverLink(link: Link<Up, Down>, nowMs: number): void {
    const epoch = link.epoch;
    // A handler may break this very link (or restart the CP): stop at once if it did.
    while (link.epoch === epoch && link.toCp.length > 0 && link.toCp[0]!.atMs <= nowMs) {
      this.handlers.onCp(link, link.toCp.shift()!.msg, nowMs);
    }
    while (link.epoch === epoch && link.toPeer.length > 0 && link.toPeer[0]!.atMs <= nowMs) {
      link.backoffMs = this.faults.backoffMs[0]; // data received: the peer resets its back-off
      this.handlers.onPeer(link, link.toPeer.shift()!.msg, nowMs);
    }
  }

  /** The stream dies: in-flight messages are lost and the peer starts reconnecting. */
  breakLink(link: Link<Up, Down>, cpSees: boolean, nowMs: number): void {
    if (!link.connected) return;
    link.connected = false;
    link.epoch += 1;
    link.breakAtMs = link.down ? link.breakAtMs : Infinity;
    this.lost += link.toCp.length + link.toPeer.length;
    link.toCp.length = 0;
    link.toPeer.length = 0;
    this.breaks += 1;
    this.handlers.onBroken(link, cpSees, nowMs);
    this.scheduleReconnect(link, nowMs);
  }

  scheduleReconnect(link: Link<Up, Down>, nowMs: number): void {
    if (link.reconnectPending || !link.peerAlive || link.connected) return;
    link.reconnectPending = true;
    const wait = link.backoffMs;
    link.backoffMs = Math.min(this.faults.backoffMs[1], link.backoffMs * 2);
    this.timers.at(nowMs + wait, (atMs) => {
      link.reconnectPending = false;
      if (!link.peerAlive || link.connected) return;
      if (link.down || this.refuse) this.scheduleReconnect(link, atMs); // refused: retry later
      else this.connect(link, atMs);
    });
  }

  /** Partition: hold traffic; the stream breaks if it stays down past the keep-alive timeout. */
  setDown(link: Link<Up, Down>, down: boolean, nowMs: number): void {
    link.down = down;
    link.breakAtMs = down ? nowMs + this.faults.keepaliveTimeoutMs : Infinity;
    if (!down && !link.connected) this.scheduleReconnect(link, nowMs);
  }
}

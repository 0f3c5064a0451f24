/**
 * @module worker/core/outbox
 * The worker's outgoing events. While the stream to the CP is up, events wait here only until the
 * shell flushes them (once per event-loop turn: one batch per turn). While it is down they are
 * kept for replay after the next hello, with a bound:
 *  - `ready` and `heartbeat` events are not kept: the hello lists every running sandbox (the truth
 *    for ready/running) and carries capacity, so replaying them would only repeat it or, for a
 *    sandbox that is gone since, announce a sandbox that no longer exists;
 *  - `failed` and `deleted` events are kept in order, at most `replayEventsMax`; past it the
 *    oldest is dropped and counted. A dropped event loses nothing the CP needs: on a reconnect the
 *    CP forgets what it attributed to the worker and rebuilds it from the hello's list, so a
 *    sandbox whose crash report was dropped is simply not in it.
 */
import type { WorkerEventMsg } from '../../api/cluster.js';

export class Outbox {
  // A plain array: it is flushed every turn, and shift() happens only past the bound while down.
  private queue: WorkerEventMsg[] = [];
  /** Events dropped past the bound since the last reconnect. */
  droppedCount = 0;

  constructor(private readonly replayEventsMax: number) {}

  get size(): number {
    return this.queue.length;
  }

  /** Queues an event; `connected` says whether it may wait only for the next flush. */
  push(event: WorkerEventMsg, connected: boolean): void {
    if (connected) {
      this.queue.push(event);
      return;
    }
    if (event.case === 'ready' || event.case === 'heartbeat') return; // the hello carries it
    if (this.queue.length >= this.replayEventsMax) {
      this.queue.shift();
      this.droppedCount += 1;
    }
    this.queue.push(event);
  }

  /**
   * The stream broke: what was waiting for a flush is now replay material, so it follows the
   * same rule as events produced while down.
   */
  onDisconnected(): void {
    const pending = this.take();
    for (const e of pending) this.push(e, false);
  }

  /** Everything queued, in order; the outbox is empty afterwards. */
  take(): WorkerEventMsg[] {
    const out = this.queue;
    this.queue = [];
    return out;
  }

  resetDropped(): number {
    const n = this.droppedCount;
    this.droppedCount = 0;
    return n;
  }
}

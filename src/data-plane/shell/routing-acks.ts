/**
 * @module data-plane/shell/routing-acks
 * Sends the acks of applied routing versions. An update the CP may be waiting on
 * (`needsPromptAck`) is acked in the same event-loop turn; a delta that only moves endpoints arms
 * one ack `deferMs` later, which carries every version applied meanwhile. At a moderate rate of
 * cold starts each sandbox used to cost the DP and the CP one ack message of its own.
 *
 * An ack armed on one stream is dropped if the link reconnected before it fired: versions of
 * another leader are not comparable, and the new stream's snapshot is acked at once anyway.
 */
import type { RoutingUpdateMsg } from '../../api/cluster.js';
import { needsPromptAck } from '../core/routing-acks.js';

export interface RoutingAckIo {
  /** Queue an ack of `version` on the current stream (the link coalesces per turn). */
  send(version: number): void;
  /** The version the DP has applied now. */
  version(): number;
  /** Changes whenever the link opens a new stream. */
  generation(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(timer: unknown): void;
}

export class RoutingAcks {
  private timer: unknown = null;

  constructor(private readonly io: RoutingAckIo, private readonly deferMs: number) {}

  /** `update` was applied (the core's version is now the one to acknowledge). */
  applied(update: RoutingUpdateMsg): void {
    if (needsPromptAck(update)) {
      this.disarm(); // the prompt ack carries the endpoint versions before it too
      this.io.send(this.io.version());
      return;
    }
    if (this.timer !== null) return;
    const generation = this.io.generation();
    this.timer = this.io.setTimer(() => {
      this.timer = null;
      if (this.io.generation() === generation) this.io.send(this.io.version());
    }, this.deferMs);
  }

  close(): void {
    this.disarm();
  }

  private disarm(): void {
    if (this.timer === null) return;
    this.io.clearTimer(this.timer);
    this.timer = null;
  }
}

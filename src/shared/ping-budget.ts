/**
 * @module shared/ping-budget
 * How many HTTP/2 pings a server answers from one peer: a token bucket of `burstMax` pings that
 * refills one ping per `refillMs`. Answering a ping costs the server a frame and a write; without
 * a bound, any peer that can open a TCP connection (no token is needed for that) keeps a loop
 * busy answering tens of thousands of them a second (here one core ran a client and a server
 * through 20,000 pings a second). gRPC servers bound them too ("ping strikes") and end such a
 * connection with GOAWAY ENHANCE_YOUR_CALM "too_many_pings"; keepalive pings from well-behaved
 * clients (every 10 s or slower) never come near the bound. `guardPings` applies it to an HTTP/2 session.
 * The budget is pure: time comes in as an argument.
 */
import http2 from 'node:http2';

export interface PingBudgetLimits {
  /** Pings a fresh connection may send at once. */
  burstMax: number;
  /** One more ping is allowed per this many milliseconds, up to burstMax. */
  refillMs: number;
}

export class PingBudget {
  private tokens: number;
  private lastMs: number;
  /** The server sent something since the last ping: the next one is free. */
  private sentSincePing = false;

  constructor(private readonly limits: PingBudgetLimits, nowMs: number) {
    this.tokens = limits.burstMax;
    this.lastMs = nowMs;
  }

  /**
   * The server sent the peer response headers or data. Its next ping may be answering that:
   * gRPC clients estimate bandwidth by pinging as data arrives (grpc-go's BDP estimator, netty's
   * flow-control tuning), many times a second through a long answer. gRPC servers forgive a ping
   * that follows a send; so does this budget. A peer gets one free ping per send, so free pings
   * are bounded by what the server chose to send.
   */
  credit(): void {
    this.sentSincePing = true;
  }

  /** A ping arrived at `nowMs`: whether it is within the budget (false: the peer floods). */
  take(nowMs: number): boolean {
    if (this.sentSincePing) {
      this.sentSincePing = false;
      return true;
    }
    const refilled = Math.floor((nowMs - this.lastMs) / this.limits.refillMs);
    if (refilled > 0) {
      this.tokens = Math.min(this.limits.burstMax, this.tokens + refilled);
      // A full bucket does not save up refills: the next one is a whole period after now.
      this.lastMs = this.tokens === this.limits.burstMax ? nowMs : this.lastMs + refilled * this.limits.refillMs;
    }
    if (this.tokens === 0) return false;
    this.tokens -= 1;
    return true;
  }
}

/** GOAWAY debug data of a connection ended for its pings (gRPC's; its clients back off on it). */
const tooManyPings = Buffer.from('too_many_pings');

/**
 * Ends `session` with GOAWAY ENHANCE_YOUR_CALM "too_many_pings" once its peer's pings exceed the
 * budget; `onRefused` hears the peer's address first. Returns the budget, for a server that
 * streams answers to `credit` what it sends.
 */
export function guardPings(session: http2.Http2Session, limits: PingBudgetLimits, onRefused: (peer: string, reason: string) => void): PingBudget {
  const budget = new PingBudget(limits, Date.now());
  session.on('ping', () => {
    if (budget.take(Date.now()) || session.destroyed) return;
    const socket = session.socket;
    onRefused(`${socket?.remoteAddress ?? '?'}:${socket?.remotePort ?? '?'}`, tooManyPings.toString());
    session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, 0, tooManyPings);
    session.destroy();
  });
  return budget;
}

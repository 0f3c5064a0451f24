/**
 * @module loadgen/core/recorder
 * The outcome sink of the request benches: counts every finished request, and for the ones in
 * the measured window records latency (µs HDR histogram), errors by status or code (with the
 * first message of each), the
 * cold-start header, and each success's latency split three ways: waiting in this client for a
 * free connection, waiting in the DP's queue for a sandbox (its x-dirigent-queue-ms header),
 * and the rest (the network both ways, the proxying, the sandbox's answer). O(1) per outcome
 * and no allocation after construction. No I/O: times come in the outcomes.
 */
import { errorBodyMessage, isOkStatus, newHistogram, recordMs, tally, type Histogram } from './stats.js';

/** A finished request as the sender reports it. Valid only during `onOutcome`. */
export interface Outcome {
  readonly tag: number;
  /** HTTP status, or 0 when no complete response arrived (then `error` is set). */
  readonly status: number;
  readonly error: string;
  readonly startMs: number;
  readonly endMs: number;
  /** x-dirigent-cold-start: 1 true, 0 false, -1 absent. */
  readonly coldStart: number;
  /** x-dirigent-queue-ms, NaN when absent. */
  readonly queueMs: number;
  /** When the request went out on a connection (after waiting for a free one), NaN if never. */
  readonly writtenMs: number;
  /** The body as text when it was captured (always for a non-2xx answer), else ''. */
  bodyText(): string;
}

export interface OutcomeSink {
  onOutcome(outcome: Outcome): void;
}

export class RunRecorder implements OutcomeSink {
  readonly latency: Histogram = newHistogram();
  /** Successes: from the send call to the write on a connection (undici's queue). */
  readonly clientWait: Histogram = newHistogram();
  /** Successes with a queue header: the time the DP held each waiting for a sandbox. */
  readonly dpQueue: Histogram = newHistogram();
  /** The same successes: latency minus both waits. */
  readonly beyondQueues: Histogram = newHistogram();
  readonly errors = new Map<string, number>();
  /** The first message of each kind of error that came with a body: why the cluster said no. */
  readonly errorMessages = new Map<string, string>();
  /** All outcomes, measured or not. */
  completed = 0;
  /** Outcomes inside the measured window. */
  counted = 0;
  ok = 0;
  coldStartTrue = 0;
  coldStartHeader = 0;
  firstOkDoneMs = Number.POSITIVE_INFINITY;
  lastOkDoneMs = Number.NEGATIVE_INFINITY;
  private waitingFor = -1;
  private wake: (() => void) | null = null;

  /**
   * @param measured decides whether an outcome is in the measured window (warm-up excluded).
   * @param after called after recording, e.g. by a closed loop to send the next request.
   */
  constructor(
    private readonly measured: (o: Outcome) => boolean = () => true,
    private readonly after: ((o: Outcome) => void) | null = null,
  ) {}

  onOutcome(o: Outcome): void {
    this.completed++;
    if (this.measured(o)) this.record(o);
    if (this.after !== null) this.after(o);
    if (this.completed === this.waitingFor && this.wake !== null) this.wake();
  }

  /** Resolves once `n` outcomes in total have arrived. */
  whenCompleted(n: number): Promise<void> {
    if (this.completed >= n) return Promise.resolve();
    return new Promise((resolve) => {
      this.waitingFor = n;
      this.wake = resolve;
    });
  }

  private record(o: Outcome): void {
    this.counted++;
    if (!isOkStatus(o.status)) {
      const kind = o.status === 0 ? o.error : String(o.status);
      tally(this.errors, kind);
      if (o.status !== 0 && !this.errorMessages.has(kind)) {
        const message = errorBodyMessage(o.bodyText());
        if (message !== '') this.errorMessages.set(kind, message);
      }
      return;
    }
    this.ok++;
    recordMs(this.latency, o.endMs - o.startMs);
    if (o.endMs < this.firstOkDoneMs) this.firstOkDoneMs = o.endMs;
    if (o.endMs > this.lastOkDoneMs) this.lastOkDoneMs = o.endMs;
    if (o.coldStart >= 0) {
      this.coldStartHeader++;
      if (o.coldStart === 1) this.coldStartTrue++;
    }
    const clientWaitMs = o.writtenMs >= o.startMs ? o.writtenMs - o.startMs : 0;
    recordMs(this.clientWait, clientWaitMs);
    if (o.queueMs >= 0) {
      recordMs(this.dpQueue, o.queueMs);
      recordMs(this.beyondQueues, o.endMs - o.startMs - clientWaitMs - o.queueMs);
    }
  }
}

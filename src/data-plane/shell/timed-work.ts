/**
 * @module data-plane/shell/timed-work
 * The DP core's periodic calls (demand reports, queue expiry) run on timers only while
 * the core has timed work (`hasTimedWork`): an idle DP sleeps instead of waking 30 times a second
 * to find nothing (issue 12). A `timed_work` effect wakes them; after a run that leaves the core
 * with nothing, they stop.
 */

export interface TimedJob {
  periodMs: number;
  run: () => void;
}

export class TimedWorkTimers {
  /** One pending timeout per job while running; empty while asleep. */
  private timers: NodeJS.Timeout[] = [];
  private closed = false;

  constructor(
    private readonly jobs: readonly TimedJob[],
    /** Whether the core still has timed work (checked after each run). */
    private readonly busy: () => boolean,
  ) {}

  /** Whether the timers run now. */
  get running(): boolean {
    return this.timers.length > 0;
  }

  /** Starts the timers unless they run (or are closed). */
  wake(): void {
    if (this.closed || this.timers.length > 0) return;
    this.jobs.forEach((j, k) => this.schedule(j, k));
  }

  close(): void {
    this.closed = true;
    this.stop();
  }

  /** Each run schedules the next one only while there is work (a chain, so a stop is final). */
  private schedule(j: TimedJob, k: number): void {
    this.timers[k] = setTimeout(() => {
      j.run();
      if (this.timers.length === 0) return; // stopped by the run itself
      if (this.busy()) this.schedule(j, k);
      else this.stop();
    }, j.periodMs);
  }

  private stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
  }
}

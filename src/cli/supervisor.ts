/**
 * @module cli/supervisor
 * Runs `dirigent up`'s components as child processes and heals them: one that dies (exit or
 * signal) is started again with the same command line after a backoff (cli/supervisor-backoff),
 * logged as `up.component_restarted`. Stops everything by PID, newest first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import type { Logger } from '../shared/logger.js';
import { nextRestart } from './supervisor-backoff.js';

export interface ComponentSpec {
  name: string;
  command: string;
  args: string[];
  /** Where stdout and stderr go (appended across restarts). */
  log: string;
  env?: NodeJS.ProcessEnv;
  /** Descriptors the child inherits as 3, 4, ... (held listening sockets: cli/held-listener). */
  fds?: number[];
}

export interface Supervised {
  readonly spec: ComponentSpec;
  proc: ChildProcess;
  restarts: number;
  startedAtMs: number;
}

/** How long children get to stop after SIGTERM before SIGKILL. */
const stopGraceMs = 8_000;

export class Supervisor {
  readonly children: Supervised[] = [];
  private stopping = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly log: Logger, private readonly onRestarted: (c: Supervised) => void = () => {}) {}

  start(spec: ComponentSpec): Supervised {
    const child: Supervised = { spec, proc: this.spawn(spec), restarts: 0, startedAtMs: Date.now() };
    this.watch(child);
    this.children.push(child);
    return child;
  }

  private spawn(spec: ComponentSpec): ChildProcess {
    const fd = openSync(spec.log, 'a');
    try {
      return spawn(spec.command, spec.args, { stdio: ['ignore', fd, fd, ...(spec.fds ?? [])], env: spec.env ?? process.env });
    } finally {
      closeSync(fd); // the child holds its own copy
    }
  }

  private watch(child: Supervised): void {
    child.proc.once('exit', (exitCode, signal) => {
      if (this.stopping) return;
      const d = nextRestart(child, Date.now());
      child.restarts = d.restarts;
      this.log.warn('up.component_restarted', { name: child.spec.name, exitCode, signal, restarts: d.restarts, backoffMs: d.backoffMs, log: child.spec.log });
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        if (this.stopping) return;
        child.proc = this.spawn(child.spec);
        child.startedAtMs = Date.now();
        this.watch(child);
        this.onRestarted(child);
      }, d.backoffMs);
      this.timers.add(timer);
    });
    // A binary that cannot be spawned reports through 'error' (and then 'exit' with no code).
    child.proc.once('error', (err) => this.log.error('up.component_spawn_failed', { name: child.spec.name, error: err.message }));
  }

  /** Stops every child: SIGTERM newest first (workers before the CP), SIGKILL after a grace. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const alive = this.children.filter((c) => running(c.proc));
    for (const c of [...alive].reverse()) c.proc.kill('SIGTERM');
    const exited = alive.map((c) => new Promise((r) => (running(c.proc) ? c.proc.once('exit', r) : r(null))));
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(exited), new Promise((r) => { grace = setTimeout(r, stopGraceMs); })]);
    clearTimeout(grace);
    for (const c of alive) if (running(c.proc)) c.proc.kill('SIGKILL');
  }
}

export function running(proc: ChildProcess): boolean {
  return proc.exitCode === null && proc.signalCode === null;
}

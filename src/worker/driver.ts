/**
 * @module worker/driver
 * The glue between a WorkerCore and its surroundings, shared by the real daemon and the simulator
 * so both cross the same boundary: commands from the stream are decoded with the wire codec
 * (an invalid one is logged and dropped, never reaching the core), the core's effects are carried
 * out through a runtime port, and events leave encoded, one batch per flush. The driver does no
 * I/O itself: the caller supplies the stream writer, the runtime port and how to defer a flush
 * (the daemon: setImmediate, i.e. once per event-loop turn; the simulator: end of the step).
 */
import type { FunctionSpecMsg } from '../api/cluster.js';
import type { WorkerCommandBatch, WorkerEvent } from '../gen/dirigent/v1/cluster_pb.js';
import type { Logger } from '../shared/logger.js';
import { decodeBatchHeader, decodeWorkerCommand, encodeWorkerEvent } from '../wire/codec.js';
import type { CreatedResult, WorkerCore, WorkerCoreEvent, WorkerEffect } from './core/worker-core.js';

/** Starts and stops sandboxes; reports back through `WorkerDriver.created/deleted/exited`. */
export interface RuntimePort {
  create(sandboxId: string, spec: FunctionSpecMsg): void;
  delete(sandboxId: string): void;
}

export interface DriverIo {
  /** Writes one batch on the current stream. */
  write(events: WorkerEvent[]): void;
  runtime: RuntimePort;
  /** Runs `fn` once the current turn's work is done. */
  defer(fn: () => void): void;
}

export class WorkerDriver {
  private flushScheduled = false;
  invalidCommandCount = 0;

  constructor(
    readonly core: WorkerCore,
    private readonly io: DriverIo,
    private readonly log: Logger,
    private readonly workerId: string,
  ) {}

  connected(nowMs: number): void {
    this.handle({ kind: 'connected' }, nowMs);
  }

  disconnected(nowMs: number): void {
    this.handle({ kind: 'disconnected' }, nowMs);
  }

  /**
   * One batch as received from the stream. Its term goes with every command to the core, which
   * ignores the lot if the term is stale; a batch with an invalid header is dropped whole.
   */
  commands(batch: WorkerCommandBatch, nowMs: number): void {
    const header = decodeBatchHeader(batch);
    if (!header.ok) {
      this.invalidCommandCount += batch.commands.length;
      this.log.warn('worker.invalid_command', { workerId: this.workerId, field: header.field, reason: header.reason });
      return;
    }
    const term = header.msg.term;
    for (const wire of batch.commands) {
      const d = decodeWorkerCommand(wire);
      if (!d.ok) {
        this.invalidCommandCount += 1;
        this.log.warn('worker.invalid_command', { workerId: this.workerId, field: d.field, reason: d.reason });
        continue;
      }
      this.handle({ kind: 'command', term, command: d.msg }, nowMs);
    }
  }

  created(sandboxId: string, result: CreatedResult, nowMs: number): void {
    this.handle({ kind: 'created', sandboxId, result }, nowMs);
  }

  deleted(sandboxId: string, nowMs: number): void {
    this.handle({ kind: 'runtime_deleted', sandboxId }, nowMs);
  }

  exited(sandboxId: string, reason: string, nowMs: number): void {
    this.handle({ kind: 'exited', sandboxId, reason }, nowMs);
  }

  tick(nowMs: number): void {
    this.exec(this.core.tick(nowMs));
  }

  /** Sends what is queued now (the deferred flush calls this). */
  flush(): void {
    this.flushScheduled = false;
    this.exec(this.core.flush());
  }

  private handle(event: WorkerCoreEvent, nowMs: number): void {
    this.exec(this.core.handle(event, nowMs));
  }

  private exec(effects: WorkerEffect[]): void {
    for (const e of effects) {
      if (e.kind === 'send') this.io.write(e.events.map(encodeWorkerEvent));
      else if (e.kind === 'runtime_create') this.io.runtime.create(e.sandboxId, e.spec);
      else this.io.runtime.delete(e.sandboxId);
    }
    if (this.core.queuedEventCount > 0 && this.core.isConnected && !this.flushScheduled) {
      this.flushScheduled = true;
      this.io.defer(() => this.flush());
    }
  }
}

/**
 * @module worker/driver.test
 * The driver between the worker core and its stream, as the daemon and the simulator use it:
 * commands are decoded with the codec (invalid ones logged and dropped), events leave encoded,
 * one batch per deferred flush.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FunctionSpecMsg } from '../api/cluster.js';
import type { WorkerCommand, WorkerCommandBatch, WorkerEvent } from '../gen/dirigent/v1/cluster_pb.js';
import { memoryLogger, type RecordedLog } from '../shared/logger.js';
import { encodeWorkerCommand, encodeWorkerCommandBatch } from '../wire/codec.js';
import { WorkerCore } from './core/worker-core.js';
import { WorkerDriver } from './driver.js';

const spec: FunctionSpecMsg = {
  name: 'f', uid: 'u1', generation: 1, image: '', command: ['run'], port: 8080, env: {}, egress: false, auth: 'none',
  resources: { cpuMillis: 100, memoryMib: 64 }, concurrency: 1, timeoutMs: 1_000, workingDir: '',
};

const batch = (commands: WorkerCommand[], term = 0): WorkerCommandBatch => encodeWorkerCommandBatch({ term, leaderAddress: '' }, commands);

function setup() {
  const logs: RecordedLog[] = [];
  const log = memoryLogger(logs);
  const batches: WorkerEvent[][] = [];
  const deferred: (() => void)[] = [];
  /** Flushes that may wait (only `deleted` events queued), run by `runLater`. */
  const later: (() => void)[] = [];
  const calls: string[] = [];
  const core = new WorkerCore(
    { workerId: 'w', address: 'w:1', capacity: { cpuMillis: 1000, memoryMib: 1024 }, runtimes: ['process'], heartbeatPeriodMs: 1000, replayEventsMax: 10 },
    log,
  );
  const driver = new WorkerDriver(core, {
    write: (events) => batches.push(events),
    runtime: { create: (id) => calls.push(`create ${id}`), delete: (id) => calls.push(`delete ${id}`) },
    defer: (fn, mayWait) => (mayWait ? later : deferred).push(fn),
  }, log, 'w');
  const runDeferred = (): void => {
    for (const fn of deferred.splice(0)) fn();
  };
  const runLater = (): void => {
    for (const fn of later.splice(0)) fn();
  };
  return { logs, batches, calls, driver, runDeferred, runLater, deferred, later };
}

describe('worker driver', () => {
  it('an invalid command is logged with the field and dropped; valid ones in the batch still run', () => {
    const t = setup();
    t.driver.connected(0);
    const bad = encodeWorkerCommand({ case: 'create', value: { sandboxId: '', function: spec } });
    const good = encodeWorkerCommand({ case: 'create', value: { sandboxId: 's1', function: spec } });
    t.driver.commands(batch([bad, good]), 1);
    assert.deepEqual(t.calls, ['create s1']);
    const invalid = t.logs.find((l) => l.event === 'worker.invalid_command');
    assert.equal(invalid?.fields.field, 'create.sandboxId');
    assert.equal(t.driver.invalidCommandCount, 1);
  });

  it('the hello goes out at once on connect; later events leave encoded in one batch per flush', () => {
    const t = setup();
    t.driver.connected(0);
    assert.equal(t.batches.length, 1);
    assert.equal(t.batches[0]![0]!.event.case, 'hello');
    t.driver.commands(batch([encodeWorkerCommand({ case: 'create', value: { sandboxId: 's1', function: spec } })]), 1);
    t.driver.commands(batch([encodeWorkerCommand({ case: 'create', value: { sandboxId: 's2', function: spec } })]), 1);
    t.driver.created('s1', { ok: true, address: 'a:1', createdAtMs: 2, startMs: 0, readinessMs: 0 }, 2);
    t.driver.created('s2', { ok: false, reason: 'nope' }, 2);
    assert.equal(t.batches.length, 1, 'nothing written before the flush');
    t.runDeferred();
    assert.equal(t.batches.length, 2);
    assert.deepEqual(t.batches[1]!.map((e) => e.event.case), ['ready', 'failed']);
  });

  it('a batch of a stale term is ignored whole; one with an invalid term is dropped with the field logged', () => {
    const t = setup();
    t.driver.connected(0);
    const create = (id: string): WorkerCommand => encodeWorkerCommand({ case: 'create', value: { sandboxId: id, function: spec } });
    t.driver.commands(batch([create('s1')], 7), 1);
    t.driver.commands(batch([create('s2'), create('s3')], 6), 2);
    t.driver.commands(batch([create('s4')], Number.NaN), 3);
    assert.deepEqual(t.calls, ['create s1']);
    assert.equal(t.logs.filter((l) => l.event === 'worker.stale_term').length, 1);
    assert.equal(t.logs.find((l) => l.event === 'worker.invalid_command')?.fields.field, 'batch.term');
  });

  it('a deleted event alone waits to share a write; anything else queued meanwhile takes it along at once, in order', () => {
    const t = setup();
    t.driver.connected(0);
    const create = (id: string): WorkerCommand => encodeWorkerCommand({ case: 'create', value: { sandboxId: id, function: spec } });
    const ready = (id: string, nowMs: number): void => t.driver.created(id, { ok: true, address: `a:${id}`, createdAtMs: nowMs, startMs: 0, readinessMs: 0 }, nowMs);
    /** The CP's delete, then the runtime's report that the sandbox is gone. */
    const del = (id: string, nowMs: number): void => {
      t.driver.commands(batch([encodeWorkerCommand({ case: 'delete', value: { sandboxId: id } })]), nowMs);
      t.driver.deleted(id, nowMs);
    };
    t.driver.commands(batch(['s1', 's2', 's3', 's4', 's5'].map(create)), 1);
    for (const id of ['s1', 's2', 's3', 's4']) ready(id, 2);
    t.runDeferred();
    assert.equal(t.batches.length, 2);

    // Deletions alone: no flush at the end of the turn, one that may wait.
    del('s1', 3);
    assert.equal(t.deferred.length, 0, 'no flush at the end of the turn for a deletion alone');
    assert.equal(t.later.length, 1);
    del('s2', 3);
    assert.equal(t.later.length, 1, 'one waiting flush, however many deletions queue');

    // The wait ends by itself.
    t.runLater();
    assert.equal(t.batches.length, 3);
    assert.deepEqual(t.batches[2]!.map((e) => e.event.case), ['deleted', 'deleted']);

    // A deletion, then something urgent: both leave at the end of the turn, in order, and the
    // waiting flush finds nothing left to send.
    del('s3', 4);
    ready('s5', 4);
    assert.equal(t.deferred.length, 1);
    t.runDeferred();
    assert.equal(t.batches.length, 4);
    assert.deepEqual(t.batches[3]!.map((e) => e.event.case), ['deleted', 'ready']);
    t.runLater();
    assert.equal(t.batches.length, 4, 'an overtaken waiting flush sends nothing');

    // After that overtaken one, a new deletion still gets its own waiting flush.
    del('s4', 5);
    assert.equal(t.later.length, 1);
    t.runLater();
    assert.deepEqual(t.batches[4]!.map((e) => e.event.case), ['deleted']);
  });
});

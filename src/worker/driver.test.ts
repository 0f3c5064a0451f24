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
  const calls: string[] = [];
  const core = new WorkerCore(
    { workerId: 'w', address: 'w:1', capacity: { cpuMillis: 1000, memoryMib: 1024 }, runtimes: ['process'], heartbeatPeriodMs: 1000, replayEventsMax: 10 },
    log,
  );
  const driver = new WorkerDriver(core, {
    write: (events) => batches.push(events),
    runtime: { create: (id) => calls.push(`create ${id}`), delete: (id) => calls.push(`delete ${id}`) },
    defer: (fn) => deferred.push(fn),
  }, log, 'w');
  const runDeferred = (): void => {
    for (const fn of deferred.splice(0)) fn();
  };
  return { logs, batches, calls, driver, runDeferred };
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
});

/**
 * @module worker/core/worker-core.test
 * The worker core in virtual time: lifecycle, idempotent commands, heartbeats, the hello, and the
 * replay of sandbox events produced while the stream to the CP was down.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { FunctionSpecMsg, WorkerEventMsg } from '../../api/cluster.js';
import { memoryLogger, type RecordedLog } from '../../shared/logger.js';
import { WorkerCore, type WorkerCoreConfig, type WorkerEffect } from './worker-core.js';

const spec: FunctionSpecMsg = {
  name: 'f', uid: 'uid-1', generation: 3, image: '', command: ['run'], port: 8080, env: {}, egress: false, auth: 'none',
  resources: { cpuMillis: 250, memoryMib: 128 }, concurrency: 1, timeoutMs: 1_000, workingDir: '',
};

function newCore(over: Partial<WorkerCoreConfig> = {}, logs: RecordedLog[] = []): WorkerCore {
  const config: WorkerCoreConfig = {
    workerId: 'w1', address: 'w1:10010', capacity: { cpuMillis: 4000, memoryMib: 8192 },
    runtimes: ['process'], heartbeatPeriodMs: 1_000, replayEventsMax: 100, ...over,
  };
  return new WorkerCore(config, memoryLogger(logs));
}

const create = (sandboxId: string, term = 0) => ({ kind: 'command' as const, term, command: { case: 'create' as const, value: { sandboxId, function: spec } } });
const del = (sandboxId: string, term = 0) => ({ kind: 'command' as const, term, command: { case: 'delete' as const, value: { sandboxId } } });
const ok = (sandboxId: string, nowMs: number) => ({
  kind: 'created' as const, sandboxId, result: { ok: true as const, address: `h:${sandboxId}`, createdAtMs: nowMs, startMs: 1, readinessMs: 2 },
});

function sent(effects: WorkerEffect[]): WorkerEventMsg[] {
  return effects.flatMap((e) => (e.kind === 'send' ? e.events : []));
}

function cases(events: WorkerEventMsg[]): string[] {
  return events.map((e) => (e.case === 'failed' ? `failed:${e.value.kind}:${e.value.sandboxId}` : e.case === 'hello' ? 'hello' : e.case === 'heartbeat' ? 'heartbeat' : `${e.case}:${e.case === 'ready' ? e.value.sandbox?.sandboxId : e.value.sandboxId}`));
}

/** A connected core with sandbox `s1` running; everything sent so far is discarded. */
function runningCore(over: Partial<WorkerCoreConfig> = {}): WorkerCore {
  const core = newCore(over);
  core.handle({ kind: 'connected' }, 0);
  core.handle(create('s1'), 10);
  core.handle(ok('s1', 50), 50);
  core.flush();
  return core;
}

describe('worker core: lifecycle', () => {
  it('create -> runtime_create; created -> ready with the function uid and generation; delete -> runtime_delete -> deleted', () => {
    const core = newCore();
    core.handle({ kind: 'connected' }, 0);
    const fx = core.handle(create('s1'), 10);
    assert.deepEqual(fx, [{ kind: 'runtime_create', sandboxId: 's1', spec }]);
    core.handle(ok('s1', 60), 60);
    const ready = sent(core.flush());
    assert.equal(ready.length, 1);
    assert.ok(ready[0]!.case === 'ready');
    assert.equal(ready[0]!.value.sandbox?.functionUid, 'uid-1');
    assert.equal(ready[0]!.value.sandbox?.functionGeneration, 3);
    assert.equal(ready[0]!.value.breakdown?.totalMs, 50);
    assert.deepEqual(core.handle(del('s1'), 70), [{ kind: 'runtime_delete', sandboxId: 's1' }]);
    core.handle({ kind: 'runtime_deleted', sandboxId: 's1' }, 80);
    assert.deepEqual(cases(sent(core.flush())), ['deleted:s1']);
    assert.equal(core.runningCount(), 0);
  });

  it('duplicate create and delete commands are idempotent', () => {
    const core = runningCore();
    assert.deepEqual(core.handle(create('s1'), 60), []);
    assert.equal(core.handle(del('s1'), 70).length, 1);
    assert.deepEqual(core.handle(del('s1'), 71), [], 'second delete while deleting');
    core.handle({ kind: 'runtime_deleted', sandboxId: 's1' }, 80);
    core.handle({ kind: 'runtime_deleted', sandboxId: 's1' }, 81);
    assert.deepEqual(cases(sent(core.flush())), ['deleted:s1'], 'one deleted event');
  });

  it('a delete while creating cancels: once created it is deleted, never reported ready', () => {
    const core = newCore();
    core.handle({ kind: 'connected' }, 0);
    core.handle(create('s1'), 10);
    assert.deepEqual(core.handle(del('s1'), 20), [], 'nothing to delete yet');
    assert.deepEqual(core.handle(del('s1'), 21), [], 'duplicate delete while creating');
    assert.deepEqual(core.handle(ok('s1', 50), 50), [{ kind: 'runtime_delete', sandboxId: 's1' }]);
    core.handle({ kind: 'runtime_deleted', sandboxId: 's1' }, 60);
    assert.deepEqual(cases(sent(core.flush())), ['deleted:s1']);
    assert.deepEqual(core.hello().sandboxes, []);
  });

  it('a failed creation reports failed(create); a crash of a running sandbox reports failed(crash)', () => {
    const core = runningCore();
    core.handle(create('s2'), 60);
    core.handle({ kind: 'created', sandboxId: 's2', result: { ok: false, reason: 'no such dir /x' } }, 70);
    core.handle({ kind: 'exited', sandboxId: 's1', reason: 'exit 1' }, 80);
    core.handle({ kind: 'exited', sandboxId: 's1', reason: 'exit 1' }, 81);
    assert.deepEqual(cases(sent(core.flush())), ['failed:create:s2', 'failed:crash:s1']);
  });

  it('a delete of an unknown id goes to the runtime and is answered deleted', () => {
    const core = newCore();
    core.handle({ kind: 'connected' }, 0);
    assert.deepEqual(core.handle(del('zz'), 5), [{ kind: 'runtime_delete', sandboxId: 'zz' }]);
    core.handle({ kind: 'runtime_deleted', sandboxId: 'zz' }, 6);
    assert.deepEqual(cases(sent(core.flush())), ['deleted:zz']);
  });

  it('events of one turn go out as one batch', () => {
    const core = runningCore();
    core.handle(create('s2'), 60);
    core.handle(create('s3'), 60);
    core.handle(ok('s2', 70), 70);
    core.handle(ok('s3', 70), 70);
    const fx = core.flush();
    assert.equal(fx.length, 1);
    assert.deepEqual(cases(sent(fx)), ['ready:s2', 'ready:s3']);
    assert.deepEqual(core.flush(), []);
  });
});

describe('worker core: hello and heartbeat', () => {
  it('the hello lists running sandboxes with function uid and generation, not creating ones', () => {
    const core = runningCore();
    core.handle(create('s2'), 60);
    core.handle({ kind: 'disconnected' }, 70);
    const hello = sent(core.handle({ kind: 'connected' }, 80))[0]!;
    assert.ok(hello.case === 'hello');
    assert.deepEqual(hello.value.sandboxes.map((s) => [s.sandboxId, s.functionUid, s.functionGeneration]), [['s1', 'uid-1', 3]]);
    assert.equal(hello.value.workerId, 'w1');
  });

  it('a tick a little early (timer jitter) still heartbeats: one heartbeat per period', () => {
    const core = runningCore({ heartbeatPeriodMs: 1_000 });
    let n = 0;
    for (const t of [999, 1_998, 2_997, 3_996]) {
      core.tick(t);
      n += sent(core.flush()).filter((e) => e.case === 'heartbeat').length;
    }
    assert.equal(n, 4);
  });

  it('heartbeats every period while connected, with capacity and what creating and running sandboxes hold', () => {
    const core = runningCore({ heartbeatPeriodMs: 1_000 });
    core.handle(create('s2'), 60);
    assert.deepEqual(core.tick(400), []);
    core.tick(1_000);
    const hb = sent(core.flush());
    assert.equal(hb.length, 1);
    assert.ok(hb[0]!.case === 'heartbeat');
    assert.deepEqual(hb[0]!.value.allocated, { cpuMillis: 500, memoryMib: 256 });
    assert.deepEqual(hb[0]!.value.capacity, { cpuMillis: 4000, memoryMib: 8192 });
    assert.equal(hb[0]!.value.sandboxCount, 1);
    core.tick(1_400);
    assert.deepEqual(core.flush(), [], 'not due yet');
    core.handle({ kind: 'disconnected' }, 1_600);
    core.tick(5_000);
    core.handle({ kind: 'connected' }, 5_001);
    assert.equal(core.queuedEventCount, 0, 'no heartbeat kept while down');
  });
});

describe('worker core: replay after a disconnect', () => {
  it('a crash while disconnected reaches the CP after the hello on reconnect', () => {
    const core = runningCore();
    core.handle({ kind: 'disconnected' }, 100);
    core.handle({ kind: 'exited', sandboxId: 's1', reason: 'killed' }, 150);
    assert.deepEqual(core.flush(), [], 'nothing goes out while down');
    const fx = core.handle({ kind: 'connected' }, 300);
    const events = sent(fx);
    assert.deepEqual(cases(events), ['hello', 'failed:crash:s1']);
    assert.ok(events[0]!.case === 'hello' && events[0]!.value.sandboxes.length === 0);
  });

  it('events queued but not flushed when the stream broke are replayed in order', () => {
    const core = runningCore();
    core.handle(create('s2'), 60);
    core.handle({ kind: 'created', sandboxId: 's2', result: { ok: false, reason: 'boom' } }, 70);
    core.handle(del('s1'), 80);
    core.handle({ kind: 'disconnected' }, 90);
    core.handle({ kind: 'runtime_deleted', sandboxId: 's1' }, 95);
    assert.deepEqual(cases(sent(core.handle({ kind: 'connected' }, 200))), ['hello', 'failed:create:s2', 'deleted:s1']);
    assert.deepEqual(core.flush(), [], 'replayed once');
  });

  it('a sandbox that became ready while down is in the hello; its ready event is not repeated', () => {
    const core = newCore();
    core.handle({ kind: 'connected' }, 0);
    core.handle(create('s1'), 10);
    core.handle({ kind: 'disconnected' }, 20);
    core.handle(ok('s1', 40), 40);
    const events = sent(core.handle({ kind: 'connected' }, 100));
    assert.deepEqual(cases(events), ['hello']);
    assert.ok(events[0]!.case === 'hello');
    assert.deepEqual(events[0]!.value.sandboxes.map((s) => s.sandboxId), ['s1']);
  });

  it('the replay is bounded: past replayEventsMax the oldest events go, the newest are kept in order', () => {
    const logs: RecordedLog[] = [];
    const core = newCore({ replayEventsMax: 3 }, logs);
    core.handle({ kind: 'connected' }, 0);
    for (let i = 0; i < 5; i += 1) {
      core.handle(create(`s${i}`), 1);
      core.handle(ok(`s${i}`, 2), 2);
    }
    core.flush();
    core.handle({ kind: 'disconnected' }, 10);
    for (let i = 0; i < 5; i += 1) core.handle({ kind: 'exited', sandboxId: `s${i}`, reason: 'x' }, 20 + i);
    assert.equal(core.queuedEventCount, 3);
    const events = sent(core.handle({ kind: 'connected' }, 100));
    assert.deepEqual(cases(events), ['hello', 'failed:crash:s2', 'failed:crash:s3', 'failed:crash:s4']);
    const replayed = logs.find((l) => l.event === 'worker.replayed');
    assert.deepEqual(replayed?.fields, { workerId: 'w1', events: 3, dropped: 2 });
  });
});

describe('worker core: leader terms (fencing)', () => {
  it('a command of a term below the highest seen is ignored and logged once per stream; a higher term is adopted', () => {
    const logs: RecordedLog[] = [];
    const core = newCore({}, logs);
    core.handle({ kind: 'connected' }, 0);
    assert.equal(core.handle(create('s1', 3), 10).length, 1);
    core.handle(ok('s1', 15), 15);
    assert.equal(core.highestTerm, 3);
    // The old leader (term 2), paused and back: neither its create nor its delete acts.
    assert.deepEqual(core.handle(create('s2', 2), 20), []);
    assert.deepEqual(core.handle(del('s1', 2), 20), []);
    assert.equal(core.staleCommandCount, 2);
    const stale = logs.filter((l) => l.event === 'worker.stale_term');
    assert.equal(stale.length, 1, 'one line per stream');
    assert.deepEqual(stale[0]!.fields, { workerId: 'w1', term: 2, seen: 3 });
    // A new leader with a higher term acts.
    assert.deepEqual(core.handle(del('s1', 4), 30), [{ kind: 'runtime_delete', sandboxId: 's1' }]);
    assert.equal(core.highestTerm, 4);
  });

  it('the highest term survives a reconnect: the old leader is still refused on the new stream', () => {
    const logs: RecordedLog[] = [];
    const core = newCore({}, logs);
    core.handle({ kind: 'connected' }, 0);
    core.handle(create('s1', 5), 10);
    core.handle({ kind: 'disconnected' }, 20);
    core.handle({ kind: 'connected' }, 30);
    assert.deepEqual(core.handle(create('s2', 4), 40), []);
    assert.equal(core.highestTerm, 5);
    assert.equal(logs.filter((l) => l.event === 'worker.stale_term').length, 1, 'logged again on the new stream');
  });

  it('the first term a worker sees is logged at debug (10,000 workers would log 10,000 lines); a new leader term at info', () => {
    const logs: RecordedLog[] = [];
    const core = newCore({}, logs);
    core.handle({ kind: 'connected' }, 0);
    core.handle(create('s1', 1), 10);
    core.handle(create('s2', 1), 20);
    core.handle(create('s3', 2), 30);
    const adopted = logs.filter((l) => l.event === 'worker.term_adopted').map((l) => [l.level, l.fields.term, l.fields.previous]);
    assert.deepEqual(adopted, [['debug', 1, 0], ['info', 2, 1]]);
  });

  it('term 0 (no term) is accepted only while no term has been seen', () => {
    const core = newCore();
    core.handle({ kind: 'connected' }, 0);
    assert.equal(core.handle(create('s1', 0), 10).length, 1);
    assert.equal(core.handle(create('s2', 1), 10).length, 1);
    assert.deepEqual(core.handle(create('s3', 0), 10), []);
  });
});

describe('worker core: events stand in for heartbeats', () => {
  it('a worker that sent an event within the period skips the heartbeat; a silent one sends it', () => {
    const core = runningCore({ heartbeatPeriodMs: 1_000 }); // its ready event went out at 50
    core.handle(create('s2'), 700);
    core.handle(ok('s2', 900), 900); // 'ready' at 900: the next heartbeat is due at 1,900
    core.flush();
    core.tick(1_000);
    assert.deepEqual(cases(sent(core.flush())), [], 'an event 100 ms ago says enough');
    core.tick(2_000);
    assert.deepEqual(cases(sent(core.flush())), ['heartbeat'], 'silent for 1.1 periods');
  });

  it('the CP hears from a worker at least every 1.5 periods, whatever the events and ticks', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 20_000 }), { maxLength: 30 }), fc.integer({ min: 0, max: 999 }), (eventTimes, phaseMs) => {
      const core = newCore({ heartbeatPeriodMs: 1_000 });
      core.handle({ kind: 'connected' }, 0);
      const times = [...new Set(eventTimes)].sort((a, b) => a - b);
      let lastHeardMs = 0;
      let gapMaxMs = 0;
      let next = 0;
      const heard = (nowMs: number, effects: WorkerEffect[]): void => {
        if (sent(effects).length === 0) return;
        gapMaxMs = Math.max(gapMaxMs, nowMs - lastHeardMs);
        lastHeardMs = nowMs;
      };
      for (let tickMs = phaseMs; tickMs <= 20_000; tickMs += 1_000) {
        while (next < times.length && times[next]! <= tickMs) {
          const t = times[next]!;
          next += 1;
          // a sandbox of its own each time: every event is a ready one
          core.handle(create(`s${t}`), t);
          core.handle(ok(`s${t}`, t), t);
          heard(t, core.flush());
        }
        core.tick(tickMs);
        heard(tickMs, core.flush());
      }
      assert.ok(gapMaxMs <= 1_500, `silent for ${gapMaxMs} ms`);
    }));
  });
});

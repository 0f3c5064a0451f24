/**
 * Goal: the runtime spreads a tick's autoscaler visits over event-loop turns: it asks the core for
 * a bounded number per call and calls again on the next turn while visits are pending; a tick
 * that threw is not repeated at once (no busy loop of errors); a closed runtime stops.
 * Method: a fake core that counts its calls and reports pending visits; turns are awaited with
 * setImmediate. No durations are asserted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { memoryLogger, type RecordedLog } from '../../shared/logger.js';
import type { ControlPlaneCore } from '../core/control-plane.js';
import type { Store } from '../store/store.js';
import type { CpMetrics } from './metrics.js';
import { CpRuntime } from './runtime.js';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function rig(pendingAfterCalls: number[], throws = false) {
  const calls: number[] = [];
  let pending = 0;
  const core = {
    tick(_nowMs: number, visitsMax: number) {
      calls.push(visitsMax);
      pending = pendingAfterCalls[calls.length - 1] ?? 0;
      if (throws) throw new Error('bug');
      return [];
    },
    get visitsPending() { return pending; },
  } as unknown as ControlPlaneCore;
  const logs: RecordedLog[] = [];
  const rt = new CpRuntime(core, {} as Store, { nowMs: () => 0, wallMs: () => 0 }, {} as CpMetrics, memoryLogger(logs));
  return { rt, calls, logs };
}

describe('CpRuntime tick: bounded visits per event-loop turn', () => {
  it('calls the core again on the next turns while visits are pending, with the same bound', async () => {
    const { rt, calls } = rig([600, 300, 0]);
    rt.tick();
    assert.equal(calls.length, 1, 'one bounded call in this turn');
    for (let i = 0; i < 5; i += 1) await turn();
    assert.equal(calls.length, 3, 'continued until nothing was pending');
    assert.ok(calls.every((max) => max === calls[0]) && calls[0]! < Number.POSITIVE_INFINITY, `bounds ${calls.join(',')}`);
  });

  it('a timer tick while a continuation is scheduled does not schedule a second one', async () => {
    const { rt, calls } = rig([600, 300, 0, 0]);
    rt.tick();
    rt.tick(); // the next timer tick came before the continuation ran
    for (let i = 0; i < 5; i += 1) await turn();
    assert.equal(calls.length, 3);
  });

  it('a tick that threw is logged and not repeated at once', async () => {
    const { rt, calls, logs } = rig([600, 600, 600], true);
    rt.tick();
    for (let i = 0; i < 5; i += 1) await turn();
    assert.equal(calls.length, 1);
    assert.equal(logs.filter((l) => l.event === 'control_plane.tick_failed').length, 1);
  });

  it('stops once closed', async () => {
    const { rt, calls } = rig([600, 300, 0]);
    rt.tick();
    rt.close();
    for (let i = 0; i < 5; i += 1) await turn();
    rt.tick();
    assert.equal(calls.length, 1);
  });
});

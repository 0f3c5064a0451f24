/**
 * Goal: workers and data planes gone longer than the limit are forgotten, in memory and in the store.
 * Method: the pure core in virtual time, driven with events; effects inspected.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { worker, core } from './testkit.js';

describe('Health (control-plane core)', () => {
  it('forgets a worker and a data plane gone longer than the limit, in memory and in the store', () => {
    const cp = core();
    cp.handle({ kind: 'worker_disconnected', workerId: 'w1' }, 1000);
    cp.handle({ kind: 'dp_disconnected', dataPlaneId: 'dp1' }, 1000);
    assert.deepEqual(cp.tick(60_000).filter((e) => e.kind.startsWith('forget')), []);
    const eff = cp.tick(61_000).filter((e) => e.kind.startsWith('forget'));
    assert.deepEqual(eff.map((e) => e.kind).sort(), ['forget_data_plane', 'forget_worker']);
    assert.equal(cp.workers.size, 0);
    assert.equal(cp.dataPlanes.size, 0);
  });

  it('keeps a peer that came back before the limit', () => {
    const cp = core();
    cp.handle({ kind: 'worker_disconnected', workerId: 'w1' }, 1000);
    cp.handle({ kind: 'worker_connected', hello: worker('w1') }, 2000);
    assert.deepEqual(cp.tick(62_000).filter((e) => e.kind.startsWith('forget')), []);
    assert.equal(cp.workers.size, 1);
  });
});

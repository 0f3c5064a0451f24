/**
 * Goal: `GET /v1/cluster` lists each worker's sandbox ids unless asked not to, with the same
 * counts either way, and the placements no worker could take.
 * Method: the view over a pure core driven with events (no I/O).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ControlPlaneConfig } from '../../config/compile.js';
import { core, demand, record } from '../core/testkit.js';
import { clusterView } from './cluster-view.js';

const cfg = { host: '127.0.0.1' } as ControlPlaneConfig;

describe('cluster view', () => {
  it('lists sandbox ids by default and leaves them out with sandboxIds: false, counts kept', () => {
    const cp = core();
    cp.handle({ kind: 'function_upserted', record: record('f', 'u1') }, 0);
    cp.handle({ kind: 'dp_demand', dataPlaneId: 'dp1', report: demand('f', 'u1', 0, 2) }, 10);
    const full = clusterView(cp, cfg, { api: 1, rpc: 2 }, 20);
    const lean = clusterView(cp, cfg, { api: 1, rpc: 2 }, 20, 'cp-0', { sandboxIds: false });
    const w = full.workers[0]!;
    assert.equal(w.sandboxes, 2);
    assert.equal(w.sandboxIds?.length, 2);
    assert.equal('sandboxIds' in lean.workers[0]!, false);
    const { sandboxIds: _ids, ...rest } = w;
    assert.deepEqual(lean.workers[0], rest);
    assert.deepEqual(lean.placementRefusals, { total: 0, lastReason: '' });
  });
});

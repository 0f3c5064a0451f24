/**
 * Goal: a cluster whose CPU or memory is (nearly) all allocated is named as bound, with the
 * resource, the figures and what to change; a cluster with room is not. Placements refused
 * between two reads are counted, across a change of leader too.
 * Method: pure function over worker views as `GET /v1/cluster` gives them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { capacityBinding, capacityBindsAtFraction, refusalsBetween, type WorkerCapacityView } from './capacity.js';

const worker = (cpuUsed: number, memUsed: number, schedulable = true): WorkerCapacityView => ({
  schedulable, capacity: { cpuMillis: 2_000, memoryMiB: 4_096 }, allocated: { cpuMillis: cpuUsed, memoryMiB: memUsed },
});

describe('capacityBinding', () => {
  it('is null while CPU and memory have room', () => {
    assert.equal(capacityBinding([worker(1_000, 1_024), worker(0, 0)]), null);
  });

  it('names CPU when its allocated share reaches the bound, with the figures and the flags to change', () => {
    const used = Math.ceil(2 * 2_000 * capacityBindsAtFraction);
    const text = capacityBinding([worker(2_000, 100), worker(used - 2_000, 100)]) ?? '';
    assert.match(text, /^CPU 90% allocated \(3,600 of 4,000 millis\) on 2 schedulable workers/);
    assert.doesNotMatch(text, /memory \d/);
    assert.match(text, /--worker-cpu-millis/);
  });

  it('names both resources when both are bound', () => {
    assert.match(capacityBinding([worker(2_000, 4_096)]) ?? '', /^CPU 100% .*, memory 100% allocated \(4,096 of 4,096 MiB\) on 1 schedulable worker:/);
  });

  it('counts only schedulable workers, and says when there is none', () => {
    assert.match(capacityBinding([worker(2_000, 0), worker(0, 0, false)]) ?? '', /^CPU 100%.* on 1 schedulable worker:/);
    assert.equal(capacityBinding([worker(0, 0, false)]), 'no schedulable worker');
    assert.equal(capacityBinding([]), 'no worker registered');
  });
});

describe('refusalsBetween', () => {
  const at = (total: number, lastReason = 'r') => ({ workers: [], placementRefusals: { total, lastReason } });

  it('counts the placements refused between the two reads, with the last reason and what to change', () => {
    const text = refusalsBetween(at(5), at(1_239, '0/10 workers available: 10 insufficient cpu')) ?? '';
    assert.match(text, /^1,234 placements found no worker able to take the sandbox during the run \(last: 0\/10 workers available: 10 insufficient cpu\): .*--worker-cpu-millis/);
    assert.match(refusalsBetween(at(0), at(1)) ?? '', /^1 placement found/);
  });

  it('is null without refusals, or when either read lacks the count (an older CP, no answer)', () => {
    assert.equal(refusalsBetween(at(3), at(3)), null);
    assert.equal(refusalsBetween({ workers: [] }, at(3)), null);
    assert.equal(refusalsBetween(at(0), null), null);
  });

  it('after a change of leader (a count lower than before) counts the new leader\'s refusals', () => {
    assert.match(refusalsBetween(at(900), at(40)) ?? '', /^40 placements/);
    assert.equal(refusalsBetween(at(900), at(0)), null);
  });
});

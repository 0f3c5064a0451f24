/**
 * Goal: a cluster whose CPU or memory is (nearly) all allocated is named as bound, with the
 * resource, the figures and what to change; a cluster with room is not.
 * Method: pure function over worker views as `GET /v1/cluster` gives them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { capacityBinding, capacityBindsAtFraction, type WorkerCapacityView } from './capacity.js';

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

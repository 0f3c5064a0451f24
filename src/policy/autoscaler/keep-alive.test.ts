/**
 * Unit tests of the hybrid histogram keep-alive policy, in virtual time: busy spells and idle
 * gaps are fed as the control plane feeds them, and the floor is read at chosen instants.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  binCv,
  keepAliveBinMs,
  keepAliveAdopt,
  keepAliveFloor,
  keepAliveInitialState,
  keepAliveRestoredState,
  keepAliveObserve,
  keepAliveSamplesMin,
  keepAliveWindows,
  type KeepAliveState,
} from './keep-alive.js';

const minuteMs = keepAliveBinMs;
const windowS = 1200; // 20 minutes: 20 bins
const t0Ms = 10_000_000;

/** Busy for `busyMs`, then idle for each gap in turn, busy `busyMs` again after each; returns the end of the last busy spell. */
function spells(state: KeepAliveState, startMs: number, busyMs: number, gapsMs: number[]): number {
  let t = startMs;
  keepAliveObserve(state, true, t, windowS);
  t += busyMs;
  keepAliveObserve(state, false, t, windowS);
  for (const gap of gapsMs) {
    t += gap;
    keepAliveObserve(state, true, t, windowS);
    t += busyMs;
    keepAliveObserve(state, false, t, windowS);
  }
  return t;
}

test('a function never invoked holds nothing and plans no wake-up', () => {
  const s = keepAliveInitialState();
  assert.deepEqual(keepAliveFloor(s, t0Ms, windowS), { floor: 0, wakeAtMs: 0 });
  keepAliveObserve(s, false, t0Ms, windowS);
  assert.deepEqual(keepAliveFloor(s, t0Ms + minuteMs, windowS), { floor: 0, wakeAtMs: 0 });
});

test('without idle times to go by, one sandbox is held for the whole window after each busy spell (standard keep-alive)', () => {
  const s = keepAliveInitialState();
  const idleAt = spells(s, t0Ms, 500, []);
  assert.equal(s.samples, 0, 'the first busy spell follows no idle time');
  assert.deepEqual(keepAliveWindows(s, windowS), { prewarmMs: 0, keepAliveMs: windowS * 1000, basis: 'standard' });
  assert.deepEqual(keepAliveFloor(s, idleAt, windowS), { floor: 1, wakeAtMs: idleAt + windowS * 1000 });
  assert.deepEqual(keepAliveFloor(s, idleAt + windowS * 1000 - 1, windowS), { floor: 1, wakeAtMs: idleAt + windowS * 1000 });
  assert.deepEqual(keepAliveFloor(s, idleAt + windowS * 1000, windowS), { floor: 0, wakeAtMs: 0 });
  // While busy the KPA serves it: no floor.
  keepAliveObserve(s, true, idleAt + 1000, windowS);
  assert.deepEqual(keepAliveFloor(s, idleAt + 1000, windowS), { floor: 0, wakeAtMs: 0 });
  assert.equal(s.samples, 1);
});

test('a sandbox adopted with no history is held for the window from the adoption; the idle time before the next call is not recorded', () => {
  const s = keepAliveAdopt(null, t0Ms);
  assert.deepEqual(keepAliveFloor(s, t0Ms, windowS), { floor: 1, wakeAtMs: t0Ms + windowS * 1000 });
  keepAliveObserve(s, true, t0Ms + 3 * minuteMs, windowS);
  assert.equal(s.samples + s.outOfRange, 0, 'the idle spell began before the adoption: its length is unknown');
  keepAliveObserve(s, false, t0Ms + 3 * minuteMs + 500, windowS);
  keepAliveObserve(s, true, t0Ms + 5 * minuteMs + 500, windowS);
  assert.equal(s.samples, 1, 'the idle spells after it are recorded');
  assert.equal(s.bins![2], 1, 'a 2-minute idle time: bin 2');
});

test('a restored history: the first busy spell records nothing; an adoption holds from the adoption to where the windows end at the latest', () => {
  const learned = keepAliveInitialState();
  spells(learned, t0Ms, 500, new Array(8).fill(4.5 * minuteMs));
  assert.equal(learned.samples, 8);
  const w = keepAliveWindows(learned, windowS);
  assert.equal(w.basis, 'histogram');
  assert.ok(w.prewarmMs > 0, 'pre-warm at 90 % of 4 minutes');

  const quiet = keepAliveRestoredState(learned.bins!, learned.samples, learned.outOfRange);
  assert.deepEqual(keepAliveFloor(quiet, t0Ms, windowS), { floor: 0, wakeAtMs: 0 }, 'no spell under way: nothing held');
  keepAliveObserve(quiet, true, t0Ms + minuteMs, windowS);
  assert.equal(quiet.samples, 8, 'the spell before the first busy one began before the restore: not recorded');
  keepAliveObserve(quiet, false, t0Ms + minuteMs + 500, windowS);
  assert.deepEqual(keepAliveFloor(quiet, t0Ms + minuteMs + 500, windowS), { floor: 0, wakeAtMs: t0Ms + minuteMs + 500 + w.prewarmMs }, 'then the learned pre-warm');

  const adopted = keepAliveAdopt(keepAliveRestoredState(learned.bins!, learned.samples, learned.outOfRange), t0Ms);
  const endMs = t0Ms + w.prewarmMs + w.keepAliveMs;
  assert.deepEqual(keepAliveFloor(adopted, t0Ms, windowS), { floor: 1, wakeAtMs: endMs }, 'held at once, no pre-warm gap');
  assert.deepEqual(keepAliveFloor(adopted, endMs, windowS), { floor: 0, wakeAtMs: 0 });
  keepAliveAdopt(adopted, t0Ms + minuteMs);
  assert.equal(adopted.idleSinceMs, t0Ms, 'a second adoption in the same spell does not move it');
});

test('a function idle 4-5 minutes between calls is pre-warmed at 90 % of 4 minutes and held to 110 % of 5', () => {
  const s = keepAliveInitialState();
  const gap = 4 * minuteMs + 30_000;
  const idleAt = spells(s, t0Ms, 1000, Array<number>(8).fill(gap));
  assert.equal(s.samples, 8);
  assert.equal(s.bins![4], 8);
  const w = keepAliveWindows(s, windowS);
  assert.equal(w.basis, 'histogram');
  assert.equal(w.prewarmMs, 216_000); // 4 min less 10 %
  assert.equal(w.prewarmMs + w.keepAliveMs, 330_000); // 5 min plus 10 %
  // Released between calls, back before the next one is due, released again after it is late.
  assert.deepEqual(keepAliveFloor(s, idleAt + 60_000, windowS), { floor: 0, wakeAtMs: idleAt + 216_000 });
  assert.deepEqual(keepAliveFloor(s, idleAt + 216_000, windowS), { floor: 1, wakeAtMs: idleAt + 330_000 });
  assert.deepEqual(keepAliveFloor(s, idleAt + gap, windowS), { floor: 1, wakeAtMs: idleAt + 330_000 });
  assert.deepEqual(keepAliveFloor(s, idleAt + 330_000, windowS), { floor: 0, wakeAtMs: 0 });
});

test('idle times spread evenly over the window are not trusted: the standard keep-alive applies', () => {
  const s = keepAliveInitialState();
  const gaps: number[] = [];
  for (let i = 0; i < 20; i += 1) gaps.push(i * minuteMs + 10_000);
  spells(s, t0Ms, 1000, gaps);
  assert.equal(s.samples, 20);
  assert.ok(binCv(s.bins!) < 2);
  assert.equal(keepAliveWindows(s, windowS).basis, 'standard');
});

test(`fewer than ${keepAliveSamplesMin} idle times are not trusted, however concentrated`, () => {
  const s = keepAliveInitialState();
  spells(s, t0Ms, 1000, Array<number>(keepAliveSamplesMin - 1).fill(3 * minuteMs));
  assert.equal(keepAliveWindows(s, windowS).basis, 'standard');
  spells(s, t0Ms + 3_600_000, 1000, [3 * minuteMs]);
  assert.equal(keepAliveWindows(s, windowS).basis, 'histogram');
});

test('a function idle longer than the window most of the time holds nothing', () => {
  const s = keepAliveInitialState();
  const idleAt = spells(s, t0Ms, 1000, [30 * minuteMs, 45 * minuteMs, 2 * minuteMs]);
  assert.equal(s.outOfRange, 2);
  assert.equal(s.samples, 1);
  assert.equal(keepAliveWindows(s, windowS).basis, 'out-of-range');
  assert.deepEqual(keepAliveFloor(s, idleAt, windowS), { floor: 0, wakeAtMs: 0 });
});

test('a full bin halves every bin: the shape stays, the count matches the bins', () => {
  const s = keepAliveInitialState();
  spells(s, t0Ms, 1000, [2 * minuteMs]);
  s.bins![3] = 0xffff;
  s.bins![7] = 11;
  s.samples = 0xffff + 11 + 1;
  const end = spells(s, t0Ms + 3_600_000, 1000, [3 * minuteMs + 1000]);
  assert.equal(s.bins![3], (0xffff >> 1) + 1);
  assert.equal(s.bins![7], 5);
  assert.equal(s.bins![2], 0, 'one idle time halves to none');
  assert.equal(s.samples, s.bins!.reduce((a, b) => a + b, 0));
  assert.equal(keepAliveWindows(s, windowS).basis, 'histogram');
  assert.equal(keepAliveFloor(s, end + 2 * minuteMs, windowS).floor, 0, 'before the pre-warm (90 % of 3 min)');
});

test('a changed window starts the histogram again', () => {
  const s = keepAliveInitialState();
  const end = spells(s, t0Ms, 1000, Array<number>(6).fill(2 * minuteMs));
  assert.equal(s.samples, 6);
  keepAliveObserve(s, true, end + 2 * minuteMs, 600);
  assert.equal(s.bins!.length, 10);
  assert.equal(s.samples, 1);
  assert.equal(s.bins![2], 1);
});

test('invariants: no floor while busy; the held window ends within the configured one; wake-ups lie ahead', () => {
  fc.assert(fc.property(
    fc.array(fc.record({ busyMs: fc.integer({ min: 0, max: 120_000 }), idleMs: fc.integer({ min: 0, max: 3 * 3_600_000 }) }), { maxLength: 60 }),
    fc.integer({ min: 60, max: 14_400 }),
    fc.integer({ min: 0, max: 5 * 3_600_000 }),
    (steps, win, probeMs) => {
      const s = keepAliveInitialState();
      let t = t0Ms;
      for (const step of steps) {
        keepAliveObserve(s, true, t, win);
        assert.deepEqual(keepAliveFloor(s, t, win), { floor: 0, wakeAtMs: 0 });
        t += step.busyMs;
        keepAliveObserve(s, false, t, win);
        t += step.idleMs;
      }
      const w = keepAliveWindows(s, win);
      assert.ok(w.prewarmMs >= 0 && w.keepAliveMs >= 0);
      assert.ok(w.prewarmMs + w.keepAliveMs <= win * 1000, 'held past the window');
      const probe = t + probeMs;
      const f = keepAliveFloor(s, probe, win);
      if (f.wakeAtMs !== 0) assert.ok(f.wakeAtMs > probe, 'a wake-up in the past');
      if (steps.length === 0) assert.equal(f.floor, 0);
      else if (probe - s.idleSinceMs >= win * 1000) assert.equal(f.floor, 0, 'held past the window');
    },
  ));
});

/**
 * Unit tests of the KPA state machine. Method: drive it like the control plane does (one
 * record per second, one decision per 2 s tick, virtual time) and pin the exact numbers that
 * Knative's formulas give (workload-and-policies §3.4); invariants are checked by fast-check.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { ScalingSpec } from '../../api/types.js';
import { scalingDefaults, scalingPresets } from '../../config/defaults.js';
import {
  kpaDecide,
  kpaInitialState,
  kpaRecord,
  kpaRelease,
  kpaTarget,
  kpaWindowAverage,
  type KpaState,
  type KpaDecideInput,
  type ScaleDecision,
} from './kpa.js';

const t0Ms = 1_000_000; // bucket 1000: far from 0 so "before the first write" is visible

function specWith(over: Partial<ScalingSpec>): ScalingSpec {
  return { ...scalingDefaults, ...over };
}

/** A control plane in miniature: records every second, decides every tick. */
class Driver {
  state: KpaState;
  nowMs: number;
  ready: number;
  decisions: { atS: number; d: ScaleDecision }[] = [];

  constructor(
    readonly spec: ScalingSpec,
    opts: { ready?: number; concurrency?: number; reconstructed?: boolean } = {},
  ) {
    this.state = kpaInitialState(spec, t0Ms, { reconstructed: opts.reconstructed });
    this.nowMs = t0Ms;
    this.ready = opts.ready ?? 0;
    this.concurrency = opts.concurrency ?? 1;
  }

  readonly concurrency: number;

  /**
   * For `seconds` seconds: advance 1 s, record `inflight` (unless null: no report at all), and
   * decide on every tick. With `follow`, the ready count becomes the desired count at once.
   */
  run(seconds: number, inflight: number | null, follow = false): void {
    for (let s = 0; s < seconds; s++) {
      this.nowMs += 1000;
      if (inflight !== null) {
        this.state = kpaRecord(this.state, this.spec, inflight, this.nowMs);
      }
      if ((this.nowMs - t0Ms) % (this.spec.tickS * 1000) === 0) {
        const d = this.decide();
        if (follow) this.ready = d.desired;
      }
    }
  }

  decide(): ScaleDecision {
    const out = kpaDecide(this.state, {
      spec: this.spec,
      concurrency: this.concurrency,
      readyCount: this.ready,
      nowMs: this.nowMs,
    });
    this.state = out.state;
    this.decisions.push({ atS: (this.nowMs - t0Ms) / 1000, d: out.decision });
    return out.decision;
  }

  /** Desired per tick in [fromS, toS] seconds since start. */
  desiredBetween(fromS: number, toS: number): number[] {
    return this.decisions.filter((x) => x.atS >= fromS && x.atS <= toS).map((x) => x.d.desired);
  }
}

test('target: concurrency × utilization, 100 when unlimited, at least 0.01', () => {
  // Goal: ResolveMetricTarget. Method: the four cases of workload-and-policies §3.2.
  assert.equal(kpaTarget(1.0, 1), 1); // Dirigent: CC 1, 100 %
  assert.equal(kpaTarget(0.7, 1), 0.7); // Knative with CC 1
  assert.equal(kpaTarget(0.7, 0), 70); // unlimited: 100 × 0.7
  assert.equal(kpaTarget(0.001, 1), 0.01); // floor
});

test('window average: same-bucket records averaged, gaps count 0, young window shorter', () => {
  // Goal: Knative's linear WindowAverage on 1 s buckets. Method: hand-made records, window 6.
  const spec = specWith({ stableWindowS: 6, panicWindowS: 2 });
  let s = kpaInitialState(spec, 10_000);
  assert.equal(s.ring.bucketIds.length, 0, 'no window until the first record');
  s = kpaRecord(s, spec, 1, 10_000);
  assert.equal(s.ring.bucketIds.length, 6, 'the first record sizes it from the stable window');
  s = kpaRecord(s, spec, 7, 10_900); // bucket 10 = (1 + 7) / 2 = 4
  s = kpaRecord(s, spec, 2, 12_500); // bucket 11 is a gap
  assert.equal(kpaWindowAverage(s.ring, s.stableFirstBucket, 12, 6), (4 + 0 + 2) / 3);
  assert.equal(kpaWindowAverage(s.ring, s.stableFirstBucket, 13, 6), (4 + 0 + 2 + 0) / 4);
  assert.equal(kpaWindowAverage(s.ring, s.stableFirstBucket, 15, 6), 6 / 6);
  assert.equal(kpaWindowAverage(s.ring, s.stableFirstBucket, 16, 6), 2 / 6, 'bucket 10 left');
  assert.equal(kpaWindowAverage(s.ring, s.stableFirstBucket, 20, 6), 0);
  // The panic series (2 buckets) restarted at bucket 12: the gap 10 → 12 was a whole panic
  // window without records, so the panic average is 2 / 1, not (0 + 2) / 2.
  assert.equal(s.panicFirstBucket, 12);
  assert.equal(kpaWindowAverage(s.ring, s.panicFirstBucket, 12, 2), 2);
  assert.equal(kpaWindowAverage(s.ring, s.panicFirstBucket, 13, 2), (2 + 0) / 2);
});

test('window average: a series restarts after a silent window (Knative resets firstWrite)', () => {
  // Goal: after a quiet period longer than the panic window, a burst is averaged over the
  // buckets since it started, not diluted. Method: stable 60 s, panic 6 s; 1 at bucket 0,
  // 10 at bucket 30.
  const spec = specWith({});
  let s = kpaInitialState(spec, 0);
  s = kpaRecord(s, spec, 1, 0);
  s = kpaRecord(s, spec, 10, 30_000);
  assert.equal(s.panicFirstBucket, 30);
  assert.equal(s.stableFirstBucket, 0);
  assert.equal(kpaWindowAverage(s.ring, s.panicFirstBucket, 30, 6), 10);
  assert.equal(kpaWindowAverage(s.ring, s.stableFirstBucket, 30, 60), 11 / 31);
});

test('records older than the window are ignored; late ones inside it still count', () => {
  // Goal: out-of-order reports. Method: newest bucket 20, window 6.
  const spec = specWith({ stableWindowS: 6, panicWindowS: 2 });
  let s = kpaInitialState(spec, 20_000);
  s = kpaRecord(s, spec, 6, 20_000);
  const before = s;
  s = kpaRecord(s, spec, 100, 14_000); // bucket 14 ≤ 20 − 6: outside
  assert.equal(s, before);
  s = kpaRecord(s, spec, 6, 19_000); // bucket 19: inside, but not the newest
  assert.equal(s.lastBucket, 20);
  assert.equal(s.latestObserved, 6);
  assert.equal(kpaWindowAverage(s.ring, s.stableFirstBucket, 20, 6), 12 / 2);
});

test('steady 10 in flight for one stable window, concurrency 1, target 100 % → 10', () => {
  // Goal: the basic formula dspc = ceil(10 / 1). Method: Dirigent defaults (60 s window),
  // ready already 10, a record of 10 every second for 60 s.
  const fixed = new Driver(specWith({}), { ready: 10 });
  fixed.run(60, 10);
  const last = fixed.decisions.at(-1)!.d;
  assert.equal(last.desired, 10);
  assert.equal(last.mode, 'stable');
  assert.equal(last.stableAvg, 10);
  assert.equal(last.reason, 'stable: stableAvg 10.0 / target 1 = 10');
  assert.deepEqual(new Set(fixed.desiredBetween(0, 60)), new Set([10]));

  // From one sandbox, following the decisions: panic on the first tick (10 / 1 ≥ 2), 10 from
  // then on, back to stable a stable window after the last over-threshold tick (t = 2 s).
  const grown = new Driver(specWith({}), { ready: 1 });
  grown.run(70, 10, true);
  assert.deepEqual(new Set(grown.desiredBetween(0, 70)), new Set([10]));
  assert.equal(grown.decisions.find((x) => x.atS === 62)!.d.mode, 'panic');
  assert.equal(grown.decisions.find((x) => x.atS === 64)!.d.mode, 'stable');
});

test('a jump from 1 to 20 in flight enters panic and reaches 20 within one tick', () => {
  // Goal: panic mode reacts on the first tick after a surge. Method: ready 1, steady 1 for
  // 60 s, then 20 from t = 61 s. With a 2 s panic window (one tick) the first tick's panic
  // average is already 20. Reason text pinned as the status shows it.
  const d = new Driver(specWith({ panicWindowS: 2 }), { ready: 1 });
  d.run(60, 1);
  assert.deepEqual(new Set(d.desiredBetween(0, 60)), new Set([1]));
  d.run(2, 20);
  const first = d.decisions.at(-1)!.d;
  assert.equal(first.mode, 'panic');
  assert.equal(first.desired, 20);
  assert.equal(first.panicAvg, 20);
  assert.equal(first.reason, 'panic: panicAvg 20.0 / target 1 = 20 ≥ 2.0×ready 1');
});

test('with the default 6 s panic window the surge is in panic on the first tick: 8, 14, 20', () => {
  // Goal: pin Knative's trajectory for the default windows. Method: as above with panic 6 s;
  // the ready count follows desired. t = 62: buckets 57..62 = 1,1,1,1,20,20 → 44 / 6 = 7.3 → 8
  // (8 / 1 ≥ 2: panic). t = 64: 1,1,20,20,20,20 → 82 / 6 → 14 (14 / 8 < 2, panic held).
  // t = 66: all 20 → 20.
  const d = new Driver(specWith({}), { ready: 1 });
  d.run(60, 1, true);
  d.run(6, 20, true);
  assert.deepEqual(d.desiredBetween(62, 66), [8, 14, 20]);
  assert.deepEqual(
    d.decisions.filter((x) => x.atS >= 62).map((x) => x.d.mode),
    ['panic', 'panic', 'panic'],
  );
});

test('scale-down at most halves per tick (maxScaleDownRate 2)', () => {
  // Goal: maxDown = floor(R / 2). Method: 10 ready, no demand at all (averages 0, so the
  // formula alone would say 0), the ready count follows desired: 10 → 5 → 2 → 1 → 0.
  const d = new Driver(specWith({}), { ready: 10 });
  d.run(10, null, true);
  assert.deepEqual(d.desiredBetween(0, 10), [5, 2, 1, 0, 0]);
  assert.deepEqual(d.decisions[0].d.bounds, { maxUp: 10_000, maxDown: 5 });
  const reason = 'stable: stableAvg 0.0 / target 1 = 0 bounded by [5, 10000]';
  assert.equal(d.decisions[0].d.reason, reason);
});

test('6 s stable window, no grace: desired 0 within 6–8 s of the last traffic', () => {
  // Goal: Dirigent's quick scale to zero (cold-start sweep). Method: windows 6 s / 2 s,
  // ready 1, 1 in flight, last traffic at several offsets; afterwards the data plane either
  // reports 0 each second or stops reporting. Ticks every 2 s.
  for (const trafficS of [10, 11]) {
    for (const quiet of [0, null]) {
      const d = new Driver(specWith({ stableWindowS: 6, panicWindowS: 2 }), { ready: 1 });
      d.run(trafficS, 1);
      d.run(20, quiet);
      const zeroAt = d.decisions.find((x) => x.d.desired === 0)!.atS;
      const label = `traffic until ${trafficS} s, quiet ${quiet}`;
      assert.ok(zeroAt - trafficS >= 6 && zeroAt - trafficS <= 8, `${label}: 0 at ${zeroAt}`);
      assert.ok(d.desiredBetween(2, zeroAt - 1).every((x) => x === 1), label);
    }
  }
});

test('panic is held one stable window after the last over-threshold tick, never decreasing', () => {
  // Goal: panic exit rule and the high-water mark. Method: ready stays 1, 10 in flight for
  // t = 1..10 s, then 0. Over-threshold ticks: 2..14 (t = 14: panic avg 20 / 6 → 4 ≥ 2).
  // Panic holds 10 until 14 + 60 < now, i.e. through t = 74, and exits at t = 76.
  const d = new Driver(specWith({}), { ready: 1 });
  d.run(10, 10);
  d.run(70, 0);
  const during = d.decisions.filter((x) => x.atS <= 74);
  assert.ok(during.every((x) => x.d.mode === 'panic' && x.d.desired === 10));
  const at16 = d.decisions.find((x) => x.atS === 16)!.d;
  assert.equal(at16.panicAvg, 0);
  assert.match(at16.reason, /held 60 s after the last surge/);
  const at76 = d.decisions.find((x) => x.atS === 76)!.d;
  assert.equal(at76.mode, 'stable');
  assert.equal(at76.desired, 0);
});

test('min and max bound the decision', () => {
  // Goal: final clamp. Method: no demand with min 3; 100 in flight with max 5.
  const low = new Driver(specWith({ min: 3 }), { ready: 3 });
  low.run(10, 0);
  assert.deepEqual(new Set(low.desiredBetween(0, 10)), new Set([3]));
  const high = new Driver(specWith({ max: 5 }), { ready: 1 });
  high.run(4, 100, true);
  assert.deepEqual(high.desiredBetween(0, 4), [5, 5]);
  assert.match(high.decisions[0].d.reason, /clamped to \[0, 5\]/);
});

test('initial scale is held for one stable window after creation', () => {
  // Goal: initial sandboxes without demand. Method: initial 4, no demand, ready follows:
  // 4 until t < 60 s; at t = 60 the hold ends and the count halves (4 → 2).
  const d = new Driver(specWith({ initial: 4 }), { ready: 0 });
  assert.equal(d.state.lastDesired, 4);
  assert.equal(d.decide().desired, 4, 'wanted at creation');
  d.ready = 4;
  d.run(60, 0, true);
  assert.deepEqual(new Set(d.desiredBetween(0, 58)), new Set([4]));
  assert.deepEqual(d.desiredBetween(60, 60), [2]);
  // Initial 0 and no demand: nothing is created and nothing is held at 1.
  const none = new Driver(specWith({}), { ready: 0 });
  none.run(10, null);
  assert.deepEqual(new Set(none.desiredBetween(0, 10)), new Set([0]));
});

test('the scale-to-zero grace period holds one sandbox', () => {
  // Goal: scale to zero only after no demand for the grace period. Method: windows 6 s / 2 s,
  // grace 30 s, 1 in flight for t = 1..10 s. The stable average is 0 from bucket 16, so
  // desired stays 1 until t = 44 and is 0 at t = 46.
  const d = new Driver(specWith({ stableWindowS: 6, panicWindowS: 2, scaleToZeroGraceS: 30 }), {
    ready: 1,
  });
  d.run(10, 1);
  d.run(40, 0);
  assert.deepEqual(new Set(d.desiredBetween(2, 44)), new Set([1]));
  assert.deepEqual(d.desiredBetween(46, 50), [0, 0, 0]);
  assert.match(d.decisions.find((x) => x.atS === 44)!.d.reason, /held at 1: idle 28 s < grace 30/);
});

test('the scale-down delay holds the maximum of the last delay seconds', () => {
  // Goal: scale-down delay. Method: windows 6 s / 2 s, ready 5, 5 in flight for 6 s then 0.
  // Without delay: 5, 4, 2, 2 at t = 6..12; with delay 4 s each value lasts one more tick.
  const run = (delayS: number): number[] => {
    const d = new Driver(specWith({ stableWindowS: 6, panicWindowS: 2, scaleDownDelayS: delayS }), {
      ready: 5,
    });
    d.run(6, 5);
    d.run(6, 0);
    return d.desiredBetween(6, 12);
  };
  assert.deepEqual(run(0), [5, 4, 2, 2]);
  assert.deepEqual(run(4), [5, 5, 4, 2]);
});

test('scale from zero: the first demand is served at once, from the latest observation', () => {
  // Goal: the control plane calls decide on first demand, not only on ticks. Method: ready 0,
  // the data plane's final 0 and a new 6 land in the same bucket (bucket average 3), then an
  // immediate decision: ceil(6 / 1) = 6 beats the averages (panic 3).
  const spec = specWith({});
  let s = kpaInitialState(spec, t0Ms);
  s = kpaRecord(s, spec, 0, t0Ms + 5_100);
  s = kpaRecord(s, spec, 6, t0Ms + 5_300);
  const input = { spec, concurrency: 1, readyCount: 0, nowMs: t0Ms + 5_300 };
  const { decision } = kpaDecide(s, input);
  assert.equal(decision.panicAvg, 3);
  assert.equal(decision.desired, 6);
  assert.match(decision.reason, /scale from zero: observed 6 → 6/);
  // One request, unlimited concurrency (target 100): still one sandbox at once.
  const one = kpaRecord(kpaInitialState(spec, t0Ms), spec, 1, t0Ms + 100);
  const unlimited = decideOnCopy(one, { ...input, concurrency: 0, nowMs: t0Ms + 100 });
  assert.equal(unlimited.decision.desired, 1);
  // A stale observation (a whole window ago, no report since) does not keep it up.
  const stale = decideOnCopy(one, { ...input, nowMs: t0Ms + 100 + 61_000 });
  assert.equal(stale.decision.desired, 0);
});

test('after a failover: panic mode and no scale-down for one stable window', () => {
  // Goal: Dirigent's reconstruction rule. Method: reconstructed state, 8 sandboxes ready, no
  // demand reports. Held at 8 while t ≤ 60 s; then panic ends and the count halves.
  const d = new Driver(specWith({}), { ready: 8, reconstructed: true });
  assert.equal(d.state.panicStartMs, t0Ms);
  d.run(60, null, true);
  assert.ok(d.decisions.every((x) => x.d.desired === 8 && x.d.mode === 'panic'));
  assert.match(d.decisions[0].d.reason, /no scale-down after failover: ready 8/);
  d.run(2, null, true);
  assert.deepEqual(d.desiredBetween(62, 62), [4]);
  assert.equal(d.decisions.at(-1)!.d.mode, 'stable');
});

test('knative preset: 21 in flight at target 0.7 wants 30, not 31 (float noise)', () => {
  // Goal: ceil must not be fooled by 21 / 0.7 = 30.000000000000004. Method: ready 30, steady 21.
  const d = new Driver(scalingPresets.knative, { ready: 30 });
  d.run(60, 21);
  assert.equal(d.decisions.at(-1)!.d.stableAvg, 21);
  assert.equal(d.decisions.at(-1)!.d.desired, 30);
  assert.equal(d.decisions.at(-1)!.d.target, 0.7);
});

test('a stable-window change resizes the ring and keeps the recent buckets', () => {
  // Goal: a function update may change the window. Method: 60 s ring, then record with 6 s.
  const long = specWith({});
  const short = specWith({ stableWindowS: 6, panicWindowS: 2 });
  let s = kpaInitialState(long, 0);
  for (let t = 0; t <= 20; t++) s = kpaRecord(s, long, t, t * 1000);
  s = kpaRecord(s, short, 21, 21_000);
  assert.equal(s.ring.bucketIds.length, 6);
  const avg = kpaWindowAverage(s.ring, s.stableFirstBucket, 21, 6);
  assert.equal(avg, (16 + 17 + 18 + 19 + 20 + 21) / 6);
});

// ---- Properties ---------------------------------------------------------------------------

const specArb = fc
  .record({
    min: fc.integer({ min: 0, max: 5 }),
    span: fc.integer({ min: 1, max: 50 }),
    initial: fc.integer({ min: 0, max: 10 }),
    targetUtilization: fc.double({ min: 0.01, max: 1, noNaN: true }),
    stableWindowS: fc.integer({ min: 1, max: 30 }),
    panicWindowS: fc.integer({ min: 1, max: 30 }),
    panicThreshold: fc.double({ min: 1.1, max: 5, noNaN: true }),
    maxScaleUpRate: fc.double({ min: 1.01, max: 1000, noNaN: true }),
    maxScaleDownRate: fc.double({ min: 1.01, max: 10, noNaN: true }),
    scaleToZeroGraceS: fc.integer({ min: 0, max: 30 }),
    scaleDownDelayS: fc.integer({ min: 0, max: 10 }),
  })
  .map(
    ({ span, ...rest }): ScalingSpec => ({ ...rest, max: rest.min + span, tickS: 2, keepAliveWindowS: 0 }),
  );

const stepArb = fc.record({
  advanceMs: fc.integer({ min: 0, max: 5_000 }),
  observed: fc.option(fc.integer({ min: 0, max: 500 }), { nil: null }),
  decide: fc.boolean(),
  ready: fc.integer({ min: 0, max: 60 }),
});

/** A what-if decision: kpaDecide consumes its state, so each of several is made on a copy. */
function decideOnCopy(state: KpaState, input: KpaDecideInput): { decision: ScaleDecision; state: KpaState } {
  return kpaDecide(structuredClone(state), input);
}

function deepFreeze<T>(x: T): T {
  if (x !== null && typeof x === 'object' && !Object.isFrozen(x)) {
    Object.freeze(x);
    for (const v of Object.values(x)) deepFreeze(v);
  }
  return x;
}

test('property: desired within [min, max], never below the rate bound, inputs untouched', () => {
  // Goal: invariants over arbitrary specs and demand. Method: random steps on deep-frozen specs
  // (a write would throw); kpaRecord and kpaDecide, which consume their state (written in
  // place), give what they give on a fresh copy of that state; every decision is checked; the
  // state survives a JSON round trip (serializable).
  fc.assert(
    fc.property(
      specArb,
      fc.boolean(),
      fc.integer({ min: 0, max: 3 }),
      fc.array(stepArb, { maxLength: 60 }),
      (spec, reconstructed, concurrency, steps) => {
        deepFreeze(spec);
        let nowMs = t0Ms;
        let state = kpaInitialState(spec, nowMs, { reconstructed });
        for (const step of steps) {
          nowMs += step.advanceMs;
          if (step.observed !== null) {
            const onCopy = kpaRecord(structuredClone(state), spec, step.observed, nowMs);
            state = kpaRecord(state, spec, step.observed, nowMs);
            assert.deepEqual(state, onCopy);
          }
          if (!step.decide) continue;
          const input = { spec, concurrency, readyCount: step.ready, nowMs };
          const onCopy = kpaDecide(structuredClone(state), input);
          const out = kpaDecide(state, input);
          assert.deepEqual(out.state, onCopy.state);
          assert.deepEqual(out.decision, onCopy.decision);
          assert.equal(out.decision.reason, onCopy.decision.reason);
          const { desired, bounds } = out.decision;
          assert.ok(Number.isInteger(desired));
          assert.ok(desired >= spec.min && desired <= spec.max, `${desired}`);
          assert.ok(desired >= Math.min(spec.max, bounds.maxDown), 'halving bound');
          state = out.state;
        }
        assert.deepEqual(JSON.parse(JSON.stringify(state)), state);
      },
    ),
    { numRuns: 300 },
  );
});

test('property: with no ready sandbox, a fresh observation > 0 always wants ≥ 1', () => {
  // Goal: immediate scale from zero. Method: arbitrary history, then a demand record and an
  // immediate decision with readyCount 0.
  fc.assert(
    fc.property(
      specArb,
      fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 20 }),
      fc.integer({ min: 1, max: 500 }),
      (spec, history, demand) => {
        let state = kpaInitialState(spec, t0Ms);
        history.forEach((v, i) => (state = kpaRecord(state, spec, v, t0Ms + i * 1000)));
        const nowMs = t0Ms + history.length * 1000 + 10;
        state = kpaRecord(state, spec, demand, nowMs);
        const out = kpaDecide(state, { spec, concurrency: 1, readyCount: 0, nowMs });
        assert.ok(out.decision.desired >= 1);
      },
    ),
    { numRuns: 200 },
  );
});

test('queue floor: never fewer sandboxes than requests in flight or queued right now', () => {
  // Goal: a function sized by its 60 s average (12 at concurrency 1) whose requests queue behind
  // busy sandboxes (16 in flight + queued now) gets 16 at once, not after the stable window has
  // learned it (the Azure replay's scheduling p99: 1.5-2.7 s of queueing on one such function).
  // Method: steady 12 for 60 s, then one decision with the instantaneous 16 given as the floor.
  const d = new Driver(specWith({}), { ready: 12 });
  d.run(60, 12);
  const input = { spec: d.spec, concurrency: 1, readyCount: 12, nowMs: d.nowMs };
  const without = decideOnCopy(d.state, input).decision;
  assert.equal(without.desired, 12);
  const withFloor = decideOnCopy(d.state, { ...input, queueFloor: 16 }).decision;
  assert.equal(withFloor.desired, 16);
  assert.match(withFloor.reason, /queue floor: 16 in flight or queued → 16/);
  // Concurrency 4: 30 requests need 8 sandboxes; a floor below the KPA's answer changes nothing.
  assert.equal(decideOnCopy(d.state, { ...input, concurrency: 4, queueFloor: 30 }).decision.desired, 8);
  assert.equal(decideOnCopy(d.state, { ...input, queueFloor: 5 }).decision.desired, 12);
  // Unlimited concurrency never queues behind a busy sandbox: no floor.
  const unlimited = { ...input, concurrency: 0 };
  assert.equal(decideOnCopy(d.state, { ...unlimited, queueFloor: 5_000 }).decision.desired, decideOnCopy(d.state, unlimited).decision.desired);
  // The floor is clamped to max like any decision.
  const capped = new Driver(specWith({ max: 14 }), { ready: 12 });
  capped.run(60, 12);
  assert.equal(decideOnCopy(capped.state, { ...input, spec: capped.spec, queueFloor: 16 }).decision.desired, 14);
});

test('property: the queue floor only raises the decision, and never past max', () => {
  fc.assert(fc.property(
    fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 8 }), fc.integer({ min: 1, max: 100 }),
    (observed, floor, concurrency, max) => {
      const d = new Driver(specWith({ max }), { ready: 1, concurrency });
      d.run(10, observed);
      const input = { spec: d.spec, concurrency, readyCount: 1, nowMs: d.nowMs };
      const plain = decideOnCopy(d.state, input).decision.desired;
      const floored = decideOnCopy(d.state, { ...input, queueFloor: floor }).decision.desired;
      assert.ok(floored >= plain && floored <= max, `${plain} -> ${floored}`);
      if (concurrency > 0) assert.ok(floored >= Math.min(max, Math.ceil(floor / concurrency)));
    }));
});

test('zeros recorded into a window never observed allocate none; every decision is the one an allocated window gives', () => {
  // Goal: a registered function the CP ticks but nobody invokes holds no window (three arrays of
  // stableWindowS slots), and that changes no decision. Method: the same random history on a
  // fresh state and on one whose ring was allocated up front; equal decisions at every step.
  fc.assert(
    fc.property(specArb, fc.integer({ min: 0, max: 20 }), fc.array(stepArb, { maxLength: 40 }), (spec, zeros, steps) => {
      let fresh = kpaInitialState(spec, t0Ms);
      const length = spec.stableWindowS;
      let allocated: KpaState = {
        ...kpaInitialState(spec, t0Ms),
        ring: { bucketIds: new Array<number>(length).fill(-1), sums: new Array<number>(length).fill(0), counts: new Array<number>(length).fill(0) },
      };
      let nowMs = t0Ms;
      for (let i = 0; i < zeros; i++, nowMs += 1000) {
        fresh = kpaRecord(fresh, spec, 0, nowMs);
        allocated = kpaRecord(allocated, spec, 0, nowMs);
      }
      assert.equal(fresh.ring.bucketIds.length, 0, 'zeros allocated a window');
      for (const step of steps) {
        nowMs += step.advanceMs;
        if (step.observed !== null) {
          fresh = kpaRecord(fresh, spec, step.observed, nowMs);
          allocated = kpaRecord(allocated, spec, step.observed, nowMs);
        }
        if (!step.decide) continue;
        const input = { spec, concurrency: 1, readyCount: step.ready, nowMs };
        const a = kpaDecide(fresh, input);
        const b = kpaDecide(allocated, input);
        assert.deepEqual(a.decision, b.decision);
        fresh = a.state;
        allocated = b.state;
      }
    }),
    { numRuns: 300 },
  );
});

test('a window of zeros is given back after a full stable window without demand, and not before', () => {
  const spec: ScalingSpec = { ...scalingDefaults, stableWindowS: 6, panicWindowS: 2 };
  let s = kpaInitialState(spec, t0Ms);
  s = kpaRecord(s, spec, 3, t0Ms); // bucket b0 gets demand: the window is allocated
  assert.equal(s.ring.bucketIds.length, 6);
  const b0 = Math.floor(t0Ms / 1000);
  for (let b = b0 + 1; b <= b0 + 5; b++) {
    s = kpaRelease(kpaRecord(s, spec, 0, b * 1000));
    assert.equal(s.ring.bucketIds.length, 6, `bucket ${b}: the demand of ${b0} is still in the window`);
  }
  s = kpaRecord(s, spec, 0, (b0 + 6) * 1000);
  s = kpaRecord(s, spec, 0, (b0 + 6) * 1000 + 500);
  s = kpaRelease(s);
  assert.equal(s.ring.bucketIds.length, 0, 'released once the demand left the window');
  assert.equal(s.unobservedZeros, 2, 'the two zeros of the newest bucket are kept');
  // Demand later in the same bucket is averaged with those zeros, as in a kept window: (0 + 0 + 9) / 3.
  s = kpaRecord(s, spec, 9, (b0 + 6) * 1000 + 900);
  assert.equal(s.ring.bucketIds.length, 6);
  const d = kpaDecide(s, { spec, concurrency: 1, readyCount: 1, nowMs: (b0 + 6) * 1000 + 900 }).decision;
  assert.equal(d.panicAvg, 3 / 2, 'panic window of 2 buckets: (0 + 3) / 2');
});

test('property: giving a window of zeros back changes no decision', () => {
  // Goal: kpaRelease only drops memory. Method: the same random history (demand, zeros, long
  // gaps) on two states, one of them released after every record and before every decision;
  // equal decisions at every step.
  const zeroHeavyStep = fc.record({
    advanceMs: fc.integer({ min: 0, max: 12_000 }),
    observed: fc.option(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 50 })), { nil: null }),
    decide: fc.boolean(),
    ready: fc.integer({ min: 0, max: 20 }),
  });
  let releasesTotal = 0;
  fc.assert(
    fc.property(specArb, fc.boolean(), fc.array(zeroHeavyStep, { maxLength: 60 }), (spec, reconstructed, steps) => {
      let kept = kpaInitialState(spec, t0Ms, { reconstructed });
      let released = kpaInitialState(spec, t0Ms, { reconstructed });
      let nowMs = t0Ms;
      for (const step of steps) {
        nowMs += step.advanceMs;
        if (step.observed !== null) {
          kept = kpaRecord(kept, spec, step.observed, nowMs);
          const had = released.ring.bucketIds.length;
          released = kpaRelease(kpaRecord(released, spec, step.observed, nowMs));
          if (had > 0 && released.ring.bucketIds.length === 0) releasesTotal += 1;
        }
        if (!step.decide) continue;
        const input = { spec, concurrency: 1, readyCount: step.ready, nowMs };
        const a = kpaDecide(kept, input);
        const b = kpaDecide(kpaRelease(released), input);
        assert.deepEqual(
          { desired: a.decision.desired, mode: a.decision.mode, stableAvg: a.decision.stableAvg, panicAvg: a.decision.panicAvg, reason: a.decision.reason },
          { desired: b.decision.desired, mode: b.decision.mode, stableAvg: b.decision.stableAvg, panicAvg: b.decision.panicAvg, reason: b.decision.reason },
        );
        kept = a.state;
        released = b.state;
      }
    }),
    { numRuns: 500 },
  );
  assert.ok(releasesTotal >= 100, `the histories released a window ${releasesTotal} times`);
});

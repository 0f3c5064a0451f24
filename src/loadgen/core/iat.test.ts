/**
 * Goal: arrival times follow InVitro's per-minute layout exactly.
 * Method: hand-computed gap arrays for small n (equidistant, scripted uniform/exponential draws,
 * a scripted shift split), then properties over random counts: gaps sum to 60 s, minutes stay
 * aligned, and a seed reproduces the same arrivals.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import { seededRng } from '../../shared/rng.js';
import { functionArrivalsUs, minuteGapsUs, minuteUs, parseIatMode, type IatMode } from './iat.js';
import { scriptedRng } from './scripted-rng.js';

const equidistant: IatMode = { distribution: 'equidistant', shift: false };
const allModes: IatMode[] = ['equidistant', 'uniform', 'exponential'].flatMap((d) =>
  [false, true].map((shift) => parseIatMode(shift ? `${d}_shift` : d) as IatMode));

test('equidistant gaps are 60 s / n after a leading 0', () => {
  assert.deepEqual(minuteGapsUs(4, equidistant, scriptedRng([])), [0, 15e6, 15e6, 15e6, 15e6]);
  assert.deepEqual(minuteGapsUs(1, equidistant, scriptedRng([])), [0, 60e6]);
});

test('an empty minute is one blank 60 s gap and draws nothing', () => {
  const rng = scriptedRng([]);
  for (const mode of allModes) assert.deepEqual(minuteGapsUs(0, mode, rng), [minuteUs]);
});

test('uniform draws are normalised to sum to 60 s', () => {
  // Draws 0.1, 0.3 -> shares 1/4, 3/4 of the minute.
  const gaps = minuteGapsUs(2, { distribution: 'uniform', shift: false }, scriptedRng([0.1, 0.3]));
  assert.deepEqual(gaps, [0, 15e6, 45e6]);
});

test('exponential draws are -ln(1-u), then normalised', () => {
  // u = 0.5 twice -> equal Exp draws ln 2 -> 30 s each.
  const gaps = minuteGapsUs(2, { distribution: 'exponential', shift: false },
    scriptedRng([0.5, 0.5]));
  assert.deepEqual(gaps.map((g) => Math.round(g)), [0, 30e6, 30e6]);
});

test('shift rotates at the split point (InVitro worked example)', () => {
  // Gaps [20, 20, 20] s, split 0.5 * 60 s = 30 s -> [10, 20, 20, 10]: points at 10, 30, 50 s.
  const gaps = minuteGapsUs(3, { distribution: 'equidistant', shift: true }, scriptedRng([0.5]));
  assert.deepEqual(gaps, [10e6, 20e6, 20e6, 10e6]);
  const times = functionArrivalsUs([3], { distribution: 'equidistant', shift: true },
    scriptedRng([0.5])).timesUs;
  assert.deepEqual([...times], [10e6, 30e6, 50e6]);
});

test('arrivals: minute alignment with empty minutes in between', () => {
  const { timesUs, minute } = functionArrivalsUs([2, 0, 3], equidistant, scriptedRng([]));
  assert.deepEqual([...timesUs], [0, 30e6, 120e6, 140e6, 160e6]);
  assert.deepEqual([...minute], [0, 0, 2, 2, 2]);
});

test('property: every minute has n + 1 gaps summing to 60 s', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 500 }), fc.integer(), fc.nat(5), (n, seed, m) => {
    const gaps = minuteGapsUs(n, allModes[m], seededRng(seed));
    assert.equal(gaps.length, n + 1);
    assert.ok(gaps.every((g) => g >= 0));
    const sum = gaps.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - minuteUs) < 1e-3, `sum ${sum}`);
  }));
});

test('property: arrivals stay inside their minute; unshifted minutes start on the boundary', () => {
  const counts = fc.array(fc.nat(40), { minLength: 1, maxLength: 12 });
  fc.assert(fc.property(counts, fc.integer(), fc.nat(5), (perMinute, seed, m) => {
    const mode = allModes[m];
    const { timesUs, minute } = functionArrivalsUs(perMinute, mode, seededRng(seed));
    assert.equal(timesUs.length, perMinute.reduce((a, b) => a + b, 0));
    for (let i = 0; i < timesUs.length; i++) {
      assert.ok(timesUs[i] >= minute[i] * minuteUs && timesUs[i] < (minute[i] + 1) * minuteUs);
      if (i > 0) assert.ok(timesUs[i] >= timesUs[i - 1], 'ascending');
      const first = i === 0 || minute[i - 1] !== minute[i];
      if (first && !mode.shift) assert.equal(timesUs[i], minute[i] * minuteUs);
    }
    perMinute.forEach((n, mm) => assert.equal(minute.filter((x) => x === mm).length, n));
  }));
});

test('seeded determinism: the same seed gives the same arrivals, another seed differs', () => {
  const mode: IatMode = { distribution: 'exponential', shift: true };
  const a = functionArrivalsUs([10, 5, 7], mode, seededRng(42)).timesUs;
  const b = functionArrivalsUs([10, 5, 7], mode, seededRng(42)).timesUs;
  const c = functionArrivalsUs([10, 5, 7], mode, seededRng(43)).timesUs;
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

test('parseIatMode accepts the InVitro names only', () => {
  assert.deepEqual(parseIatMode('exponential_shift'), { distribution: 'exponential', shift: true });
  assert.deepEqual(parseIatMode('uniform'), { distribution: 'uniform', shift: false });
  assert.equal(parseIatMode('poisson'), null);
  assert.equal(parseIatMode('_shift'), null);
});

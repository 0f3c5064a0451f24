/**
 * Goal: the bench side of event-loop delay: the four samples are read from Prometheus text, a
 * process's windows in the measured period are told apart by the window counter (also across a
 * restart), each kind is summarised (max of maxima, median p99, stalls) and an unreadable kind
 * is null, never 0. Method: hand-written scrapes in order (virtual time: no clock involved).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatLoopDelay, kindSummary, LoopDelayTrack, loopDelayTargets, parseLoopDelayMetrics, type LoopDelayScrape } from './loop-delay.js';

const exposition = (s: { max: string; p99: string; stalls: string; windows: string; gc?: string[] }): string => [
  '# HELP dirigent_event_loop_delay_max_seconds Max event-loop delay in the last complete window',
  '# TYPE dirigent_event_loop_delay_max_seconds gauge',
  `dirigent_event_loop_delay_max_seconds ${s.max}`,
  '# TYPE dirigent_event_loop_delay_p99_seconds gauge',
  `dirigent_event_loop_delay_p99_seconds ${s.p99}`,
  `dirigent_event_loop_stalls_total ${s.stalls}`,
  `dirigent_event_loop_windows_total ${s.windows}`,
  'dirigent_dp_inflight 3',
  'dirigent_dp_nodejs_eventloop_lag_max_seconds 0.5',
  ...(s.gc ?? []),
  '',
].join('\n');

const scrape = (windows: number, stalls: number, maxMs: number, p99Ms: number, gcMs?: number): LoopDelayScrape => (
  gcMs === undefined ? { windows, stalls, maxMs, p99Ms } : { windows, stalls, maxMs, p99Ms, gcMs });

function trackOf(...scrapes: LoopDelayScrape[]): LoopDelayTrack {
  const t = new LoopDelayTrack();
  for (const s of scrapes) t.observe(s);
  return t;
}

describe('parseLoopDelayMetrics', () => {
  it('reads the two gauges (s -> ms) and the two counters, ignoring other metrics', () => {
    const s = parseLoopDelayMetrics(exposition({ max: '0.0075', p99: '0.00025', stalls: '2', windows: '40' }));
    assert.ok(s !== null);
    assert.equal(s.windows, 40);
    assert.equal(s.stalls, 2);
    assert.ok(Math.abs(s.maxMs - 7.5) < 1e-9 && Math.abs(s.p99Ms - 0.25) < 1e-9, JSON.stringify(s));
  });

  it("sums the process's GC time over every kind of collection (any component prefix); absent without the metric", () => {
    const gc = [
      '# TYPE dirigent_dp_nodejs_gc_duration_seconds histogram',
      'dirigent_dp_nodejs_gc_duration_seconds_bucket{le="0.001",kind="minor"} 10',
      'dirigent_dp_nodejs_gc_duration_seconds_sum{kind="minor"} 0.25',
      'dirigent_dp_nodejs_gc_duration_seconds_count{kind="minor"} 100',
      'dirigent_dp_nodejs_gc_duration_seconds_sum{kind="major"} 0.5',
      'dirigent_dp_nodejs_gc_duration_seconds_sum{kind="incremental"} 0.0125',
    ];
    const s = parseLoopDelayMetrics(exposition({ max: '0', p99: '0', stalls: '0', windows: '1', gc }));
    assert.ok(s !== null && s.gcMs !== undefined && Math.abs(s.gcMs - 762.5) < 1e-9, JSON.stringify(s));
    assert.equal(parseLoopDelayMetrics(exposition({ max: '0', p99: '0', stalls: '0', windows: '1' }))!.gcMs, undefined);
    const none = parseLoopDelayMetrics(exposition({ max: '0', p99: '0', stalls: '0', windows: '1', gc: ['# TYPE dirigent_cp_nodejs_gc_duration_seconds histogram'] }));
    assert.equal(none!.gcMs, 0, 'the histogram before its first collection: no GC yet');
    const bad = parseLoopDelayMetrics(exposition({ max: '0', p99: '0', stalls: '0', windows: '1', gc: ['dirigent_cp_nodejs_gc_duration_seconds_sum{kind="minor"} -1'] }));
    assert.equal(bad!.gcMs, undefined, 'a negative sum is no figure');
  });

  it('is null when a sample is missing, not a number, negative, or counts more stalls than windows', () => {
    assert.equal(parseLoopDelayMetrics('dirigent_dp_inflight 3\n'), null);
    assert.equal(parseLoopDelayMetrics(exposition({ max: 'NaN', p99: '0', stalls: '0', windows: '1' })), null);
    assert.equal(parseLoopDelayMetrics(exposition({ max: '-1', p99: '0', stalls: '0', windows: '1' })), null);
    assert.equal(parseLoopDelayMetrics(exposition({ max: '0', p99: '0', stalls: '1.5', windows: '2' })), null);
    assert.equal(parseLoopDelayMetrics(exposition({ max: '0', p99: '0', stalls: '3', windows: '2' })), null);
    assert.equal(parseLoopDelayMetrics('{"error":{"code":"unauthorized"}}'), null);
  });
});

describe('LoopDelayTrack', () => {
  it('takes the first scrape as the baseline and each new window number once', () => {
    // Baseline shows window 10 (before the period); polls twice per window see 11 twice.
    const t = trackOf(scrape(10, 4, 30, 9), scrape(11, 4, 1, 0.1), scrape(11, 4, 1, 0.1), scrape(12, 5, 8, 0.3));
    assert.deepEqual(t.seen, [{ maxMs: 1, p99Ms: 0.1 }, { maxMs: 8, p99Ms: 0.3 }]);
    assert.equal(t.windows(), 2);
    assert.equal(t.stalls(), 1);
    assert.equal(t.lastWindow(), 12);
  });

  it('counts windows a late poll missed from the counters', () => {
    const t = trackOf(scrape(10, 0, 0, 0), scrape(13, 2, 9, 0.2));
    assert.equal(t.windows(), 3);
    assert.equal(t.stalls(), 2, 'both stalls counted though only one window was seen');
    assert.equal(t.seen.length, 1);
  });

  it('adds up across a restart (counters start again from 0)', () => {
    const t = trackOf(scrape(100, 1, 0, 0), scrape(102, 2, 6, 0.1), scrape(1, 1, 40, 2), scrape(2, 1, 0.5, 0.1));
    assert.equal(t.windows(), 2 + 2);
    assert.equal(t.stalls(), 1 + 1);
    assert.deepEqual(t.seen.map((w) => w.maxMs), [6, 40, 0.5]);
  });

  it('adds up GC time over the period, also across a restart; unknown if a scrape lacked it', () => {
    const t = trackOf(scrape(10, 0, 0, 0, 1_000), scrape(11, 0, 0, 0, 1_040), scrape(1, 0, 0, 0, 5), scrape(2, 0, 0, 0, 12));
    assert.equal(t.gcMs(), 40 + 5 + 7);
    assert.equal(trackOf(scrape(10, 0, 0, 0, 1_000), scrape(11, 0, 0, 0)).gcMs(), null);
  });

  it('has nothing before any scrape', () => {
    const t = new LoopDelayTrack();
    assert.equal(t.lastWindow(), null);
    assert.equal(t.windows(), 0);
  });
});

describe('kindSummary', () => {
  it('pools every process of the kind: max of maxima, median of p99s, summed stalls', () => {
    const a = trackOf(scrape(0, 0, 0, 0), scrape(1, 0, 2, 0.1), scrape(2, 1, 7.25, 0.3));
    const b = trackOf(scrape(5, 0, 0, 0), scrape(6, 0, 1, 0.2), scrape(7, 0, 1, 0.4));
    assert.deepEqual(kindSummary([a, b]), { maxMs: 7.25, p99Ms: 0.25, stallWindows: 1, windows: 4, gcMs: null });
    const c = trackOf(scrape(0, 0, 0, 0, 100), scrape(1, 0, 2, 0.1, 130.5));
    const d = trackOf(scrape(5, 0, 0, 0, 7), scrape(6, 0, 1, 0.2, 9));
    assert.equal(kindSummary([c, d])!.gcMs, 32.5, 'GC time of every process of the kind, summed');
  });

  it('is null (unknown, never 0) when the kind lists nobody, a process has no URL, was never read, or completed no window', () => {
    const ok = trackOf(scrape(0, 0, 0, 0), scrape(1, 0, 2, 0.1));
    assert.equal(kindSummary([]), null);
    assert.equal(kindSummary([ok, null]), null);
    assert.equal(kindSummary([ok, new LoopDelayTrack()]), null);
    assert.equal(kindSummary([trackOf(scrape(3, 0, 0, 0), scrape(3, 0, 0, 0))]), null);
  });
});

describe('loopDelayTargets', () => {
  it('lists every CP replica, DP and worker URL; a listed process without one is null', () => {
    const json = JSON.stringify({
      controlPlane: { pid: 1, apiUrl: 'http://fe', metricsUrl: 'http://cp0/metrics' },
      controlPlanes: [{ pid: 1, metricsUrl: 'http://cp0/metrics' }, { pid: 2, metricsUrl: 'http://cp1/metrics' }],
      dataPlanes: [{ pid: 3, metricsUrl: 'http://dp/metrics' }],
      workers: [{ pid: 4 }],
    });
    assert.deepEqual(loopDelayTargets(json), { controlPlane: ['http://cp0/metrics', 'http://cp1/metrics'], dataPlane: ['http://dp/metrics'], workers: [null] });
  });

  it('falls back to controlPlane alone (older files) and reports bad JSON', () => {
    assert.deepEqual(loopDelayTargets('{"controlPlane":{"pid":1},"dataPlanes":[],"workers":[]}'), { controlPlane: [null], dataPlane: [], workers: [] });
    assert.ok('error' in loopDelayTargets('{'));
  });
});

describe('formatLoopDelay', () => {
  it('prints one line with n/a for unknown kinds', () => {
    assert.equal(formatLoopDelay({ controlPlane: { maxMs: 3.5, p99Ms: 0.2, stallWindows: 0, windows: 10, gcMs: 12.5 }, dataPlane: null, workers: null }),
      'event-loop delay ms (stall: window max > 5 ms): control-plane max 3.5 p99 0.2 stalls 0/10 gc 12.5; data-plane n/a; workers n/a');
  });
});

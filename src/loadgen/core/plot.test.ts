/**
 * Goal: plots are self-contained and carry their data points.
 * Method: render a sweep and a CDF, then look for each point's data attributes and for any
 * external reference (scripts, stylesheets, images, links).
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { cdfFromSorted, cdfPlot, renderHtml, renderSvg, sweepPlot } from './plot.js';

const runs = [
  { offeredRps: 100, latencyMs: { p50: 43.1, p90: 44, p99: 47.5 } },
  { offeredRps: 500, latencyMs: { p50: 43.9, p90: 50, p99: 72.25 } },
  { offeredRps: 1000, latencyMs: { p50: 61, p90: 300, p99: 1200 } },
];

test('sweep SVG has one circle per run and percentile, with its values', () => {
  const svg = renderSvg(sweepPlot('cold <sweep>', runs));
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.equal((svg.match(/<circle /g) ?? []).length, 9);
  for (const r of runs) {
    for (const p of ['p50', 'p90', 'p99'] as const) {
      const attrs = `data-x="${r.offeredRps}" data-y="${r.latencyMs[p]}"`;
      assert.ok(svg.includes(attrs), `${p}@${r.offeredRps}`);
    }
  }
  assert.ok(svg.includes('cold &lt;sweep&gt;'), 'title escaped');
});

test('HTML is self-contained: inline SVG, no external assets', () => {
  const html = renderHtml(sweepPlot('t', runs), { header: ['rps'], rows: [['100']] });
  assert.ok(html.includes('<svg'));
  assert.ok(html.includes('<td>100</td>'));
  assert.doesNotMatch(html, /<script|<link|<img|src=|href=|url\(/);
  const withoutNs = html.replace('xmlns="http://www.w3.org/2000/svg"', '');
  assert.doesNotMatch(withoutNs, /https?:\/\//);
});

test('CDF points: downsampled, ending at (max, 1), drawn on a log axis', () => {
  const sorted = Float64Array.from({ length: 1000 }, (_, i) => i + 1);
  const pts = cdfFromSorted(sorted);
  assert.ok(pts.length <= 201);
  assert.deepEqual(pts[0], { x: 1, y: 0.001 });
  assert.deepEqual(pts[pts.length - 1], { x: 1000, y: 1 });
  const svg = renderSvg(cdfPlot('cdf', 'ms', [{ name: 'latency', points: pts }]));
  assert.ok(svg.includes('data-x="1000" data-y="1"'));
  assert.equal(cdfFromSorted([]).length, 0);
  assert.ok(renderSvg(cdfPlot('empty', 'ms', [{ name: 'none', points: [] }])).includes('</svg>'));
});

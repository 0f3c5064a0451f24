/**
 * @module loadgen/core/plot
 * Self-contained SVG line plots (and an HTML page wrapping one) with no external assets, so a
 * result file can be opened anywhere offline. Every data point is a `<circle>` carrying its
 * values in `data-x`/`data-y` and a `<title>` tooltip. Pure string building.
 *
 *   +--------------------------------------------+  width
 *   |  title                                     |
 *   |  y axis |   *---*                          |
 *   |         |  /     \__*     legend           |
 *   |         +------------------ x axis         |
 *   +--------------------------------------------+  height
 */

export interface PlotPoint {
  x: number;
  y: number;
}

export interface PlotSeries {
  name: string;
  points: PlotPoint[];
}

export interface PlotSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  xLog: boolean;
  yLog: boolean;
  series: PlotSeries[];
}

const layout = Object.freeze({
  width: 760,
  height: 440,
  marginLeft: 70,
  marginRight: 150,
  marginTop: 40,
  marginBottom: 50,
  ticksLinear: 5,
  /** Log axes spanning at most this many decades also get 2x and 5x ticks. */
  logDecadesDense: 2,
  /** Plotted CDFs are downsampled to at most this many points. */
  cdfPointsMax: 200,
});

const palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

export function renderSvg(spec: PlotSpec): string {
  const all = spec.series.flatMap((s) => s.points);
  const xs = axis(all.map((p) => p.x), spec.xLog, layout.marginLeft,
    layout.width - layout.marginRight);
  const ys = axis(all.map((p) => p.y), spec.yLog, layout.height - layout.marginBottom,
    layout.marginTop);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${layout.width}" height="${layout.height}"` +
      ` viewBox="0 0 ${layout.width} ${layout.height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${layout.width / 2}" y="22" text-anchor="middle" font-size="15">` +
      `${esc(spec.title)}</text>`,
    ...axisLines(xs, ys, spec),
  ];
  spec.series.forEach((s, i) => {
    parts.push(...seriesSvg(s, palette[i % palette.length], xs, ys, i));
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** A complete HTML page: the SVG inline plus an optional table of the numbers behind it. */
export function renderHtml(spec: PlotSpec, table?: { header: string[]; rows: string[][] }): string {
  const tableHtml = table === undefined ? '' : [
    '<table>',
    `<tr>${table.header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>`,
    ...table.rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`),
    '</table>',
  ].join('\n');
  return [
    '<!DOCTYPE html>',
    `<html><head><meta charset="utf-8"><title>${esc(spec.title)}</title>`,
    '<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}' +
      'td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style>',
    '</head><body>',
    renderSvg(spec),
    tableHtml,
    '</body></html>',
  ].join('\n');
}

/** Latency percentiles against offered load, one series per percentile. */
export function sweepPlot(
  title: string,
  runs: ReadonlyArray<{ offeredRps: number; latencyMs: { p50: number; p90: number; p99: number } }>,
): PlotSpec {
  const series = (['p50', 'p90', 'p99'] as const).map((p) => ({
    name: `${p} latency`,
    points: runs.map((r) => ({ x: r.offeredRps, y: r.latencyMs[p] })),
  }));
  const xLabel = 'offered load (req/s)';
  return { title, xLabel, yLabel: 'latency (ms)', xLog: false, yLog: true, series };
}

/** A CDF plot with a log x axis, as Dirigent plots latency CDFs. */
export function cdfPlot(title: string, xLabel: string, series: PlotSeries[]): PlotSpec {
  return { title, xLabel, yLabel: 'fraction ≤ x', xLog: true, yLog: false, series };
}

/** Empirical CDF points of an ascending array, downsampled to at most `cdfPointsMax`. */
export function cdfFromSorted(sorted: ArrayLike<number>): PlotPoint[] {
  const n = sorted.length;
  const step = Math.max(1, Math.ceil(n / layout.cdfPointsMax));
  const out: PlotPoint[] = [];
  for (let i = 0; i < n; i += step) out.push({ x: sorted[i], y: (i + 1) / n });
  if (n > 0 && out[out.length - 1].y !== 1) out.push({ x: sorted[n - 1], y: 1 });
  return out;
}

interface Axis {
  toPx(v: number): number;
  ticks: number[];
  log: boolean;
}

function axis(values: number[], log: boolean, pxFrom: number, pxTo: number): Axis {
  const finite = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
  let lo = finite.length ? Math.min(...finite) : log ? 1 : 0;
  let hi = finite.length ? Math.max(...finite) : 1;
  if (log) {
    lo = 10 ** Math.floor(Math.log10(lo));
    hi = 10 ** Math.max(Math.ceil(Math.log10(hi)), Math.log10(lo) + 1);
  } else {
    lo = Math.min(0, lo);
    hi = hi > lo ? niceCeil(hi) : lo + 1;
  }
  const f = (v: number): number => (log ? Math.log10(Math.max(v, lo)) : v);
  const span = f(hi) - f(lo);
  const toPx = (v: number): number => pxFrom + ((f(v) - f(lo)) / span) * (pxTo - pxFrom);
  const ticks: number[] = [];
  if (log) ticks.push(...logTicks(lo, hi));
  else {
    for (let i = 0; i <= layout.ticksLinear; i++) {
      ticks.push(lo + ((hi - lo) * i) / layout.ticksLinear);
    }
  }
  return { toPx, ticks, log };
}

/** Decades; with 1-2-5 steps in between when the axis spans at most two decades. */
function logTicks(lo: number, hi: number): number[] {
  const steps = Math.log10(hi / lo) <= layout.logDecadesDense ? [1, 2, 5] : [1];
  const ticks: number[] = [];
  for (let decade = lo; decade <= hi * 1.0001; decade *= 10) {
    for (const m of steps) if (decade * m <= hi * 1.0001) ticks.push(decade * m);
  }
  return ticks;
}

/** 1, 2 or 5 times a power of ten, at least x. */
function niceCeil(x: number): number {
  const p = 10 ** Math.floor(Math.log10(x));
  return [1, 2, 5, 10].map((m) => m * p).find((c) => c >= x) ?? 10 * p;
}

function axisLines(xs: Axis, ys: Axis, spec: PlotSpec): string[] {
  const x0 = layout.marginLeft;
  const x1 = layout.width - layout.marginRight;
  const y0 = layout.height - layout.marginBottom;
  const y1 = layout.marginTop;
  const out = [
    `<line x1="${x0}" y1="${y0}" x2="${x1}" y2="${y0}" stroke="black"/>`,
    `<line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y1}" stroke="black"/>`,
    `<text x="${(x0 + x1) / 2}" y="${layout.height - 12}" text-anchor="middle">` +
      `${esc(spec.xLabel)}</text>`,
    `<text x="16" y="${(y0 + y1) / 2}" text-anchor="middle" ` +
      `transform="rotate(-90 16 ${(y0 + y1) / 2})">${esc(spec.yLabel)}</text>`,
  ];
  for (const t of xs.ticks) {
    const px = fmt(xs.toPx(t));
    out.push(`<line x1="${px}" y1="${y0}" x2="${px}" y2="${y0 + 5}" stroke="black"/>`,
      `<text x="${px}" y="${y0 + 18}" text-anchor="middle">${tickLabel(t)}</text>`);
  }
  for (const t of ys.ticks) {
    const py = fmt(ys.toPx(t));
    out.push(`<line x1="${x0}" y1="${py}" x2="${x1}" y2="${py}" stroke="#eee"/>`,
      `<text x="${x0 - 6}" y="${py}" text-anchor="end" dominant-baseline="middle">` +
        `${tickLabel(t)}</text>`);
  }
  return out;
}

function seriesSvg(s: PlotSeries, color: string, xs: Axis, ys: Axis, index: number): string[] {
  const pts = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const coords = pts.map((p) => `${fmt(xs.toPx(p.x))},${fmt(ys.toPx(p.y))}`);
  const legendY = layout.marginTop + 10 + index * 18;
  const legendX = layout.width - layout.marginRight + 12;
  return [
    `<g class="series" data-name="${esc(s.name)}">`,
    `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${coords.join(' ')}"/>`,
    ...pts.map((p, i) => {
      const [cx, cy] = coords[i].split(',');
      return `<circle cx="${cx}" cy="${cy}" r="2.5" fill="${color}" data-x="${p.x}" ` +
        `data-y="${p.y}"><title>${esc(s.name)}: x=${p.x} y=${p.y}</title></circle>`;
    }),
    `<rect x="${legendX}" y="${legendY - 5}" width="10" height="10" fill="${color}"/>`,
    `<text x="${legendX + 14}" y="${legendY}" dominant-baseline="middle">${esc(s.name)}</text>`,
    '</g>',
  ];
}

function tickLabel(v: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 10_000 || Math.abs(v) < 0.01) return v.toExponential(0);
  return String(Number(v.toPrecision(3)));
}

function fmt(px: number): string {
  return px.toFixed(1);
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

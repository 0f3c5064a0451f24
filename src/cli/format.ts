/**
 * @module cli/format
 * Text the CLI prints for people: aligned tables and function descriptions. Pure string
 * building; the commands write the result.
 */
import type { FunctionReply } from './replies.js';

/**
 * Left-aligned columns separated by two spaces, trailing spaces trimmed:
 *
 *   NAME   DESIRED  READY
 *   hello  1        1
 */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].map((text) => `${text}\n`).join('');
}

/** argv shown so it can be pasted back: arguments with spaces or quotes are JSON-quoted. */
function formatArgv(argv: readonly string[]): string {
  return argv.map((arg) => (arg === '' || /[\s"'\\$`]/.test(arg) ? JSON.stringify(arg) : arg))
    .join(' ');
}

/** The spec and live status of one function, one "key: value" per line. */
export function formatFunction(reply: FunctionReply): string {
  const spec = reply.function;
  const status = reply.status;
  // The port is where an image's server listens; a process sandbox gets $PORT from the worker,
  // so the stored default would only be mistaken for the data plane's port.
  const runtime = spec.image !== ''
    ? [['image', spec.image], ['port', String(spec.port)]]
    : [['command', formatArgv(spec.command)],
      ['working dir', spec.workingDir === '' ? '(the worker\'s scratch dir)' : spec.workingDir]];
  const env = Object.entries(spec.env).map(([key, value]) => `${key}=${value}`).join(' ');
  const lines: [string, string][] = [
    ['name', spec.name],
    ...(spec.namespace !== undefined ? [['namespace', spec.namespace] as [string, string]] : []),
    ...(runtime as [string, string][]),
    ['env', env === '' ? '-' : env],
    ...(spec.auth !== undefined ? [['auth', spec.auth === 'token' ? 'token (invocations need a bearer token of its namespace)' : 'none (public)'] as [string, string]] : []),
    ['egress', spec.egress === true ? 'on (beyond this host and the private ranges)' : 'off'],
    ['resources', `${spec.resources.cpuMillis} milli-CPU, ${spec.resources.memoryMiB} MiB`],
    ['concurrency', spec.concurrency === 0 ? 'unlimited' : `${spec.concurrency} per sandbox`],
    ['timeout', `${spec.timeoutMs} ms`],
    ['async', formatAsync(spec.async)],
    ['scale', formatScale(spec.scaling)],
    ['autoscaler', formatAutoscaler(spec.scaling)],
    ['windows', formatWindows(spec.scaling)],
    ['status', formatStatus(status)],
  ];
  if (status.unschedulableReason) lines.push(['unschedulable', status.unschedulableReason]);
  if (status.lastScaleReason) lines.push(['last scaling', status.lastScaleReason]);
  const width = Math.max(...lines.map(([key]) => key.length)) + 1;
  return lines.map(([key, value]) => `${`${key}:`.padEnd(width)}  ${value}\n`).join('');
}

/** Per-function async settings; what is unset follows the data plane's defaults. */
function formatAsync(settings: FunctionReply['function']['async']): string {
  const s = settings ?? {};
  return [
    `retry on 4xx ${s.retryOn4xx === true ? 'yes' : 'no'}`,
    `attempts ${s.attemptsMax ?? 'DP default'}`,
    `max event age ${s.eventAgeMsMax !== undefined ? `${s.eventAgeMsMax} ms` : 'DP default'}`,
  ].join(', ');
}

function formatScale(scaling: Record<string, number>): string {
  return `min ${scaling.min}, max ${scaling.max}, initial ${scaling.initial}`;
}

function formatAutoscaler(scaling: Record<string, number>): string {
  return `target utilization ${scaling.targetUtilization}, ` +
    `panic threshold ${scaling.panicThreshold}, scale-to-zero grace ${scaling.scaleToZeroGraceS} s` +
    (scaling.keepAliveWindowS ? `, keep-alive histogram over ${scaling.keepAliveWindowS} s` : '');
}

function formatWindows(scaling: Record<string, number>): string {
  return `stable ${scaling.stableWindowS} s, panic ${scaling.panicWindowS} s, ` +
    `tick ${scaling.tickS} s` + (scaling.scaleDownDelayS ? `, scale-down delay ${scaling.scaleDownDelayS} s` : '');
}

function formatStatus(status: FunctionReply['status']): string {
  const parts = [
    `desired ${status.desired}`,
    `ready ${status.ready}`,
    `creating ${status.creating}`,
  ];
  if (status.draining !== undefined) parts.push(`draining ${status.draining}`);
  parts.push(`queue ${status.queueDepth}`);
  if (status.inflight !== undefined) parts.push(`in flight ${status.inflight}`);
  if (status.panicking) parts.push('panicking');
  return parts.join(', ');
}

/**
 * @module loadgen/core/trace-csv
 * Parses an InVitro trace directory's three CSVs (already read into strings) and joins them on
 * `HashFunction`, as `pkg/trace/azure_trace_parser.go` does (workload-and-policies §1.1):
 * - `invocations.csv`: the first 4 header cells name the hashes and `Trigger`; counts start at
 *   the column after `Trigger` and exactly `minutes` columns are read; labels are ignored.
 * - `durations.csv` and `memory.csv`: columns found by header name (row and column order
 *   differ between the files and between samples).
 * A function missing from durations or memory is an error here; InVitro would stop later with
 * "Invalid duration or memory specification". Parse problems are values, never thrown.
 */
import type { MemoryPercentilesMiB, RuntimePercentilesMs } from './exec-spec.js';

export interface TraceFunction {
  /** Row index in invocations.csv (0 = first data row): InVitro's function order. */
  rowIndex: number;
  hashOwner: string;
  hashApp: string;
  hashFunction: string;
  trigger: string;
  invocationsPerMinute: number[];
  durationAverageMs: number;
  runtimeMs: RuntimePercentilesMs;
  memoryMiB: MemoryPercentilesMiB;
}

export interface TraceFiles {
  invocations: string;
  durations: string;
  memory: string;
}

export type TraceParseResult =
  | { kind: 'ok'; functions: TraceFunction[] }
  | { kind: 'error'; file: keyof TraceFiles; line: number; message: string };

/** InVitro reads at most one day of minute columns. */
const traceMinutesMax = 1440;

type ParseError = Extract<TraceParseResult, { kind: 'error' }>;

/** Parses and joins the three files, reading `minutes` count columns (clamped to [1, 1440]). */
export function parseTrace(files: TraceFiles, minutes: number): TraceParseResult {
  const columns = Math.min(Math.max(Math.trunc(minutes), 1), traceMinutesMax);
  const durations = parseKeyedTable(files.durations, 'durations', durationColumns);
  if ('kind' in durations) return durations;
  const memory = parseKeyedTable(files.memory, 'memory', memoryColumns);
  if ('kind' in memory) return memory;
  const rows = splitLines(files.invocations);
  if (rows.length === 0) return fail('invocations', 1, 'empty file');
  const header = rows[0].split(',');
  const at = headerIndexes(header.slice(0, 4).map((h) => h.toLowerCase()));
  if (at.hashFunction < 0 || at.hashApp < 0 || at.hashOwner < 0) {
    return fail('invocations', 1, 'header lacks HashOwner, HashApp or HashFunction');
  }
  const firstCount = at.trigger >= 0 ? at.trigger + 1 : 3;
  const functions: TraceFunction[] = [];
  for (let r = 1; r < rows.length; r++) {
    const cells = rows[r].split(',');
    const counts = parseCounts(cells, firstCount, columns);
    if (typeof counts === 'string') return fail('invocations', r + 1, counts);
    const hash = cells[at.hashFunction];
    const d = durations.get(hash);
    const m = memory.get(hash);
    if (d === undefined) return fail('durations', 0, `no row for HashFunction ${hash}`);
    if (m === undefined) return fail('memory', 0, `no row for HashFunction ${hash}`);
    functions.push({
      rowIndex: r - 1,
      hashOwner: cells[at.hashOwner],
      hashApp: cells[at.hashApp],
      hashFunction: hash,
      trigger: at.trigger >= 0 ? cells[at.trigger] : '',
      invocationsPerMinute: counts,
      durationAverageMs: d.Average,
      runtimeMs: toRuntime(d),
      memoryMiB: toMemory(m),
    });
  }
  return { kind: 'ok', functions };
}

const durationColumns = [
  'Average', 'percentile_Average_0', 'percentile_Average_1', 'percentile_Average_25',
  'percentile_Average_50', 'percentile_Average_75', 'percentile_Average_99',
  'percentile_Average_100',
] as const;

const memoryColumns = [
  'AverageAllocatedMb_pct1', 'AverageAllocatedMb_pct5', 'AverageAllocatedMb_pct25',
  'AverageAllocatedMb_pct50', 'AverageAllocatedMb_pct75', 'AverageAllocatedMb_pct95',
  'AverageAllocatedMb_pct99', 'AverageAllocatedMb_pct100',
] as const;

type Row<K extends string> = Record<K, number>;

function toRuntime(d: Row<(typeof durationColumns)[number]>): RuntimePercentilesMs {
  return {
    p0: d.percentile_Average_0, p1: d.percentile_Average_1, p25: d.percentile_Average_25,
    p50: d.percentile_Average_50, p75: d.percentile_Average_75, p99: d.percentile_Average_99,
    p100: d.percentile_Average_100,
  };
}

function toMemory(m: Row<(typeof memoryColumns)[number]>): MemoryPercentilesMiB {
  return {
    p1: m.AverageAllocatedMb_pct1, p5: m.AverageAllocatedMb_pct5,
    p25: m.AverageAllocatedMb_pct25, p50: m.AverageAllocatedMb_pct50,
    p75: m.AverageAllocatedMb_pct75, p95: m.AverageAllocatedMb_pct95,
    p99: m.AverageAllocatedMb_pct99, p100: m.AverageAllocatedMb_pct100,
  };
}

/** A numeric table keyed by its HashFunction column; columns located by header name. */
function parseKeyedTable<K extends string>(
  text: string,
  file: keyof TraceFiles,
  wanted: readonly K[],
): Map<string, Row<K>> | ParseError {
  const rows = splitLines(text);
  if (rows.length === 0) return fail(file, 1, 'empty file');
  const header = rows[0].split(',');
  const keyAt = header.indexOf('HashFunction');
  if (keyAt < 0) return fail(file, 1, 'header lacks HashFunction');
  const at = wanted.map((name) => header.indexOf(name));
  const missing = wanted.filter((_, i) => at[i] < 0);
  if (missing.length > 0) return fail(file, 1, `header lacks ${missing.join(', ')}`);
  const table = new Map<string, Row<K>>();
  for (let r = 1; r < rows.length; r++) {
    const cells = rows[r].split(',');
    const row = {} as Row<K>;
    for (let c = 0; c < wanted.length; c++) {
      const value = Number(cells[at[c]]);
      if (cells[at[c]] === undefined || cells[at[c]] === '' || !Number.isFinite(value)) {
        return fail(file, r + 1, `column ${wanted[c]}: not a number: ${cells[at[c]]}`);
      }
      row[wanted[c]] = value;
    }
    table.set(cells[keyAt], row);
  }
  return table;
}

function headerIndexes(lower: string[]) {
  return {
    hashOwner: lower.indexOf('hashowner'),
    hashApp: lower.indexOf('hashapp'),
    hashFunction: lower.indexOf('hashfunction'),
    trigger: lower.indexOf('trigger'),
  };
}

/** Exactly `columns` non-negative integer counts from `first`, or an error message. */
function parseCounts(cells: string[], first: number, columns: number): number[] | string {
  if (cells.length < first + columns) {
    return `has ${cells.length - first} minute columns, ${columns} requested`;
  }
  const counts = new Array<number>(columns);
  for (let i = 0; i < columns; i++) {
    const cell = cells[first + i];
    if (!/^\d+$/.test(cell)) return `minute column ${i}: not a count: ${cell}`;
    counts[i] = Number(cell);
  }
  return counts;
}

/** Non-empty lines; tolerates CRLF and a trailing newline. */
function splitLines(text: string): string[] {
  return text.split('\n')
    .map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l))
    .filter((l) => l !== '');
}

function fail(file: keyof TraceFiles, line: number, message: string): ParseError {
  return { kind: 'error', file, line, message };
}

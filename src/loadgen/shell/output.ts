/**
 * @module loadgen/shell/output
 * Where results go: stdout gets either the human summary or exactly one JSON object
 * (`--json`); progress and notes go to stderr; plots and CSVs go to files.
 */
import { writeFile } from 'node:fs/promises';
import { renderHtml, renderSvg, type PlotSpec } from '../core/plot.js';

export interface CommandIo {
  out(text: string): void;
  err(text: string): void;
  /** The stream progress bars draw on (only when it is a TTY). */
  progressStream: NodeJS.WriteStream;
}

export const processIo: CommandIo = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  progressStream: process.stderr,
};

export function emit(io: CommandIo, json: boolean, summary: object, human: string): void {
  io.out(json ? JSON.stringify(summary) : human);
}

/** Writes `.svg` as the bare SVG, anything else as a self-contained HTML page. */
export async function writePlot(
  path: string,
  spec: PlotSpec,
  table?: { header: string[]; rows: string[][] },
): Promise<void> {
  const text = path.toLowerCase().endsWith('.svg') ? renderSvg(spec) : renderHtml(spec, table);
  await writeFile(path, text);
}

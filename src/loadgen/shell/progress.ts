/**
 * @module loadgen/shell/progress
 * A one-line progress bar on stderr, redrawn a few times a second from a counter the bench
 * exposes. Only when stderr is a terminal: piped or captured output stays clean.
 */

const progressDefaults = Object.freeze({
  redrawMs: 250,
  barWidth: 30,
});

export interface Progress {
  stop(): void;
}

const silent: Progress = { stop: () => {} };

/** Starts redrawing `label [####....] done/total` until `stop()`; a no-op off a TTY. */
export function startProgress(
  label: string,
  total: number,
  done: () => number,
  stream: NodeJS.WriteStream = process.stderr,
): Progress {
  if (!stream.isTTY || total <= 0) return silent;
  const draw = (): void => {
    const n = Math.min(done(), total);
    const filled = Math.round((progressDefaults.barWidth * n) / total);
    const bar = '#'.repeat(filled) + '.'.repeat(progressDefaults.barWidth - filled);
    stream.write(`\r${label} [${bar}] ${n}/${total}`);
  };
  const timer = setInterval(draw, progressDefaults.redrawMs);
  timer.unref();
  return {
    stop(): void {
      clearInterval(timer);
      draw();
      stream.write('\n');
    },
  };
}

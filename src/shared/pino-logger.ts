/**
 * @module shared/pino-logger
 * The production Logger: JSON lines through pino to stderr. Level from the component config.
 *
 * Lines are written asynchronously, a turn of the event loop at a time: the lines logged in one
 * turn are joined and handed to the stream in one write when the turn ends (`TurnLineBatcher`);
 * the stream starts that write at once when none is in flight, and joins the writes handed to it
 * meanwhile into its next one. A synchronous write per line was one `write(2)` to the pipe per
 * registration on the CP's event loop (10 us each, about 3 % of the CP's busy time in a
 * registration burst); an asynchronous write per line still cost a hand-off to libuv's thread
 * pool and back per line (about 5 %). On exit, `process.exit` included, what is left is written
 * synchronously; only a SIGKILL can lose lines, those of the current turn and of the write in
 * flight.
 */
import pino from 'pino';
import type { LogFields, Logger } from './logger.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** A turn that logs more than this hands its lines to the stream at once, in several writes. */
export const lineBatchCharsMax = 65_536;

export function pinoLogger(component: string, level: LogLevel): Logger {
  const stream = pino.destination({ dest: 2, sync: false });
  const batcher = new TurnLineBatcher(stream, setImmediate);
  // pino writes the stream's own buffer synchronously on exit; this adds the current turn's lines.
  process.once('exit', () => batcher.flushSync());
  const base = pino({ level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime }, batcher);
  return wrap(base);
}

/** What the batcher writes into: sonic-boom's asynchronous write, and its synchronous flush for exit. */
export interface LineSink {
  write(text: string): unknown;
  flushSync(): void;
}

/**
 * Collects the lines of one turn and writes them as one text when `schedule` runs its callback
 * (setImmediate: after the turn's I/O callbacks). Under load a turn answers many requests, so
 * many lines share one write; a quiet process writes each line in the turn that logged it.
 */
export class TurnLineBatcher {
  private lines: string[] = [];
  private chars = 0;
  private scheduled = false;

  constructor(
    private readonly sink: LineSink,
    private readonly schedule: (fn: () => void) => unknown,
  ) {}

  write(line: string): boolean {
    this.lines.push(line);
    this.chars += line.length;
    if (this.chars > lineBatchCharsMax) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(this.onTurnEnd);
    }
    return true;
  }

  /** Hands the collected lines to the sink now. */
  flush(): void {
    if (this.lines.length === 0) return;
    const text = this.lines.length === 1 ? this.lines[0]! : this.lines.join('');
    this.lines = [];
    this.chars = 0;
    this.sink.write(text);
  }

  /** Everything collected and everything the sink holds, written before this returns (exit). */
  flushSync(): void {
    try {
      this.flush();
      this.sink.flushSync();
    } catch {
      // At exit there is no one left to tell: a closed stderr loses the lines either way.
    }
  }

  private readonly onTurnEnd = (): void => {
    this.scheduled = false;
    this.flush();
  };
}

function wrap(p: pino.Logger): Logger {
  return {
    debug: (event: string, fields?: LogFields) => p.debug(fields ?? {}, event),
    info: (event: string, fields?: LogFields) => p.info(fields ?? {}, event),
    warn: (event: string, fields?: LogFields) => p.warn(fields ?? {}, event),
    error: (event: string, fields?: LogFields) => p.error(fields ?? {}, event),
    isDebugEnabled: () => p.isLevelEnabled('debug'),
    child: (bindings: LogFields) => wrap(p.child(bindings)),
  };
}

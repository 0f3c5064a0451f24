/**
 * @module shared/pino-logger
 * The production Logger: JSON lines through pino to stderr. Level from the component config.
 *
 * Lines are written asynchronously: a line goes out on the next write the stream starts (at
 * once when none is in flight), and lines logged while one is in flight go out together in the
 * next. A synchronous write per line was one `write(2)` to the pipe per registration on the
 * CP's event loop (10 us each, about 3 % of the CP's busy time in a registration burst). On
 * exit, `process.exit` included, pino flushes what is left synchronously; only a SIGKILL can
 * lose the lines of the write in flight.
 */
import pino from 'pino';
import type { LogFields, Logger } from './logger.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export function pinoLogger(component: string, level: LogLevel): Logger {
  const base = pino({ level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 2, sync: false }));
  return wrap(base);
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

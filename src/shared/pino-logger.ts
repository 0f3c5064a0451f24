/**
 * @module shared/pino-logger
 * The production Logger: JSON lines through pino to stderr. Level from the component config.
 */
import pino from 'pino';
import type { LogFields, Logger } from './logger.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export function pinoLogger(component: string, level: LogLevel): Logger {
  const base = pino({ level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination(2));
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

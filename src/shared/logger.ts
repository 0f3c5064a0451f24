/**
 * @module shared/logger
 * The Logger port: structured events named `noun.verb_past` with fields. Production writes JSON
 * lines through pino; tests and the simulator record events in memory.
 */

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  isDebugEnabled(): boolean;
  child(bindings: LogFields): Logger;
}

export interface RecordedLog {
  level: 'debug' | 'info' | 'warn' | 'error';
  event: string;
  fields: LogFields;
}

/** In-memory logger for tests and the simulator. `limit` bounds memory: old entries drop. */
export function memoryLogger(records: RecordedLog[] = [], limit = 100_000, bindings: LogFields = {}): Logger {
  const push = (level: RecordedLog['level'], event: string, fields: LogFields = {}): void => {
    if (records.length >= limit) records.shift();
    records.push({ level, event, fields: { ...bindings, ...fields } });
  };
  return {
    debug: (e, f) => push('debug', e, f),
    info: (e, f) => push('info', e, f),
    warn: (e, f) => push('warn', e, f),
    error: (e, f) => push('error', e, f),
    isDebugEnabled: () => true,
    child: (b) => memoryLogger(records, limit, { ...bindings, ...b }),
  };
}

export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  isDebugEnabled: () => false,
  child: () => silentLogger,
};

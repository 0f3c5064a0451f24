/**
 * @module config/compile
 * Options (all optional, from flags, env or a config file) compile into fully specified
 * configs. Errors name the key, the value and the legal range.
 */
import { controlPlaneDefaults, dataPlaneDefaults, workerDefaults } from './defaults.js';

export class ConfigError extends Error {
  readonly code = 'CM_ERR_CONFIG';
}

type Widen<T> = T extends number ? number : T extends string ? string : T extends boolean ? boolean : T;
type Mutable<T> = { -readonly [K in keyof T]: Widen<T[K]> };

export type ControlPlaneConfig = Mutable<typeof controlPlaneDefaults> & { logLevel: string };
export type DataPlaneConfig = Mutable<typeof dataPlaneDefaults> & { id: string; logLevel: string };
export type WorkerConfig = Mutable<typeof workerDefaults> & {
  id: string;
  stateDir: string;
  logLevel: string;
  count: number;
};

export function compile<T extends object>(
  name: string,
  defaults: T,
  options: Partial<Record<keyof T, unknown>>,
  ranges: Partial<Record<keyof T, readonly [number, number]>> = {},
): T {
  const out: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
  for (const [key, raw] of Object.entries(options)) {
    if (raw === undefined) continue;
    if (!(key in defaults)) throw new ConfigError(`${name}: unknown option ${key}`);
    const def = (defaults as Record<string, unknown>)[key];
    out[key] = coerce(name, key, def, raw, (ranges as Record<string, readonly [number, number]>)[key]);
  }
  return out as T;
}

function coerce(name: string, key: string, def: unknown, raw: unknown, range?: readonly [number, number]): unknown {
  if (typeof def === 'number') {
    const n = typeof raw === 'number' ? raw : Number(raw);
    if (!Number.isFinite(n)) throw new ConfigError(`${name}: ${key} must be a number, got ${JSON.stringify(raw)}`);
    if (range && (n < range[0] || n > range[1])) {
      throw new ConfigError(`${name}: ${key} must be in [${range[0]}, ${range[1]}], got ${n}`);
    }
    return n;
  }
  if (typeof def === 'boolean') return raw === true || raw === 'true' || raw === '1';
  if (Array.isArray(def)) return raw;
  return String(raw);
}

export const portRange = [0, 65_535] as const;

/**
 * @module worker/runtime/ephemeral-ports
 * Does the sandbox port range overlap the kernel's ephemeral range?
 *
 * The kernel gives every outgoing connection a local port from `net.ipv4.ip_local_port_range`
 * (32768-60999 by default), skipping the ports in `net.ipv4.ip_local_reserved_ports`. A sandbox
 * port inside that range and not reserved can be taken by any outgoing connection of the host
 * between the worker's free-port check and the sandbox's own bind, and the sandbox then dies at
 * start with EADDRINUSE. The worker's default range (20000-29999) lies below it; a range an
 * operator picks is checked at start-up and named in a warning with the sysctl that fixes it.
 *
 * The parsing and the arithmetic are pure; `readHostPortRanges` is the only read of /proc.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from '../../shared/logger.js';

export type PortRange = readonly [number, number];

export const ephemeralRangeFile = '/proc/sys/net/ipv4/ip_local_port_range';
export const reservedPortsFile = '/proc/sys/net/ipv4/ip_local_reserved_ports';

/** `ip_local_port_range`: two numbers separated by white space, e.g. "32768\t60999". */
export function parseEphemeralRange(text: string): PortRange | undefined {
  const parts = text.trim().split(/\s+/);
  if (parts.length !== 2) return undefined;
  const [first, last] = parts.map(portNumber);
  if (first === undefined || last === undefined || first > last) return undefined;
  return [first, last];
}

/** `ip_local_reserved_ports`: a comma-separated list of ports and ranges, e.g. "8080,20000-29999"; empty when none. */
export function parseReservedPorts(text: string): PortRange[] | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  const ranges: PortRange[] = [];
  for (const item of trimmed.split(',')) {
    const [a, b, extra] = item.split('-');
    const first = portNumber(a);
    const last = b === undefined ? first : portNumber(b);
    if (first === undefined || last === undefined || extra !== undefined || first > last) return undefined;
    ranges.push([first, last]);
  }
  return ranges;
}

export interface EphemeralOverlap {
  /** The part of the sandbox range inside the ephemeral range. */
  overlap: PortRange;
  /** How many ports of `overlap` are not reserved (the ones an outgoing connection can take). */
  unreservedPorts: number;
}

/**
 * The ports of `sandbox` that outgoing connections can take, or undefined when there are none
 * (no overlap, or every overlapping port is reserved).
 */
export function ephemeralOverlap(
  sandbox: PortRange,
  ephemeral: PortRange,
  reserved: readonly PortRange[],
): EphemeralOverlap | undefined {
  const first = Math.max(sandbox[0], ephemeral[0]);
  const last = Math.min(sandbox[1], ephemeral[1]);
  if (first > last) return undefined;
  let reservedPorts = 0;
  for (const r of mergeRanges(reserved)) {
    const lo = Math.max(first, r[0]);
    const hi = Math.min(last, r[1]);
    if (lo <= hi) reservedPorts += hi - lo + 1;
  }
  const unreservedPorts = last - first + 1 - reservedPorts;
  return unreservedPorts === 0 ? undefined : { overlap: [first, last], unreservedPorts };
}

export interface HostPortRanges {
  ephemeral: PortRange;
  reserved: PortRange[];
}

/** The host's ephemeral and reserved ports, or undefined where /proc does not say (not Linux, unreadable, unparsable). */
export function readHostPortRanges(): HostPortRanges | undefined {
  const ephemeral = parseEphemeralRange(readOrEmpty(ephemeralRangeFile));
  const reserved = parseReservedPorts(readOrEmpty(reservedPortsFile)) ?? [];
  return ephemeral === undefined ? undefined : { ephemeral, reserved };
}

/**
 * Logs `worker.sandbox_ports_ephemeral` (warn) when outgoing connections can take sandbox ports,
 * with the sysctl that reserves them. Returns whether it warned.
 */
export function warnOnEphemeralOverlap(sandbox: PortRange, host: HostPortRanges | undefined, log: Logger): boolean {
  const found = host === undefined ? undefined : ephemeralOverlap(sandbox, host.ephemeral, host.reserved);
  if (found === undefined) return false;
  const [first, last] = found.overlap;
  log.warn('worker.sandbox_ports_ephemeral', {
    sandboxPortRange: sandbox.join('-'),
    ephemeralPortRange: host!.ephemeral.join('-'),
    overlap: `${first}-${last}`,
    unreservedPorts: found.unreservedPorts,
    effect: 'a sandbox can fail to start with EADDRINUSE when an outgoing connection took its port',
    fix: `pick --sandbox-port-range below ${host!.ephemeral[0]}, or reserve the ports: sysctl -w net.ipv4.ip_local_reserved_ports=${first}-${last}`,
  });
  return true;
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function portNumber(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65_535 ? n : undefined;
}

/** Sorted, overlapping and adjacent ranges joined (the reserved list may repeat a port). */
function mergeRanges(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [a, b] of sorted) {
    const top = out[out.length - 1];
    if (top !== undefined && a <= top[1] + 1) top[1] = Math.max(top[1], b);
    else out.push([a, b]);
  }
  return out;
}

/**
 * @module fuzz/checks
 * What the live fuzzer holds the cluster to: a management reply is 2xx or 4xx with a JSON body
 * (the Dirigent-compatible form routes answer text on 200/409, as Dirigent does), every component
 * stays alive, and its resident memory stays bounded.
 */
import { readFileSync } from 'node:fs';

/** Resident memory a component may reach at most under fuzzing. */
export const rssBytesMax = 512 * 1024 * 1024;
/** Growth over the resident memory at start that counts as unbounded. */
export const rssGrowthFactorMax = 4;
/** Below this, growth is not judged (a 60 MiB process may well double while warming up). */
export const rssGrowthFloorBytes = 256 * 1024 * 1024;

export interface Reply {
  status: number;
  contentType: string;
  text: string;
}

/** null when the reply is acceptable, else why not. */
export function checkManagementReply(method: string, path: string, r: Reply): string | null {
  if (r.status >= 500 || r.status < 200 || (r.status >= 300 && r.status < 400)) return `status ${r.status}`;
  if (method.toUpperCase() === 'HEAD' || r.status === 204) return null; // no body by definition
  const route = path.split('?')[0];
  const formRoute = route === '/' || route === '/registerService';
  if (formRoute && (r.status === 200 || r.status === 409)) return null;
  if (route === '/metrics' && r.status === 200) return null;
  if (!/^application\/json\b/i.test(r.contentType)) return `content-type ${JSON.stringify(r.contentType)} is not JSON`;
  try {
    JSON.parse(r.text);
  } catch {
    return `body is not JSON: ${JSON.stringify(r.text.slice(0, 200))}`;
  }
  return null;
}

/** VmRSS of a live process in bytes, or null when it is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** null when `now` is within bounds of `start`, else why not. */
export function checkRss(startBytes: number, nowBytes: number): string | null {
  if (nowBytes > rssBytesMax) return `RSS ${mib(nowBytes)} MiB over the limit of ${mib(rssBytesMax)} MiB`;
  if (nowBytes > rssGrowthFloorBytes && nowBytes > startBytes * rssGrowthFactorMax) {
    return `RSS grew from ${mib(startBytes)} MiB to ${mib(nowBytes)} MiB (over ${rssGrowthFactorMax}x)`;
  }
  return null;
}

function mib(b: number): number {
  return Math.round(b / 1024 / 1024);
}

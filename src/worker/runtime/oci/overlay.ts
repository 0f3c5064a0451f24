/**
 * @module worker/runtime/oci/overlay
 * The per-sandbox root: an overlay of the shared, read-only unpacked image (lower) and an
 * empty per-sandbox upper/work pair. Mounting costs ~1 ms and copies nothing, and whatever runc
 * creates in the root (mount points such as /proc or /etc/resolv.conf) lands in the upper
 * layer, so the shared image stays byte for byte as unpacked.
 */
import { readFile } from 'node:fs/promises';
import { parseMountPoints } from './mount-points.js';
import { runTool } from './tools.js';

/** mount/umount of an overlay take a few ms; this bounds a hung filesystem. */
const mountTimeoutMs = 10_000;

export interface OverlayDirs {
  lower: string;
  upper: string;
  work: string;
  target: string;
}

/** Mounts the overlay, or says why it could not. */
export async function mountOverlay(dirs: OverlayDirs): Promise<string | undefined> {
  for (const path of [dirs.lower, dirs.upper, dirs.work]) {
    // The option string is comma- and colon-separated: such a path would change its meaning.
    if (/[,:\\]/.test(path)) return `path '${path}' cannot be an overlay option (',', ':' or '\\')`;
  }
  const options = `lowerdir=${dirs.lower},upperdir=${dirs.upper},workdir=${dirs.work}`;
  const r = await runTool('mount', ['-t', 'overlay', 'overlay', '-o', options, dirs.target], mountTimeoutMs);
  return r.ok ? undefined : `overlay mount failed: ${r.reason}`;
}

/** Unmounts; a lazy detach when the plain one fails (a process we cannot see holds it). */
export async function unmountOverlay(target: string): Promise<string | undefined> {
  const r = await runTool('umount', [target], mountTimeoutMs);
  if (r.ok) return undefined;
  const lazy = await runTool('umount', ['-l', target], mountTimeoutMs);
  return lazy.ok ? undefined : `umount ${target}: ${r.reason}`;
}

/** Mount points at or below `dir` in our mount namespace, deepest first. */
export async function mountsBelow(dir: string): Promise<string[]> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  return parseMountPoints(mountinfo)
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

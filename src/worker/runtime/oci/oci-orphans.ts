/**
 * @module worker/runtime/oci/oci-orphans
 * What a previous run on the same state dir may have left when the worker died: containers in
 * runc's state root (still running: `runc run` died, the container did not), overlay mounts
 * and bundle dirs; and our cgroup parent directories, removed again by close().
 * One runtime owns a state dir at a time.
 */
import { mkdir, readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { OciContext } from './oci-container.js';
import { mountsBelow, unmountOverlay } from './overlay.js';

export interface OciReapResult {
  containers: number;
  mounts: number;
}

/** Deletes every container runc knows in our root, unmounts and removes every bundle. */
export async function reapOciOrphans(ctx: OciContext): Promise<OciReapResult> {
  const listed = await ctx.runc.list();
  if (typeof listed === 'string') throw new Error(listed);
  for (const container of listed) {
    // --force: kill and wait in one call. Its >= 100 ms poll only matters on the hot path.
    const r = await ctx.runc.delete(container.id, { force: true });
    if (!r.ok) ctx.log.warn('sandbox.orphan_delete_failed', { sandboxId: container.id, reason: r.reason });
  }
  const bundlesDir = join(ctx.stateDir, 'bundles');
  const mounts = await mountsBelow(bundlesDir);
  for (const mount of mounts) {
    const failed = await unmountOverlay(mount);
    if (failed !== undefined) throw new Error(`orphan mount: ${failed}`);
  }
  await rm(bundlesDir, { recursive: true, force: true });
  await mkdir(bundlesDir, { recursive: true });
  if (listed.length + mounts.length > 0) {
    ctx.log.warn('sandbox.orphans_reaped', { containers: listed.length, mounts: mounts.length });
  }
  return { containers: listed.length, mounts: mounts.length };
}

/**
 * Removes `<own cgroup>/<parent>` in every hierarchy, with any empty sandbox cgroups left in
 * it. Best effort: a cgroup with a live process in it stays, and says so in the log.
 */
export async function removeCgroupParents(ctx: OciContext): Promise<void> {
  for (const hierarchy of ctx.cgroupDirs) {
    const parent = join(hierarchy.dir, ctx.cgroupParent);
    let children: string[];
    try {
      children = (await readdir(parent, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      continue; // never made in this hierarchy
    }
    try {
      for (const child of children) await rmdir(join(parent, child));
      await rmdir(parent);
    } catch (err) {
      ctx.log.warn('sandbox.cgroup_remove_failed', { dir: parent, err: (err as Error).message });
    }
  }
}

/**
 * @module worker/runtime/containerd/cgroup-parents
 * runc removes a container's own cgroups but not the parent directory its relative cgroupsPath
 * (`<owner>/<container id>`) made below the shim's cgroups, one per hierarchy (cgroup2 included).
 * We learn where those parents are from the first task's /proc/<pid>/cgroup (that works for a
 * private and a shared containerd alike) and rmdir them on close.
 */
import { existsSync } from 'node:fs';
import { readFile, rmdir } from 'node:fs/promises';
import { join } from 'node:path';

const cgroupRoot = '/sys/fs/cgroup';

/**
 * Parent directories of a container's cgroups, from the text of /proc/<pid>/cgroup: every v1
 * line whose path ends in `/<owner>/<containerId>`. Pure.
 */
export function cgroupParentDirs(
  procCgroup: string,
  owner: string,
  containerId: string,
  unifiedRoot = join(cgroupRoot, 'unified'),
): string[] {
  const suffix = `/${owner}/${containerId}`;
  const dirs: string[] = [];
  for (const line of procCgroup.trim().split('\n')) {
    const [, controllers, path] = line.split(':');
    if (controllers === undefined || !path?.endsWith(suffix)) continue;
    const parent = path.slice(0, -`/${containerId}`.length);
    // '' is the cgroup2 line: runc makes a directory there too, even on a hybrid host.
    if (controllers === '') dirs.push(join(unifiedRoot, parent));
    else dirs.push(join(cgroupRoot, controllers.replace(/^name=/, ''), parent));
  }
  return dirs;
}

export async function readCgroupParentDirs(pid: number, owner: string, containerId: string): Promise<string[]> {
  const text = await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
  // Hybrid hosts mount cgroup2 at unified/; a cgroup2-only host at the root itself.
  const unifiedRoot = existsSync(join(cgroupRoot, 'unified')) ? join(cgroupRoot, 'unified') : cgroupRoot;
  return cgroupParentDirs(text, owner, containerId, unifiedRoot);
}

/** rmdir each; a parent still holding a child (EBUSY) or already gone is left alone. */
export async function removeCgroupParentDirs(dirs: Iterable<string>): Promise<void> {
  for (const dir of dirs) await rmdir(dir).catch(() => {});
}

/**
 * @module worker/runtime/containerd/cgroup-parents
 * runc removes a container's own cgroups but not the parent directory its relative cgroupsPath
 * (`<owner>/<container id>`) made below the shim's cgroups, one per v1 hierarchy. We learn where
 * those parents are from the first sandbox's /proc/<pid>/cgroup (that works for a private and a
 * shared containerd alike) and rmdir them on close.
 */
import { readFile, rmdir } from 'node:fs/promises';
import { join } from 'node:path';

const cgroupRoot = '/sys/fs/cgroup';

/**
 * Parent directories of a container's cgroups, from the text of /proc/<pid>/cgroup: every v1
 * line whose path ends in `/<owner>/<containerId>`. Pure.
 */
export function cgroupParentDirs(procCgroup: string, owner: string, containerId: string): string[] {
  const suffix = `/${owner}/${containerId}`;
  const dirs: string[] = [];
  for (const line of procCgroup.trim().split('\n')) {
    const [, controllers, path] = line.split(':');
    if (!controllers || !path?.endsWith(suffix)) continue; // '' = the cgroup2 line
    const hierarchy = controllers.startsWith('name=') ? controllers.slice('name='.length) : controllers;
    dirs.push(join(cgroupRoot, hierarchy, path.slice(0, -`/${containerId}`.length)));
  }
  return dirs;
}

export async function readCgroupParentDirs(pid: number, owner: string, containerId: string): Promise<string[]> {
  const text = await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
  return cgroupParentDirs(text, owner, containerId);
}

/** rmdir each; a parent still holding a child (EBUSY) or already gone is left alone. */
export async function removeCgroupParentDirs(dirs: Iterable<string>): Promise<void> {
  for (const dir of dirs) await rmdir(dir).catch(() => {});
}

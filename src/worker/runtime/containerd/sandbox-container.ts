/**
 * @module worker/runtime/containerd/sandbox-container
 * The containerd calls for ONE sandbox, without runtime bookkeeping:
 *
 *   start: Leases.Create -> Snapshots.Prepare(key = container id, parent = image top chain id)
 *          -> Containers.Create(runc v2, spec as an Any) -> Leases.Delete
 *          -> Tasks.Create(rootfs mounts, stdout+stderr appended to a log file) -> Tasks.Start
 *   stop:  Tasks.Wait armed, Tasks.Kill(SIGKILL, all) -> wait -> Tasks.Delete
 *          -> Containers.Delete -> Snapshots.Remove          (NOT_FOUND = already gone)
 *
 * The lease covers the window in which the fresh snapshot is referenced by nothing: without it
 * containerd's GC sometimes removed the snapshot before the container pointed at it.
 */
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { Containers } from '../../../gen/containerd/services/containers/v1/containers_pb.js';
import { Leases } from '../../../gen/containerd/services/leases/v1/leases_pb.js';
import { Snapshots } from '../../../gen/containerd/services/snapshots/v1/snapshots_pb.js';
import { Tasks } from '../../../gen/containerd/services/tasks/v1/tasks_pb.js';
import type { Logger } from '../../../shared/logger.js';
import { errorText, ignoreNotFound, isNotFound, type ContainerdClient } from './client.js';
import { snapshotter } from './image-import.js';
import { cpuLimit } from '../cgroup-backend.js';
import type { OciSpec } from './spec.js';

export const runcRuntimeName = 'io.containerd.runc.v2';
export const specTypeUrl = 'types.containerd.io/opencontainers/runtime-spec/1/Spec';
/** Label naming the worker (state dir) a container belongs to, so start-up cleans only its own. */
export const ownerLabel = 'dirigent.owner';
export const sandboxLabel = 'dirigent.sandbox';
/** A per-sandbox lease left by a crashed worker expires after this. */
const sandboxLeaseExpireMs = 600_000;
/** SIGKILL: a sandbox gets no grace (DESIGN §7: teardown is fast and total). */
const sigkill = 9;
/** Bound on waiting for a SIGKILLed task to be reaped; past it something is badly wrong. */
const killWaitMsMax = 10_000;

export interface ContainerStart {
  containerId: string;
  sandboxId: string;
  owner: string;
  image: string;
  /** Snapshot parent: the image's top chain id. */
  parent: string;
  spec: OciSpec;
  /** Absolute path of the log file (stdout and stderr). */
  logPath: string;
  wallNowMs: number;
}

/**
 * Creates and starts the container; resolves with the task's host pid (also handed to
 * `onTaskCreated` as soon as containerd knows it). On failure it throws,
 * and whatever it created is removed by `stopContainer` (the caller always calls it).
 */
export async function startContainer(
  client: ContainerdClient,
  start: ContainerStart,
  onTaskCreated: (pid: number) => void,
): Promise<number> {
  const { containerId } = start;
  const lease = `dirigent-sb-${containerId}-${randomBytes(4).toString('hex')}`;
  const expireAt = new Date(start.wallNowMs + sandboxLeaseExpireMs).toISOString();
  await client.unary(Leases.method.create, { id: lease, labels: { 'containerd.io/gc.expire': expireAt } });
  let mounts;
  try {
    const prepared = await client.unary(Snapshots.method.prepare, { snapshotter, key: containerId, parent: start.parent }, { lease });
    mounts = prepared.mounts;
    const spec = { typeUrl: specTypeUrl, value: Buffer.from(JSON.stringify(start.spec)) };
    const container = {
      id: containerId,
      labels: { [ownerLabel]: start.owner, [sandboxLabel]: start.sandboxId },
      image: start.image,
      runtime: { name: runcRuntimeName },
      spec,
      snapshotter,
      snapshotKey: containerId,
    };
    await client.unary(Containers.method.create, { container }, { lease });
  } finally {
    await client.unary(Leases.method.delete, { id: lease }).catch(() => {}); // it expires anyway
  }
  // The runc shim appends both streams to the file (no FIFOs for us to drain); a URL, so any path works.
  const stdio = pathToFileURL(start.logPath).href;
  const task = await client.unary(Tasks.method.create, { containerId, rootfs: mounts, stdout: stdio, stderr: stdio });
  // Before Start: the init process may exit before Start's answer arrives, and its exit event
  // is matched by pid.
  onTaskCreated(task.pid);
  const started = await client.unary(Tasks.method.start, { containerId });
  return started.pid;
}

/** Removes the task (killing every process first), the container and its snapshot. Idempotent. */
export async function stopContainer(client: ContainerdClient, containerId: string, log: Logger): Promise<void> {
  const waited = client
    .unary(Tasks.method.wait, { containerId }, { timeoutMs: killWaitMsMax })
    .then(() => true, (err: unknown) => isNotFound(err));
  try {
    await client.unary(Tasks.method.kill, { containerId, signal: sigkill, all: true });
  } catch (err) {
    // NOT_FOUND: no task; FAILED_PRECONDITION "process already finished": it died by itself.
    if (!isNotFound(err)) log.info('sandbox.kill_skipped', { containerId, err: errorText(err) });
  }
  if (!(await waited)) log.warn('sandbox.kill_wait_failed', { containerId });
  await ignoreNotFound(client.unary(Tasks.method.delete, { containerId }));
  await ignoreNotFound(client.unary(Containers.method.delete, { id: containerId }));
  // GC may have removed the snapshot already once the container was gone.
  await ignoreNotFound(client.unary(Snapshots.method.remove, { snapshotter, key: containerId }));
}

/** Stops every container of `owner` a previous run left; returns how many. */
export async function removeLeftovers(client: ContainerdClient, owner: string, log: Logger): Promise<number> {
  const listed = await client.unary(Containers.method.list, { filters: [`labels."${ownerLabel}"==${owner}`] });
  for (const container of listed.containers) {
    try {
      await stopContainer(client, container.id, log);
    } catch (err) {
      log.warn('sandbox.leftover_remove_failed', { containerId: container.id, err: errorText(err) });
    }
  }
  return listed.containers.length;
}

const linuxResourcesTypeUrl = 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources';

/** Lowers a running task's CPU quota to the function's own (the end of its start-up boost). */
export async function endStartupBoost(client: ContainerdClient, containerId: string, cpuMillis: number): Promise<void> {
  const resources = { typeUrl: linuxResourcesTypeUrl, value: Buffer.from(JSON.stringify({ cpu: cpuLimit(cpuMillis) })) };
  await client.unary(Tasks.method.update, { containerId, resources });
}

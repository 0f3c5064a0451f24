/**
 * @module worker/runtime/oci/oci-container
 * One image sandbox's container, without runtime bookkeeping: its bundle (overlay root and
 * config.json), the foreground `runc run` child, the stop that ends only when the container is
 * gone, why it exited, and the removal of its runc state and bundle. `oci-runtime.ts` owns
 * ports, uids, the sandbox map and the lifecycle around these steps.
 *
 *   <stateDir>/bundles/<id>/config.json   the OCI spec (bundle-spec.ts)
 *   <stateDir>/bundles/<id>/rootfs/       overlay mount: image (lower) + upper/ + work/
 *   <stateDir>/bundles/<id>/pid           the container's init pid, written by runc
 *   <stateDir>/logs/<id>.log              the container's stdout and stderr, and runc's
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Clock } from '../../../shared/clock.js';
import type { Logger } from '../../../shared/logger.js';
import type { ImageConfig } from '../image/image-cache.js';
import {
  openSandboxLog,
  spawnSandboxProcess,
  type ExitInfo,
  type SpawnedProcess,
} from '../process-spawn.js';
import type { SandboxSpec } from '../runtime.js';
import { buildBundleSpec } from './bundle-spec.js';
import { oomCounterFile, parseOomKills, type CgroupHierarchyDir } from './cgroup-dirs.js';
import { mountOverlay, unmountOverlay } from './overlay.js';
import type { Runc } from './runc.js';
import { lastLine, toolSearchPath } from './tools.js';

/** After `runc kill` succeeded, the run child exits within ms; past this something is wrong. */
const exitWaitMsMax = 5_000;
/** `runc kill` before runc has written the container's state fails; retry this often. */
const killRetryMs = 5;
/** Total bound on getting a container to exit before we give up and kill runc itself. */
const stopWaitMsMax = 10_000;
/** runc exits 128+N when the container's init died of signal N. */
const signalExitBase = 128;
/** runc writes the pid file a moment after the process started; past this, no pid is known. */
const pidFileWaitMsMax = 1_000;
const pidFilePollMs = 2;

export interface OciContext {
  stateDir: string;
  runc: Runc;
  host: string;
  pidsMax: number;
  tmpMiB: number;
  /** CPU quota until ready when the function's is smaller; 0 = none. */
  startupCpuMillis: number;
  /** `dirigent-<hash>`: our parent below the worker's own cgroups. */
  cgroupParent: string;
  cgroupDirs: readonly CgroupHierarchyDir[];
  /** The members of `hostBindFiles` present on this host, found once at start-up. */
  hostFiles: readonly string[];
  clock: Clock;
  log: Logger;
}

export interface OciPaths {
  bundleDir: string;
  rootfs: string;
  upper: string;
  work: string;
  pidFile: string;
  log: string;
}

export function ociPaths(stateDir: string, sandboxId: string): OciPaths {
  const bundleDir = join(stateDir, 'bundles', sandboxId);
  return {
    bundleDir,
    rootfs: join(bundleDir, 'rootfs'),
    upper: join(bundleDir, 'upper'),
    work: join(bundleDir, 'work'),
    pidFile: join(bundleDir, 'pid'),
    log: join(stateDir, 'logs', `${sandboxId}.log`),
  };
}

export interface BundleInput {
  spec: SandboxSpec;
  image: ImageConfig;
  rootfsDir: string;
  uid: number;
  port: number;
}

/**
 * Writes config.json and mounts the overlay root. On failure returns the reason; the caller
 * still runs `removeBundle` (a half-made bundle dir may exist; nothing is mounted).
 */
export async function prepareBundle(ctx: OciContext, input: BundleInput): Promise<string | undefined> {
  const { sandboxId } = input.spec;
  const paths = ociPaths(ctx.stateDir, sandboxId);
  const built = buildBundleSpec({
    sandboxId,
    fn: input.spec.fn,
    image: input.image,
    uid: input.uid,
    host: ctx.host,
    port: input.port,
    pidsMax: ctx.pidsMax,
    tmpMiB: ctx.tmpMiB,
    startupCpuMillis: ctx.startupCpuMillis,
    cgroupsPath: containerCgroupsPath(ctx, sandboxId),
    hostFiles: ctx.hostFiles,
  });
  if (!built.ok) return built.reason;
  for (const dir of [paths.rootfs, paths.upper, paths.work]) await mkdir(dir, { recursive: true });
  await writeFile(join(paths.bundleDir, 'config.json'), JSON.stringify(built.spec));
  const lower = input.rootfsDir;
  return mountOverlay({ lower, upper: paths.upper, work: paths.work, target: paths.rootfs });
}

export function containerCgroupsPath(ctx: OciContext, sandboxId: string): string {
  return `${ctx.cgroupParent}/${sandboxId}`;
}

export type StartResult = { ok: true; run: SpawnedProcess } | { ok: false; reason: string };

/** Spawns the foreground `runc run`: runc's exit is the container's. */
export async function startContainer(ctx: OciContext, sandboxId: string): Promise<StartResult> {
  const paths = ociPaths(ctx.stateDir, sandboxId);
  const argv = ctx.runc.runArgv(paths.bundleDir, sandboxId, paths.pidFile);
  const log = await openSandboxLog(paths.log);
  const nowMs = (): number => ctx.clock.nowMs();
  const env = { PATH: toolSearchPath };
  const result = await spawnSandboxProcess({ argv, cwd: paths.bundleDir, env, log, nowMs });
  if (!result.ok) {
    await log.close();
    return { ok: false, reason: `${ctx.runc.binary}: ${result.reason}` };
  }
  return { ok: true, run: result.spawned };
}

/** The container's init pid as runc wrote it, or undefined. */
export async function readContainerPid(ctx: OciContext, sandboxId: string): Promise<number | undefined> {
  // `runc run` writes the pid file after it has started the process, so a server that listens
  // at once can be ready before the file exists: wait for it, briefly.
  const path = ociPaths(ctx.stateDir, sandboxId).pidFile;
  const t0Ms = ctx.clock.nowMs();
  for (;;) {
    try {
      const pid = Number((await readFile(path, 'utf8')).trim());
      if (Number.isInteger(pid) && pid > 0) return pid;
    } catch {
      // Not written yet (runc writes it whole, by a rename).
    }
    if (ctx.clock.nowMs() - t0Ms > pidFileWaitMsMax) return undefined;
    await sleep(pidFilePollMs);
  }
}

/**
 * Kills the container and waits for `runc run` to exit (the whole pid namespace dies with its
 * init). Retries `runc kill` while runc has not yet recorded the container. True when it exited.
 */
export async function stopContainer(ctx: OciContext, sandboxId: string, run: SpawnedProcess): Promise<boolean> {
  let exited = false;
  void run.exited.then(() => (exited = true));
  await Promise.resolve(); // lets the line above see an exit that already happened (a crash)
  const deadlineMs = ctx.clock.nowMs() + stopWaitMsMax;
  while (!exited && ctx.clock.nowMs() < deadlineMs) {
    const killed = await ctx.runc.kill(sandboxId);
    const waitMs = killed.ok ? exitWaitMsMax : killRetryMs;
    await exitOrTimeout(run.exited, waitMs);
  }
  if (exited) return true;
  ctx.log.error('sandbox.kill_stuck', { sandboxId, pid: run.pid });
  run.child.kill('SIGKILL'); // last resort: the container may survive, runc delete --force at start-up
  return false;
}

/** Resolves at the exit or after `ms`; the timer never outlives the race. */
function exitOrTimeout(exited: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise((done) => (timer = setTimeout(done, ms)));
  return Promise.race([exited, timeout]).finally(() => clearTimeout(timer));
}

/** Why the container exited: an OOM kill (read before `runc delete` removes the cgroup), a signal, or its code. */
export async function describeContainerExit(
  ctx: OciContext,
  sandboxId: string,
  memoryMiB: number,
  run: SpawnedProcess,
  info: ExitInfo,
): Promise<string> {
  const counter = oomCounterFile(ctx.cgroupDirs, containerCgroupsPath(ctx, sandboxId));
  if (counter !== undefined) {
    const kills = await readFile(counter, 'utf8').then(parseOomKills, () => 0);
    if (kills > 0) return `out of memory: killed at its ${memoryMiB} MiB limit`;
  }
  // runc decorates its own errors (time=... level=error msg="..."): quote the message only.
  const line = lastLine(run.stderrTail.lastLine());
  const code = info.code ?? 0;
  const signal = Object.entries(osConstants.signals).find(([, n]) => n === code - signalExitBase)?.[0];
  let what = info.signal !== null ? `signal ${info.signal}` : `exit code ${code}`;
  if (info.signal === null && signal !== undefined) what = `signal ${signal}`;
  return line === '' ? what : `${what}: ${line}`;
}

/**
 * Removes runc's record (and with it the container's cgroups), and in parallel unmounts and
 * removes the bundle: the container is gone, so neither needs the other.
 */
export async function removeContainer(
  ctx: OciContext,
  sandboxId: string,
  opts: { spawned: boolean; mounted: boolean },
): Promise<void> {
  await Promise.all([
    opts.spawned ? removeContainerRecord(ctx, sandboxId) : undefined,
    removeContainerBundle(ctx, sandboxId, opts.mounted),
  ]);
}

async function removeContainerRecord(ctx: OciContext, sandboxId: string): Promise<void> {
  const deleted = await ctx.runc.delete(sandboxId, { force: false });
  // "does not exist" is fine: runc failed before it recorded the container.
  if (!deleted.ok && !/does not exist/.test(deleted.stderr)) {
    ctx.log.warn('sandbox.runc_delete_failed', { sandboxId, reason: deleted.reason });
  }
}

async function removeContainerBundle(ctx: OciContext, sandboxId: string, mounted: boolean): Promise<void> {
  const paths = ociPaths(ctx.stateDir, sandboxId);
  if (mounted) {
    const failed = await unmountOverlay(paths.rootfs);
    if (failed !== undefined) {
      // Never recurse into a mounted root: leave it for the start-up reaper.
      ctx.log.error('sandbox.unmount_failed', { sandboxId, reason: failed });
      return;
    }
  }
  await rm(paths.bundleDir, { recursive: true, force: true });
}

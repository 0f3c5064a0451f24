/**
 * @module worker/runtime/sandbox-launchers
 * Launchers: shells spawned ahead of time that already sit in cgroups of their own and wait on
 * stdin for the command of the next sandbox.
 *
 * Why: on this kernel a write to a cgroup v1 cgroup.procs waits for an RCU grace period
 * (measured ~14 ms after an idle pause; back-to-back writes share one), which made the join
 * prologue the largest part of an isolated cold start. A launcher pays it before any create
 * asks. create() takes one, renames its cgroups to the sandbox's id and writes the limits
 * (plain file operations, ~0.3 ms) and sends ONE line that the shell evals: stdin from /dev/null, stdout appended to
 * the sandbox's log, the sandbox's env exported, then exec of the argv (bwrap ...). The
 * launcher's pid, process group and cgroups become the sandbox's; everything it forks is inside
 * from the first instruction, as with the prologue. When the pool is empty, the caller falls
 * back to spawning with the prologue. An idle launcher exits when the worker goes (EOF on its
 * stdin); close() kills the rest, and reap() at the next start removes leftover cgroups.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../shared/logger.js';
import { killSandboxCgroup, type CgroupDriver, type SandboxCgroup } from './cgroups.js';
import { killProcessGroup } from './process-group.js';
import type { ExitInfo } from './process-spawn.js';

/** Idle launchers kept per runtime: a burst larger than this falls back to the prologue. */
export const launchersIdleMax = 4;
/**
 * Refill this long after a take: spawn() blocks the event loop for a few ms (fork+exec), which
 * must not land on the cold start that just took a launcher (it is probing for readiness).
 */
const refillDelayMs = 100;
/** Bound on a new launcher joining its cgroups (one RCU grace period each, usually). */
const joinWaitMsMax = 2_000;
const joinPollMs = 2;
/** Cgroup names of launchers start with '_', which no sandbox id can (see isValidSandboxId). */
const launcherNamePrefix = '_launcher-';

/** Joins the cgroups named before `--`, then waits for one line and evals it. */
const launcherScript = [
  "nl='",
  "'",
  'for f do shift; [ "$f" = -- ] && break; echo $$ > "$f" || exit 126; done',
  'IFS= read -r line || exit 0',
  'eval "$line"',
].join('\n');

export interface Launcher {
  child: ChildProcess;
  pid: number;
  cgroup: SandboxCgroup;
  /** Resolves on the launcher's exit, whenever it comes (also before it was taken). */
  exit: Promise<ExitInfo>;
  dead: boolean;
}

/** A word the shell reads back verbatim: single-quoted, with newlines as "$nl" (read is per line). */
export function shellWord(text: string): string {
  return text
    .split('\n')
    .map((part) => `'${part.replace(/'/g, `'\\''`)}'`)
    .join('"$nl"');
}

/** The line a launcher evals to become the sandbox. */
export function launchLine(logPath: string, env: Record<string, string>, argv: readonly string[]): string {
  const exports = Object.entries(env).map(([k, v]) => `export ${shellWord(`${k}=${v}`)}`);
  const exec = `exec ${argv.map(shellWord).join(' ')}`;
  return `${[`exec </dev/null >>${shellWord(logPath)}`, ...exports, exec].join('; ')}\n`;
}

export class LauncherPool {
  private readonly idle: Launcher[] = [];
  /** Launchers being spawned; close() waits for them (and disposes of them). */
  private readonly filling = new Set<Promise<void>>();
  private created = 0;
  private closed = false;
  private refill: NodeJS.Timeout | undefined;

  constructor(
    private readonly cgroups: CgroupDriver,
    private readonly log: Logger,
    private readonly size = launchersIdleMax,
  ) {
    this.fill();
  }

  /** An idle, live launcher (the pool refills behind it), or undefined when none is ready. */
  take(): Launcher | undefined {
    let launcher: Launcher | undefined;
    while ((launcher = this.idle.shift()) !== undefined && launcher.dead) void this.dispose(launcher);
    this.refill ??= setTimeout(() => {
      this.refill = undefined;
      this.fill();
    }, refillDelayMs).unref();
    return launcher;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.refill);
    await Promise.all(this.filling);
    await Promise.all(this.idle.splice(0).map((l) => this.dispose(l)));
  }

  private fill(): void {
    while (!this.closed && this.idle.length + this.filling.size < this.size) {
      const spawned: Promise<void> = this.spawnOne().then(async (launcher) => {
        this.filling.delete(spawned);
        if (launcher === undefined) return; // logged; the next take() tries again
        if (this.closed) await this.dispose(launcher);
        else this.idle.push(launcher);
      });
      this.filling.add(spawned);
    }
  }

  private async spawnOne(): Promise<Launcher | undefined> {
    const name = `${launcherNamePrefix}${++this.created}`;
    let cgroup: SandboxCgroup;
    try {
      cgroup = await this.cgroups.createIdle(name);
    } catch (err) {
      this.log.warn('launcher.cgroup_failed', { name, err: (err as Error).message });
      return undefined;
    }
    const procsFiles = cgroup.dirs.map((d) => join(d, 'cgroup.procs'));
    const child = spawn('/bin/sh', ['-c', launcherScript, 'sh', ...procsFiles, '--'], {
      cwd: '/',
      env: {},
      detached: true,
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    child.stdin?.on('error', () => {}); // a launcher that died: its exit says why
    const exit = new Promise<ExitInfo>((done) => child.once('exit', (code, signal) => done({ code, signal })));
    const spawned = await new Promise<boolean>((done) => {
      child.on('error', () => done(false)); // `on`: a late error must not crash the worker
      child.once('spawn', () => done(true));
    });
    if (!spawned || child.pid === undefined) {
      this.log.warn('launcher.spawn_failed', { name });
      await this.cgroups.remove(cgroup).catch(() => undefined);
      return undefined;
    }
    const launcher: Launcher = { child, pid: child.pid, cgroup, exit, dead: false };
    void exit.then(() => (launcher.dead = true));
    // Idle only once it sits in every cgroup: adopt() renames them, which a late join would miss.
    if (!(await this.joined(launcher))) {
      this.log.warn('launcher.join_failed', { name, pid: launcher.pid });
      await this.dispose(launcher);
      return undefined;
    }
    return launcher;
  }

  /** True once the launcher's pid is in its last cgroup (it joins them in order). */
  private async joined(launcher: Launcher): Promise<boolean> {
    const procsFile = join(launcher.cgroup.dirs[launcher.cgroup.dirs.length - 1], 'cgroup.procs');
    const t0Ms = performance.now();
    while (!launcher.dead && performance.now() - t0Ms < joinWaitMsMax) {
      const pids = await readFile(procsFile, 'utf8').catch(() => '');
      if (pids.split('\n').includes(String(launcher.pid))) return true;
      await sleep(joinPollMs);
    }
    return false;
  }

  /** Kills a launcher that was taken but could not be used, and removes its cgroup. */
  discard(launcher: Launcher): Promise<void> {
    return this.dispose(launcher);
  }

  private async dispose(launcher: Launcher): Promise<void> {
    if (!launcher.dead) killProcessGroup(launcher.pid);
    await launcher.exit;
    await killSandboxCgroup(launcher.cgroup);
    await this.cgroups.remove(launcher.cgroup).catch((err: Error) => {
      this.log.warn('launcher.cgroup_remove_failed', { pid: launcher.pid, err: err.message });
    });
  }
}

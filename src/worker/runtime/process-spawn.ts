/**
 * @module worker/runtime/process-spawn
 * The parts of starting one sandbox process that do not depend on runtime state: finding the
 * command, building its minimal environment, spawning it into its own process group with its
 * output in a log file, and turning its exit into a reason a person can act on.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, lstat, open, readlink, stat, type FileHandle } from 'node:fs/promises';
import { createServer } from 'node:net';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import type { FunctionSpec } from '../../api/types.js';
import { assert } from '../../shared/assert.js';
import { etcEntries, type BwrapHost, type RootEntry } from './bwrap-argv.js';
import { sandboxIdEnvName } from './sandbox-records.js';

/** Bytes of stderr kept in memory per sandbox, to quote its last line when it dies. */
const stderrTailBytesMax = 4_096;
/** A crash reason quotes at most this much of the last stderr line. */
const stderrLineCharsMax = 200;
/** After 'exit', wait this long for the stderr pipe to drain (a grandchild may hold it open). */
const stderrDrainWaitMs = 50;
/** Resolved command paths cached; cleared when full (functions rarely change binaries). */
const commandCacheMax = 1_024;

export interface SandboxEnvInput {
  sandboxId: string;
  fn: FunctionSpec;
  port: number;
  searchPath: string;
  homeDir: string;
}

/**
 * The whole environment of a sandbox. Nothing is inherited from the worker: secrets must not
 * leak, and an inherited NODE_EXTRA_CA_CERTS alone adds ~45 ms to every Node start.
 * The function's env may set PATH and HOME; the runtime's own variables always win.
 */
export function sandboxEnv(input: SandboxEnvInput): Record<string, string> {
  return {
    PATH: input.searchPath,
    HOME: input.homeDir,
    ...input.fn.env,
    PORT: String(input.port),
    [sandboxIdEnvName]: input.sandboxId,
    DIRIGENT_FUNCTION: input.fn.name,
  };
}

const commandCache = new Map<string, string>();

/** Absolute path of an executable, found like execvp would, or undefined. */
export async function resolveCommand(
  command: string,
  searchPath: string,
  cwd: string,
): Promise<string | undefined> {
  const key = `${searchPath}\0${cwd}\0${command}`;
  const cached = commandCache.get(key);
  if (cached !== undefined) return cached;
  const candidates = command.includes('/')
    ? [isAbsolute(command) ? command : resolve(cwd, command)]
    : searchPath.split(delimiter).filter((dir) => dir !== '').map((dir) => join(dir, command));
  for (const candidate of candidates) {
    try {
      await access(candidate, fsConstants.X_OK);
    } catch {
      continue;
    }
    if (commandCache.size >= commandCacheMax) commandCache.clear();
    commandCache.set(key, candidate);
    return candidate;
  }
  return undefined;
}

/** True when nobody listens on host:port right now (a foreign process may hold ports). */
export function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const server = createServer();
    server.once('error', () => resolvePromise(false));
    server.listen({ host, port, exclusive: true }, () => {
      server.close(() => resolvePromise(true));
    });
  });
}

/** Opens the log truncated, append-only: the child's stdout and our stderr copy interleave. */
export function openSandboxLog(path: string): Promise<FileHandle> {
  const flags =
    fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | fsConstants.O_APPEND;
  return open(path, flags, 0o644);
}

export interface SpawnedProcess {
  child: ChildProcess;
  pid: number;
  startMs: number;
  /** Resolves once the process exited and its stderr drained (bounded). Never rejects. */
  exited: Promise<ExitInfo>;
  stderrTail: StderrTail;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export type SpawnResult = { ok: true; spawned: SpawnedProcess } | { ok: false; reason: string };

export interface SpawnInput {
  argv: readonly string[];
  cwd: string;
  env: Record<string, string>;
  log: FileHandle;
  nowMs: () => number;
}

/**
 * Spawns `argv` as leader of a new process group (detached = setsid), stdout straight into the
 * log file, stderr through us (copied to the log; its tail kept for crash reasons).
 * On success the log handle belongs to the process (closed after exit); on failure, to the caller.
 */
export function spawnSandboxProcess(input: SpawnInput): Promise<SpawnResult> {
  assert(input.argv.length > 0, 'spawn needs a command');
  const t0 = input.nowMs();
  const child = spawn(input.argv[0], input.argv.slice(1), {
    cwd: input.cwd,
    env: input.env,
    detached: true,
    stdio: ['ignore', input.log.fd, 'pipe'],
  });
  return new Promise((resolvePromise) => {
    // `on`, not `once`: an 'error' without a listener would crash the worker.
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (child.pid !== undefined) return; // a later error (e.g. kill) is not a spawn failure
      resolvePromise({ ok: false, reason: `spawn ${err.code ?? 'error'}: ${err.message}` });
    });
    child.once('spawn', () => {
      assert(child.pid !== undefined, 'spawned child has no pid');
      resolvePromise({ ok: true, spawned: watchSandboxProcess(child, input.log, input.nowMs() - t0) });
    });
  });
}

/**
 * Takes over a running child (spawned here, or a launcher handed a command): its stderr is
 * copied to the log and its tail kept; `exited` resolves after its exit. The log handle now
 * belongs to the process (closed after exit).
 */
export function watchSandboxProcess(
  child: ChildProcess,
  log: FileHandle,
  startMs: number,
  exit: Promise<ExitInfo> = new Promise((done) => child.once('exit', (code, signal) => done({ code, signal }))),
): SpawnedProcess {
  assert(child.pid !== undefined, 'watching a child without a pid');
  const stderrTail = new StderrTail();
  const logStream = log.createWriteStream({ autoClose: true });
  logStream.on('error', () => {}); // a full disk must not crash the worker
  const exited = spawnSandboxProcessExited(child, stderrTail, logStream, exit);
  return { child, pid: child.pid, startMs, exited, stderrTail };
}

function spawnSandboxProcessExited(
  child: ChildProcess,
  stderrTail: StderrTail,
  logStream: Writable,
  exit: Promise<ExitInfo>,
): Promise<ExitInfo> {
  const stderr = child.stderr;
  assert(stderr !== null, 'stderr must be piped');
  stderr.on('data', (chunk: Buffer) => {
    stderrTail.push(chunk);
    logStream.write(chunk);
  });
  const drained = new Promise<void>((done) => {
    stderr.once('close', done);
    stderr.on('error', () => done());
  });
  return new Promise((resolvePromise) => {
    void exit.then(({ code, signal }) => {
      const timer = setTimeout(finish, stderrDrainWaitMs);
      void drained.then(finish);
      let finished = false;
      function finish(): void {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        logStream.end();
        resolvePromise({ code, signal });
      }
    });
  });
}

/** "exit code 3: <last stderr line>" or "signal SIGSEGV". */
export function describeExit(info: ExitInfo, stderrTail: StderrTail): string {
  const what = info.signal !== null ? `signal ${info.signal}` : `exit code ${info.code ?? '?'}`;
  const line = stderrTail.lastLine();
  return line === '' ? what : `${what}: ${line}`;
}

/** The last few KiB of a process's stderr. */
export class StderrTail {
  private text = '';

  push(chunk: Buffer): void {
    this.text += chunk.toString('utf8');
    if (this.text.length > stderrTailBytesMax) this.text = this.text.slice(-stderrTailBytesMax);
  }

  includes(needle: string): boolean {
    return this.text.includes(needle);
  }

  lastLine(): string {
    const lines = this.text.split(/\r?\n/);
    for (let i = lines.length - 1; i >= 0; i--) {
      const line = lines[i].trim();
      if (line !== '') return line.slice(0, stderrLineCharsMax);
    }
    return '';
  }
}


/**
 * True for an existing directory. Checked before spawn because spawn() reports a missing cwd as
 * ENOENT of the executable ("spawn /usr/bin/setpriv ENOENT"), which blames the wrong path.
 */
export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Directories of the arguments that are absolute paths of existing files (`node /srv/app/x.js`):
 * an isolated sandbox sees them read-only, so such commands work without a workingDir. The
 * function's author names them, as they could name any directory as workingDir.
 */
export async function absolutePathArgDirs(args: readonly string[]): Promise<string[]> {
  const dirs: string[] = [];
  for (const arg of args) {
    if (!arg.startsWith('/') || arg.includes('\0')) continue;
    const isFile = await stat(arg).then((st) => st.isFile(), () => false);
    if (isFile) dirs.push(dirname(arg));
  }
  return dirs;
}

/** Top-level entries besides /usr that programs expect; usr-merged hosts have symlinks. */
const rootEntryPaths = ['/bin', '/lib', '/lib64', '/sbin'];

/** The host facts bwrap-argv.ts needs, probed once per runtime. */
export async function probeBwrapHost(bwrapPath: string, setprivPath: string): Promise<BwrapHost> {
  const rootEntries: RootEntry[] = [];
  for (const path of rootEntryPaths) {
    const st = await lstat(path).catch(() => undefined);
    if (st === undefined) continue;
    if (st.isSymbolicLink()) rootEntries.push({ path, kind: 'symlink', target: await readlink(path) });
    else if (st.isDirectory()) rootEntries.push({ path, kind: 'dir' });
  }
  const etcPaths: string[] = [];
  for (const entry of etcEntries) {
    const path = `/etc/${entry}`;
    if (await stat(path).then(() => true, () => false)) etcPaths.push(path);
  }
  return { bwrapPath, setprivPath, rootEntries, etcPaths };
}

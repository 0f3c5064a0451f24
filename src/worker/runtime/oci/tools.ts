/**
 * @module worker/runtime/oci/tools
 * Runs one short-lived host tool (runc, umoci, mount) without a shell, with a minimal
 * environment and a bounded time and output, and says how it ended. Never rejects: a missing
 * binary or a timeout is an outcome the caller turns into a reason.
 */
import { execFile } from 'node:child_process';

/** Output kept per call; tools print a line or two, or JSON lists of containers. */
const toolOutputBytesMax = 1_048_576;
/** Our tools live here on Debian; nothing else is taken from the worker's environment. */
export const toolSearchPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ToolResult {
  ok: boolean;
  stdout: string;
  stderr: string;
  /** Why it failed, for logs and reasons: the tool's last stderr line, or what went wrong. */
  reason: string;
}

export function runTool(command: string, args: readonly string[], timeoutMs: number): Promise<ToolResult> {
  return new Promise((resolve) => {
    const env = { PATH: toolSearchPath, HOME: '/tmp' };
    execFile(command, args, { timeout: timeoutMs, maxBuffer: toolOutputBytesMax, env }, (err, stdout, stderr) => {
      if (!err) return resolve({ ok: true, stdout, stderr, reason: '' });
      const code = (err as NodeJS.ErrnoException).code;
      const line = lastLine(stderr);
      let reason = line || err.message;
      if (err.killed) reason = `${command} timed out after ${timeoutMs} ms`;
      if (code === 'ENOENT') reason = `${command} not found`;
      resolve({ ok: false, stdout, stderr, reason: `${command} ${args[0] ?? ''}: ${reason}` });
    });
  });
}

/** The last non-empty line, without runc's logrus decoration (time=... level=error msg="..."). */
export function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const line = lines.at(-1) ?? '';
  const msg = /msg="((?:[^"\\]|\\.)*)"/.exec(line);
  return (msg ? msg[1].replace(/\\"/g, '"') : line).slice(0, 300);
}

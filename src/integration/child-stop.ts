/**
 * @module integration/child-stop
 * Stopping a server a test fixture started, by its own handle (never by name): SIGTERM, then
 * SIGKILL after a grace period; or SIGKILL at once to simulate a crash.
 */
import type { ChildProcess } from 'node:child_process';

export async function stopChild(proc: ChildProcess | null, graceMs: number): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

/** SIGKILL: the process gets no chance to flush. */
export async function crashChild(proc: ChildProcess | null): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGKILL');
  await exited;
}

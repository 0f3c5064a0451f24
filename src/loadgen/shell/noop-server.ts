/**
 * @module loadgen/shell/noop-server
 * Starts and stops the no-op server child (`noop-server-main.js`). The child is stopped by
 * its PID (and exits by itself if our stdin pipe closes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const noopServerDefaults = Object.freeze({
  startTimeoutMs: 10_000,
  stopTimeoutMs: 5_000,
});

export interface NoopServer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

export function startNoopServer(): Promise<NoopServer> {
  const entry = fileURLToPath(new URL('./noop-server-main.js', import.meta.url));
  const child = spawn(process.execPath, [entry], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => {
      void stopChild(child);
      reject(new Error('no-op server did not report its port in time'));
    }, noopServerDefaults.startTimeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      clearTimeout(timer);
      const { port } = JSON.parse(buffered.slice(0, newline)) as { port: number };
      const url = `http://127.0.0.1:${port}`;
      resolve({ url, pid: child.pid ?? 0, stop: () => stopChild(child) });
    });
  });
}

/** SIGTERM by PID, then SIGKILL if it has not exited in time. */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), noopServerDefaults.stopTimeoutMs);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
    child.stdin?.end();
  });
}

/**
 * Goal: an exception that escapes a component's guards ends the process only after one
 * structured log line naming it. Method: a child process installs the handlers and throws from
 * a timer (and rejects a promise); read its stderr and exit code.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const fatalJs = fileURLToPath(new URL('./fatal.js', import.meta.url));
const loggerJs = fileURLToPath(new URL('./pino-logger.js', import.meta.url));

function run(body: string): { status: number | null; stderr: string } {
  const script = `
    const { exitLoudlyOnUncaught } = await import(${JSON.stringify(fatalJs)});
    const { pinoLogger } = await import(${JSON.stringify(loggerJs)});
    exitLoudlyOnUncaught(pinoLogger('test', 'info'));
    ${body}`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 });
  return { status: r.status, stderr: r.stderr };
}

describe('fatal handlers', () => {
  it('an exception thrown from a timer is logged with its event name, then the process exits 70', () => {
    const r = run(`setTimeout(() => { throw new Error('boom in a timer'); }, 1);`);
    assert.equal(r.status, 70);
    const line = JSON.parse(r.stderr.trim().split('\n').at(-1)!);
    assert.equal(line.msg, 'process.uncaught_exception');
    assert.match(line.error, /boom in a timer/);
  });

  it('a rejected promise nobody awaited is logged the same way', () => {
    const r = run(`Promise.reject(new Error('nobody caught me'));`);
    assert.equal(r.status, 70);
    const line = JSON.parse(r.stderr.trim().split('\n').at(-1)!);
    assert.equal(line.msg, 'process.unhandled_rejection');
    assert.match(line.error, /nobody caught me/);
  });
});

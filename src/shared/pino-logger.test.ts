/**
 * Goal: asynchronous log writes lose nothing a process logged before it exits, keep the order,
 * and do not hold a line back while the process keeps running; the lines of one turn go out in
 * one write. Method: child processes that log through pinoLogger, reading their stderr; the
 * turn batcher alone over a recording sink and a hand-run schedule.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { lineBatchCharsMax, TurnLineBatcher } from './pino-logger.js';

const loggerJs = fileURLToPath(new URL('./pino-logger.js', import.meta.url));
const childTimeoutMs = 10_000;

function script(body: string): string[] {
  return ['--input-type=module', '-e', `const { pinoLogger } = await import(${JSON.stringify(loggerJs)});
    const log = pinoLogger('test', 'info');
    ${body}`];
}

function seqs(stderr: string): number[] {
  return stderr.trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq);
}

describe('pinoLogger', () => {
  it('every line logged in one turn before process.exit reaches stderr, in order', () => {
    const r = spawnSync(process.execPath, script(`for (let i = 0; i < 20000; i++) log.info('line', { seq: i, pad: 'x'.repeat(100) });
      process.exit(3);`), { encoding: 'utf8', timeout: childTimeoutMs, maxBuffer: 64 * 1024 * 1024 });
    assert.equal(r.status, 3);
    assert.deepEqual(seqs(r.stderr), Array.from({ length: 20000 }, (_, i) => i));
  });

  it('lines logged across turns reach stderr when the event loop runs dry', () => {
    const r = spawnSync(process.execPath, script(`let i = 0;
      const tick = () => { for (let k = 0; k < 500; k++) log.info('line', { seq: i++ }); if (i < 5000) setImmediate(tick); };
      tick();`), { encoding: 'utf8', timeout: childTimeoutMs, maxBuffer: 64 * 1024 * 1024 });
    assert.equal(r.status, 0);
    assert.deepEqual(seqs(r.stderr), Array.from({ length: 5000 }, (_, i) => i));
  });

  it('a line is written while the process keeps running, not held for more', async () => {
    const child = spawn(process.execPath, script(`log.info('ready', { seq: 1 }); setTimeout(() => undefined, ${childTimeoutMs});`), { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let text = '';
        child.stderr.setEncoding('utf8');
        child.stderr.on('data', (d: string) => {
          text += d;
          if (text.includes('\n')) resolve(text);
        });
        child.on('exit', (code) => reject(new Error(`child exited (${code}) before its line arrived: ${text}`)));
      });
      assert.equal(JSON.parse(line).msg, 'ready');
      assert.equal(child.exitCode, null, 'the child is still running');
    } finally {
      if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid);
    }
  });

  it('joins the lines of one turn into one write, and writes each turn of a quiet process by itself', () => {
    const writes: string[] = [];
    const turnEnds: (() => void)[] = [];
    const b = new TurnLineBatcher({ write: (t) => writes.push(t), flushSync: () => writes.push('<sync>') }, (fn) => turnEnds.push(fn));
    b.write('a\n');
    b.write('b\n');
    b.write('c\n');
    assert.deepEqual(writes, [], 'held until the turn ends');
    assert.equal(turnEnds.length, 1, 'one end-of-turn callback for the turn');
    turnEnds.shift()!();
    assert.deepEqual(writes, ['a\nb\nc\n']);
    b.write('d\n');
    turnEnds.shift()!();
    assert.deepEqual(writes, ['a\nb\nc\n', 'd\n']);
    assert.equal(turnEnds.length, 0);
  });

  it('hands a large turn to the sink as it grows, and writes what is left synchronously on exit', () => {
    const writes: string[] = [];
    const b = new TurnLineBatcher({ write: (t) => writes.push(t), flushSync: () => writes.push('<sync>') }, () => undefined);
    const line = `${'x'.repeat(999)}\n`;
    const lines = Math.ceil(lineBatchCharsMax / line.length) + 5;
    for (let i = 0; i < lines; i++) b.write(line);
    assert.equal(writes.length, 1, 'one write once the bound was passed');
    assert.ok(writes[0]!.length > lineBatchCharsMax && writes[0]!.length <= lineBatchCharsMax + line.length);
    b.flushSync();
    assert.equal(writes.length, 3);
    assert.equal(writes[2], '<sync>');
    assert.equal(writes.slice(0, 2).join('').length, lines * line.length, 'every line once, in order');
  });
});

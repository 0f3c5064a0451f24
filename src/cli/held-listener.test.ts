/**
 * Goal: a port `up` holds keeps listening while no process serves it: a connection made between
 * two processes waits in the accept queue and the next process answers it; `up`'s own copy
 * accepts nothing. A port already taken is an Error naming it, not a crash.
 * Method: hold a free loopback port, run a child that listens on the inherited descriptor and
 * answers with its pid, SIGKILL it, connect, start a second child, read the answer.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { holdListener } from './held-listener.js';

const childJs = `const s = require('node:net').createServer((c) => c.end(String(process.pid)));
s.listen({ fd: 3 }, () => process.send ? 0 : console.log('listening'));`;

function serveOnFd3(fd: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', childJs], { stdio: ['ignore', 'pipe', 'inherit', fd] });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`child exited ${code} before listening`)));
  });
}

describe('held listener', { timeout: 30_000 }, () => {
  it('a connection made while nothing serves the port is answered by the next process', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const held = holdListener('127.0.0.1', port);
    assert.ok(!(held instanceof Error), String(held));
    const kids: ChildProcess[] = [];
    try {
      const first = await serveOnFd3(held.fd);
      kids.push(first);
      first.kill('SIGKILL');
      await once(first, 'exit');
      const sock = connect(port, '127.0.0.1');
      let answer = '';
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => { answer += d; });
      const ended = once(sock, 'end');
      await once(sock, 'connect'); // the kernel took it: nothing refused it
      const second = await serveOnFd3(held.fd);
      kids.push(second);
      await ended;
      assert.equal(answer, String(second.pid));
    } finally {
      for (const k of kids) if (k.exitCode === null && k.signalCode === null) k.kill('SIGKILL');
      held.close();
    }
  });

  it('a port already taken is an Error naming it', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as AddressInfo).port;
    try {
      const held = holdListener('127.0.0.1', port);
      assert.ok(held instanceof Error);
      assert.match(held.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });
});

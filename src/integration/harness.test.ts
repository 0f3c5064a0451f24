/**
 * Goal: the ports freePort() gives the components a test starts are free, never given twice in
 * one process, and below the kernel's ephemeral range, where no outgoing connection takes them
 * before the component binds. Method: draw many, bind each.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { ephemeralPortLow, freePort } from './harness.js';

describe('freePort', () => {
  it('gives distinct bindable ports below the ephemeral range', async () => {
    const high = ephemeralPortLow();
    const ports: number[] = [];
    for (let i = 0; i < 200; i++) ports.push(await freePort());
    assert.equal(new Set(ports).size, ports.length);
    for (const p of ports) assert.ok(p >= 20_000 && p < high, `port ${p} outside 20000-${high - 1}`);
    const s = createServer();
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(ports[0], '127.0.0.1', () => resolve());
    });
    await new Promise<void>((r) => s.close(() => r()));
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLoopbackHost } from './loopback.js';

describe('isLoopbackHost', () => {
  it('accepts 127.0.0.0/8, ::1 and localhost', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) assert.equal(isLoopbackHost(h), true, h);
  });
  it('refuses wildcards, other addresses and look-alikes', () => {
    for (const h of ['0.0.0.0', '::', '', '10.0.0.1', '128.0.0.1', '127.0.0.256', 'localhost.example.com', '127.0.0.1.nip.io', 'example.com']) {
      assert.equal(isLoopbackHost(h), false, h);
    }
  });
});

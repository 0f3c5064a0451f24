/**
 * Goal: `isLoopbackHost` accepts exactly the loopback listen addresses (auth may be off only
 * there). Method: a table of addresses.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isLoopbackHost } from './loopback.js';

describe('isLoopbackHost', () => {
  it('accepts 127.0.0.0/8, ::1 and localhost', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '127.255.255.255', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) {
      assert.equal(isLoopbackHost(h), true, h);
    }
  });
  it('refuses everything else', () => {
    for (const h of ['0.0.0.0', '::', '', '10.0.0.1', '128.0.0.1', '127.0.0.256', '127.0.0', 'localhost.evil.com', '127.0.0.1.nip.io', '192.168.1.1', 'example.com']) {
      assert.equal(isLoopbackHost(h), false, h);
    }
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diesWithParent, findBinary, MissingBinaryError } from './binary.js';

describe('findBinary', () => {
  it('finds a program on PATH', () => {
    assert.match(findBinary('sh', 'dash', '/bin:/usr/bin'), /\/sh$/);
  });

  it('names the Debian package in one line when the program is missing', () => {
    assert.throws(() => findBinary('dirigent-no-such-program', 'some-package', '/nonexistent'), (err: Error) =>
      err instanceof MissingBinaryError && err.message.includes('some-package') && !err.message.includes('\n'));
  });
});

describe('diesWithParent', () => {
  it('keeps the program and its arguments in order', () => {
    const c = diesWithParent('/usr/bin/etcd', ['--name', 'x']);
    assert.deepEqual(c.args.slice(-3), ['/usr/bin/etcd', '--name', 'x']);
  });
});

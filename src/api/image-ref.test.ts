import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { formatImageRef, isLoopbackRegistry, parseImageRef } from './image-ref.js';

describe('image references', () => {
  const cases: [string, string][] = [
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['127.0.0.1:5000/hello:1', '127.0.0.1:5000/hello:1'],
    ['localhost/a/b', 'localhost/a/b:latest'],
    ['ghcr.io/org/fn-x_y.z:v1.2', 'ghcr.io/org/fn-x_y.z:v1.2'],
    [`r.io/a@sha256:${'a'.repeat(64)}`, `r.io/a@sha256:${'a'.repeat(64)}`],
    ['oci-archive:/srv/images/hello.tar', 'oci-archive:/srv/images/hello.tar'],
  ];
  for (const [input, canonical] of cases) {
    test(`${input} parses`, () => {
      const parsed = parseImageRef(input);
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.reason);
      assert.equal(formatImageRef(parsed.ref), canonical);
    });
  }

  const bad: [string, RegExp][] = [
    ['oci-archive:relative.tar', /absolute/],
    ['oci-archive:/a/../etc/shadow', /\.\./],
    ['docker://busybox', /transport/],
    ['Upper/Case', /lower-case/],
    ['r.io/a@sha256:abc', /digest/],
    ['r.io/a:bad tag', /tag/],
    ['r.io/', /repository/],
  ];
  for (const [input, reason] of bad) {
    test(`${input} is refused with a reason`, () => {
      const parsed = parseImageRef(input);
      assert.equal(parsed.ok, false);
      assert.match(parsed.ok ? '' : parsed.reason, reason);
    });
  }

  test('loopback registries are the plain-HTTP ones by default', () => {
    assert.equal(isLoopbackRegistry('127.0.0.1:5000'), true);
    assert.equal(isLoopbackRegistry('localhost:5000'), true);
    assert.equal(isLoopbackRegistry('registry.example.com:5000'), false);
  });
});

/**
 * Goal: `dirigent frontend`'s TLS flags fail clearly before HAProxy starts: a certificate without
 * its key is a usage error (exit 2), and a file that cannot be read is named with its flag.
 * Method: the built CLI in a child process, with a temporary state dir; no HAProxy is reached.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';

const mainJs = fileURLToPath(new URL('../cli/main.js', import.meta.url));

describe('dirigent frontend TLS flags', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dirigent-fe-flags-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const run = (args: string[]) => spawnSync(process.execPath, [mainJs, 'frontend', '--state-dir', dir, '--discover-period-ms', '0', ...args],
    { encoding: 'utf8', timeout: 20_000 });

  it('refuses a certificate without its key (usage, exit 2)', () => {
    const r = run(['--tls-cert-file', join(dir, 'server.pem')]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--tls-cert-file and --tls-key-file go together/);
  });

  it('names the flag of a file it cannot read (exit 1)', () => {
    const r = run(['--tls-cert-file', join(dir, 'missing.pem'), '--tls-key-file', join(dir, 'missing-key.pem')]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /--tls-cert-file .*missing\.pem: ENOENT/);
  });
});

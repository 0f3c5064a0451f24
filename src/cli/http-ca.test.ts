/** Which CA the CLI trusts for an https URL: DIRIGENT_CA, then the state dir's, then ./.dirigent's. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { caFor } from './http.js';

describe('CLI CA trust', () => {
  it('looks in DIRIGENT_CA, then $DIRIGENT_STATE_DIR/tls, then ./.dirigent/tls, and never for http', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dirigent-ca-'));
    try {
      const cwd = join(dir, 'work');
      mkdirSync(join(cwd, '.dirigent', 'tls'), { recursive: true });
      mkdirSync(join(dir, 'state', 'tls'), { recursive: true });
      writeFileSync(join(cwd, '.dirigent', 'tls', 'ca.pem'), 'cwd');
      writeFileSync(join(dir, 'state', 'tls', 'ca.pem'), 'state');
      writeFileSync(join(dir, 'mine.pem'), 'named');
      const url = 'https://127.0.0.1:9090';
      assert.equal(caFor('http://127.0.0.1:9090', { env: { DIRIGENT_CA: join(dir, 'mine.pem') }, cwd }), undefined);
      assert.equal(caFor(url, { env: { DIRIGENT_CA: join(dir, 'mine.pem') }, cwd })?.toString(), 'named');
      assert.equal(caFor(url, { env: { DIRIGENT_STATE_DIR: join(dir, 'state') }, cwd })?.toString(), 'state');
      assert.equal(caFor(url, { env: {}, cwd })?.toString(), 'cwd');
      assert.equal(caFor(url, { env: {}, cwd: dir }), undefined, 'none found: the system roots');
      assert.throws(() => caFor(url, { env: { DIRIGENT_CA: join(dir, 'absent.pem') }, cwd }), /DIRIGENT_CA .*absent\.pem: cannot read it \(ENOENT\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cliAuth, cliAuthForStateDir, unauthorizedHint } from './token-source.js';

describe('cliAuth', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dirigent-cli-token-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, '.dirigent'));
  writeFileSync(join(dir, '.dirigent', 'admin.token'), 'from-cwd\n');
  mkdirSync(join(dir, 'state'));
  writeFileSync(join(dir, 'state', 'admin.token'), 'from-state-dir\n');

  it('takes DIRIGENT_TOKEN, else $DIRIGENT_STATE_DIR/admin.token, else ./.dirigent/admin.token', () => {
    assert.equal(cliAuth({ DIRIGENT_TOKEN: 'env', DIRIGENT_STATE_DIR: 'state' }, dir).token, 'env');
    assert.equal(cliAuth({ DIRIGENT_STATE_DIR: 'state' }, dir).token, 'from-state-dir');
    assert.equal(cliAuth({}, dir).token, 'from-cwd');
  });
  it('a command given --state-dir (benches, loadgen) reads the token of that directory, DIRIGENT_TOKEN first', () => {
    // A replay with --state-dir and no DIRIGENT_STATE_DIR was refused (401) on every registration.
    assert.equal(cliAuthForStateDir({}, dir, 'state').token, 'from-state-dir');
    assert.equal(cliAuthForStateDir({ DIRIGENT_STATE_DIR: 'elsewhere' }, dir, 'state').token, 'from-state-dir');
    assert.equal(cliAuthForStateDir({ DIRIGENT_TOKEN: 'env' }, dir, 'state').token, 'env');
  });
  it('says where it looked when there is none', () => {
    const none = cliAuth({}, join(dir, 'state'));
    assert.equal(none.token, '');
    assert.match(unauthorizedHint(none), /DIRIGENT_TOKEN.*admin\.token.*dirigent token create/);
  });
});

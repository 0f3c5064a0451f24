/**
 * Goal: tokens are well-formed and unguessable-looking, their id is recoverable, the bearer
 * parser never throws and refuses what is not one token, and a token file is created once with
 * mode 0600 and then read back unchanged.
 * Method: generated tokens and arbitrary header strings; a temporary directory.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { bearerLengthMax, bearerOf, newToken, readOrCreateTokenFile, readTokenFile, sameDigest, sha256Hex, tokenId, TokenDigests, tokenDigestsEntriesMax } from './secrets.js';

test('a new token carries its id and is unique', () => {
  const a = newToken();
  const b = newToken();
  assert.equal(tokenId(a.token), a.id);
  assert.notEqual(a.token, b.token);
  assert.match(a.token, /^dgt_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
});

test('bearerOf takes one token from "Bearer <t>" and refuses the rest without throwing', () => {
  assert.equal(bearerOf('Bearer abc'), 'abc');
  assert.equal(bearerOf('bearer   abc  '), 'abc');
  for (const bad of [undefined, '', 'Basic abc', 'Bearer', 'Bearer a b', ['Bearer a'], `Bearer ${'x'.repeat(bearerLengthMax)}`]) {
    assert.equal(bearerOf(bad as string | undefined), null, String(bad));
  }
  fc.assert(fc.property(fc.string({ maxLength: 300 }), (s) => {
    const t = bearerOf(s);
    assert.ok(t === null || (t.length > 0 && !/\s/.test(t)));
  }));
});

test('digests compare equal only for the same text', () => {
  assert.equal(sameDigest(sha256Hex('a'), sha256Hex('a')), true);
  assert.equal(sameDigest(sha256Hex('a'), sha256Hex('b')), false);
  assert.equal(sameDigest(sha256Hex('a'), 'ab'), false);
});

test('a token file is created 0600 once, then read back; a file without a token is named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'secrets-'));
  try {
    const path = join(dir, 'sub', 'admin.token');
    const first = readOrCreateTokenFile(path);
    assert.equal(first.created, true);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const again = readOrCreateTokenFile(path);
    assert.deepEqual(again, { token: first.token, created: false });
    const junk = join(dir, 'junk');
    writeFileSync(junk, 'not a token\n');
    assert.throws(() => readTokenFile(junk), new RegExp(junk));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('remembered token digests are the SHA-256 of the token, and at most entriesMax are kept, oldest out first', () => {
  const digests = new TokenDigests(2);
  const [a, b, c] = [newToken().token, newToken().token, newToken().token];
  assert.equal(digests.of(a), sha256Hex(a));
  assert.equal(digests.of(a), sha256Hex(a), 'a remembered digest is the same digest');
  assert.equal(digests.of(b), sha256Hex(b));
  assert.equal(digests.size, 2);
  assert.equal(digests.of(c), sha256Hex(c));
  assert.equal(digests.size, 2, 'the oldest (a) made room');
  assert.equal(digests.of(a), sha256Hex(a), 'a forgotten token is hashed again');
  assert.equal(new TokenDigests().of('x'), sha256Hex('x'));
  assert.equal(tokenDigestsEntriesMax, 1_024);
});

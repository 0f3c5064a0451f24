/**
 * Goal: the API reads a request target's path and query exactly as the URL parser does, with or
 * without its fast split. Method: property test against `new URL` over targets built from the
 * characters that matter (slashes, dots, percent, '?', '#', backslash, space, quotes, non-ASCII).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { HttpError, parseTarget } from './http-util.js';

function viaUrl(target: string): { path: string; query: [string, string][] } | 'invalid' {
  try {
    const u = new URL(target, 'http://api');
    return { path: u.pathname, query: [...u.searchParams] };
  } catch {
    return 'invalid';
  }
}

function viaParse(target: string): { path: string; query: [string, string][] } | 'invalid' {
  try {
    const t = parseTarget(target);
    return { path: t.path, query: [...t.query] };
  } catch (e) {
    if (e instanceof HttpError && e.status === 400 && e.field === 'path') return 'invalid';
    throw e;
  }
}

describe('parseTarget', () => {
  it('gives the path and query the URL parser gives, for any target', () => {
    const chars = fc.constantFrom('/', '/', '.', '..', '%', '%2e', '%2E', '%41', '?', '#', '\\', ' ', '"', "'", '<', '>', '`', '{', '|',
      '+', '=', '&', 'a', 'Z', '9', '-', '_', '~', ':', '@', 'é', '\t', '\n');
    fc.assert(fc.property(fc.array(chars, { maxLength: 16 }), fc.boolean(), (parts, rooted) => {
      const target = (rooted ? '/' : '') + parts.join('');
      assert.deepEqual(viaParse(target), viaUrl(target), JSON.stringify(target));
    }), { numRuns: 5_000 });
  });

  it('splits the API\'s own targets directly, decoding the query', () => {
    assert.deepEqual(viaParse('/v1/functions/fn-1.team-a?namespace=team%2Da&x=a+b'),
      { path: '/v1/functions/fn-1.team-a', query: [['namespace', 'team-a'], ['x', 'a b']] });
    assert.deepEqual(viaParse('//evil/v1/functions'), viaUrl('//evil/v1/functions'));
    assert.deepEqual(viaParse('/v1/functions/../tokens'), { path: '/v1/tokens', query: [] });
  });
});

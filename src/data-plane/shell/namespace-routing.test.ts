/**
 * Goal: the DP finds a function by its namespace key: Host `fn.team-a` or `/function/fn.team-a/`
 * is key `fn.team-a`; `fn` and `fn.default` are key `fn`; ports are stripped as before. And a
 * DP refuses to start with auth none on a non-loopback host (a ConfigError naming both).
 * Method: resolveFunction on hand-built requests; checkAuthHost on configs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../config/compile.js';
import { checkAuthHost } from '../main.js';
import { resolveFunction, type Req } from './http-util.js';

const req = (url: string, host?: string) => ({ url, headers: host === undefined ? {} : { host } }) as unknown as Req;

describe('resolveFunction with namespaces', () => {
  it('routes Host names to keys', () => {
    assert.deepEqual(resolveFunction(req('/x', 'fn.team-a')), { fn: 'fn.team-a', path: '/x' });
    assert.deepEqual(resolveFunction(req('/x', 'fn.team-a:8080')), { fn: 'fn.team-a', path: '/x' });
    assert.deepEqual(resolveFunction(req('/', 'fn.default:8080')), { fn: 'fn', path: '/' });
    assert.deepEqual(resolveFunction(req('/', 'fn')), { fn: 'fn', path: '/' });
  });
  it('routes /function/<key>/ paths to keys', () => {
    assert.deepEqual(resolveFunction(req('/function/fn.team-a/a/b?q=1')), { fn: 'fn.team-a', path: '/a/b?q=1' });
    assert.deepEqual(resolveFunction(req('/function/fn.default/a')), { fn: 'fn', path: '/a' });
    assert.deepEqual(resolveFunction(req('/function/fn?x')), { fn: 'fn', path: '/?x' });
  });
});

describe('data plane auth none', () => {
  it('is refused on a non-loopback host, naming auth and host', () => {
    assert.throws(() => checkAuthHost({ auth: 'none', host: '0.0.0.0' }), (e: unknown) => e instanceof ConfigError && /auth none/.test(e.message) && /host 0\.0\.0\.0/.test(e.message));
    assert.doesNotThrow(() => checkAuthHost({ auth: 'none', host: '127.0.0.1' }));
    assert.doesNotThrow(() => checkAuthHost({ auth: 'token', host: '0.0.0.0' }));
  });
});

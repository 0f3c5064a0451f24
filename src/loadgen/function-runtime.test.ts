import assert from 'node:assert/strict';
import { test } from 'node:test';
import { functionRuntime } from './options.js';

test('--function-image registers image functions; with --function-command it is refused', () => {
  assert.deepEqual(functionRuntime(undefined, '/w', '127.0.0.1:5000/hello:1'), { kind: 'image', image: '127.0.0.1:5000/hello:1' });
  assert.deepEqual(functionRuntime(undefined, '/w'), { kind: 'emulated' });
  assert.throws(() => functionRuntime('node s.js', '/w', 'x:1'), /not both/);
});

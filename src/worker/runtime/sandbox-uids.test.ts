import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { createSandboxUids, splitUidRange } from './sandbox-uids.js';

describe('sandbox uids', () => {
  test('the range splits into a no-egress and an egress half', () => {
    assert.deepEqual(splitUidRange([1000, 1009]), { noEgress: [1000, 1004], egress: [1005, 1009] });
    assert.deepEqual(splitUidRange([1000, 1010]), { noEgress: [1000, 1005], egress: [1006, 1010] });
  });

  test('uid 0 is never in the range', () => {
    assert.throws(() => splitUidRange([0, 10]));
  });

  test('each half hands out its own uids, each at most once while held', () => {
    const uids = createSandboxUids([1000, 1003]);
    assert.equal(uids.acquire(false), 1000);
    assert.equal(uids.acquire(true), 1002);
    assert.equal(uids.acquire(false), 1001);
    assert.equal(uids.acquire(false), undefined);
    assert.equal(uids.acquire(true), 1003);
    assert.equal(uids.acquire(true), undefined);
    assert.equal(uids.inUse(), 4);
  });

  test('a released uid comes back last, to its own half', () => {
    const uids = createSandboxUids([1000, 1005]);
    const a = uids.acquire(false)!;
    uids.release(a);
    assert.equal(uids.acquire(false), 1001, 'fresh uids before reused ones');
    assert.equal(uids.acquire(false), 1002);
    assert.equal(uids.acquire(false), a);
    const e = uids.acquire(true)!;
    uids.release(e);
    assert.equal(uids.acquire(false), undefined, 'an egress uid never serves a no-egress sandbox');
  });

  test('releasing a uid that is not held is a bug', () => {
    const uids = createSandboxUids([1000, 1003]);
    assert.throws(() => uids.release(1000));
  });
});

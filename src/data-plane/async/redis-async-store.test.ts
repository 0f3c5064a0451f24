/**
 * Goal: the Redis async store meets the AsyncStore contract against a real redis-server (AOF,
 * appendfsync always), including a server killed with SIGKILL and restarted between a close and
 * a reopen (everything whose write was answered is still there).
 * Method: one redis-server started by the test (free loopback port, temp dir, stopped by PID);
 * each contract "directory" maps to its own key prefix. Outside CI the suite is skipped, with a
 * message, when redis-server is not installed; in CI it must run.
 */
import { basename } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestRedis, redisServerAvailable } from '../../integration/redis.js';
import { asyncStoreContract } from './async-store.contract.js';
import { openRedisAsyncStore } from './redis-async-store.js';

const available = redisServerAvailable();

if (!available && process.env.CI !== 'true') {
  describe('AsyncStore contract: redis', () => {
    it('needs redis-server (Debian package redis-server; .ci/run installs it)', { skip: 'redis-server is not installed' }, () => {});
  });
} else {
  const redis = new TestRedis();
  before(() => redis.start());
  after(() => redis.destroy());
  asyncStoreContract('redis', {
    open: (dir, options) => openRedisAsyncStore(redis.url, { ...options, keyPrefix: `t:${basename(dir)}:` }),
    leaseIsWallClock: true,
    restart: async () => {
      await redis.crash();
      await redis.start();
    },
  });
}

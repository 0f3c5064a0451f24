/**
 * Goal: the etcd store meets the Store contract, against a real etcd, and a fenced store refuses
 * writes once its fence key was re-created (a deposed leader can never write).
 * Method: one etcd started by the test (free loopback ports, temp data dir, stopped by PID); each
 * contract "directory" maps to its own key prefix, so reopening the same dir sees its records.
 */
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestEtcd } from '../../integration/etcd.js';
import { openEtcdStore } from './etcd-store.js';
import { storeContract } from './store.contract.js';

const etcd = new TestEtcd();
before(() => etcd.start());
after(() => etcd.destroy());

storeContract('etcd', async (dir) => openEtcdStore([etcd.endpoint], `/dirigent-test/${basename(dir)}/`));

describe('etcd store fencing', () => {
  it('refuses writes once the fence key was re-created by someone else', async () => {
    const s = openEtcdStore([etcd.endpoint], '/dirigent-test/fence/');
    const other = openEtcdStore([etcd.endpoint], '/dirigent-test/fence/');
    try {
      const ns = (s as unknown as { ns: import('etcd3').Namespace }).ns;
      const first = await ns.put('election/leader').value('a').exec();
      s.fence('election/leader', first.header.revision);
      await s.putWorker({ id: 'w1', address: 'h:1' });
      await ns.delete().key('election/leader').exec();
      await ns.put('election/leader').value('b').exec();
      await assert.rejects(s.putWorker({ id: 'w1', address: 'h:2' }), /not the leader/);
      assert.deepEqual((await other.load()).workers, [{ id: 'w1', address: 'h:1' }]);
    } finally {
      await s.close();
      await other.close();
    }
  });
});

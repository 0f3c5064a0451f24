/**
 * Goal: etcd leader election: one candidate leads, the other stands by and knows the leader; the
 * term grows with each new leader; a leader whose lease was not renewed within its TTL stops
 * acting at once (holdsLease false, onLost fired) without waiting for etcd to say so.
 * Method: a real etcd started by the test; a manual clock for the lease-deadline case.
 */
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { after, before, describe, it } from 'node:test';
import { TestEtcd } from '../../integration/etcd.js';
import { waitFor } from '../../integration/harness.js';
import { systemClock, type Clock } from '../../shared/clock.js';
import { silentLogger } from '../../shared/logger.js';
import { etcdClientOptions } from '../store/etcd-store.js';
import { EtcdElection } from './election-etcd.js';

const member = (id: string) => ({ id, rpcAddress: `${id}:1`, apiAddress: `${id}:2`, pid: 1 });

describe('EtcdElection', { timeout: 60_000 }, () => {
  const etcd = new TestEtcd();
  let client: Etcd3;
  before(async () => {
    await etcd.start();
    client = new Etcd3(etcdClientOptions([etcd.endpoint]));
  });
  after(async () => {
    client.close();
    await etcd.destroy();
  });

  it('elects one leader, the other follows it, and the next leader has a higher term', async () => {
    const ns = client.namespace('/e1/');
    const a = new EtcdElection(ns, { self: member('a'), leaseTtlS: 2, pollMs: 50 }, systemClock, silentLogger);
    const b = new EtcdElection(ns, { self: member('b'), leaseTtlS: 2, pollMs: 50 }, systemClock, silentLogger);
    const termA = await a.campaign();
    let termB = 0;
    const bLeads = b.campaign().then((t) => { termB = t; });
    await waitFor(() => b.leader()?.id === 'a', 5_000, 'b sees a leading');
    assert.equal(a.holdsLease(), true);
    assert.equal(b.holdsLease(), false);
    assert.deepEqual((await a.members()).map((m) => `${m.id}:${m.role}`).sort(), ['a:leader', 'b:standby']);
    await a.close();
    await bLeads;
    assert.ok(termB > termA, `${termB} > ${termA}`);
    await b.close();
  });

  it('stops acting as soon as the lease may have ended', async () => {
    let offsetMs = 0;
    const clock: Clock = { nowMs: () => systemClock.nowMs() + offsetMs, wallMs: () => systemClock.wallMs() };
    const e = new EtcdElection(client.namespace('/e2/'), { self: member('p'), leaseTtlS: 2, pollMs: 50 }, clock, silentLogger);
    const lost: string[] = [];
    e.onLost((r) => lost.push(r));
    await e.campaign();
    assert.equal(e.holdsLease(), true);
    offsetMs = 10_000; // as if the process had been paused for 10 s
    assert.equal(e.holdsLease(), false);
    assert.equal(lost.length, 1);
    assert.match(lost[0]!, /not renewed/);
    await e.close();
  });
});

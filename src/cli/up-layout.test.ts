import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nodeHeapArgs, planUp, type UpLayoutInput } from './up-layout.js';

const base: UpLayoutInput = {
  runtime: 'emulated', workers: 4, stateDir: '/s', apiPort: 9091, rpcPort: 9090, proxyPort: 8080, internalPort: 8081, workerPort: 10010,
  placement: 'kubernetes', loadBalancing: 'least-processing', store: 'sqlite', controlPlanes: 1, dataPlanes: 1,
  frontendPort: 8079, frontendApiPort: 9092, etcdPort: 2379, heartbeatPeriodMs: 1000, heartbeatTimeoutMs: 3000,
};

const names = (l: ReturnType<typeof planUp>): string[][] => l.stages.map((s) => s.map((c) => c.name));
const argAfter = (args: string[], flag: string): string | undefined => args[args.indexOf(flag) + 1];

describe('planUp', () => {
  it('runs one CP, then one DP and one emulated worker process, without front end', () => {
    const l = planUp(base);
    assert.equal(l.ha, false);
    assert.deepEqual(names(l), [['control-plane'], ['data-plane', 'worker']]);
    assert.equal(l.apiUrl, 'http://127.0.0.1:9091');
    assert.equal(l.proxyUrl, 'http://127.0.0.1:8080');
    const worker = l.stages[1]![1]!;
    assert.equal(argAfter(worker.args, '--count'), '4');
    assert.equal(argAfter(worker.args, '--control-plane'), '127.0.0.1:9090');
  });

  it('--rpc-thread reaches every CP as given; auto leaves each CP its own default', () => {
    const cps = planUp({ ...base, store: 'etcd', controlPlanes: 2, rpcThread: 'thread' }).stages.flat().filter((c) => c.kind === 'control-plane');
    assert.equal(cps.length, 2);
    for (const cp of cps) assert.equal(argAfter(cp.args, '--rpc-thread'), 'thread');
    const loop = planUp({ ...base, rpcThread: 'loop' }).stages.flat().filter((c) => c.kind === 'control-plane');
    assert.equal(argAfter(loop[0]!.args, '--rpc-thread'), 'loop');
    const auto = planUp({ ...base, rpcThread: 'auto' }).stages.flat().filter((c) => c.kind === 'control-plane');
    assert.ok(!auto[0]!.args.includes('--rpc-thread'));
  });

  it('--queue-floor off reaches every CP (plain KPA, as the reference); on is the CPs\' default', () => {
    const off = planUp({ ...base, store: 'etcd', controlPlanes: 3, queueFloor: 'off' });
    const cps = off.stages.flat().filter((c) => c.kind === 'control-plane');
    assert.equal(cps.length, 3);
    for (const cp of cps) assert.equal(argAfter(cp.args, '--queue-floor'), 'off');
    const on = planUp({ ...base, queueFloor: 'on' }).stages.flat().filter((c) => c.kind === 'control-plane');
    assert.ok(!on[0]!.args.includes('--queue-floor'));
  });

  it('gives each process-runtime worker its own process and port', () => {
    const l = planUp({ ...base, runtime: 'process', workers: 2 });
    const workers = l.stages[1]!.filter((c) => c.kind === 'worker');
    assert.deepEqual(workers.map((c) => [c.name, argAfter(c.args, '--id'), argAfter(c.args, '--port')]), [
      ['worker-1', 'worker-1', '10010'],
      ['worker-2', 'worker-2', '10011'],
    ]);
    // Sandbox uids are their wall: two workers on one host never hand out the same one.
    assert.deepEqual(workers.map((c) => [argAfter(c.args, '--sandbox-uid-range'), argAfter(c.args, '--sandbox-port-range')]), [
      ['200000,209999', '20000,24999'],
      ['210000,219999', '25000,29999'],
    ]);
  });

  it('lays out etcd, three CPs, two DPs, workers and the front end on the documented ports', () => {
    const l = planUp({ ...base, store: 'etcd', controlPlanes: 3, dataPlanes: 2 });
    assert.equal(l.ha, true);
    assert.deepEqual(names(l), [['etcd'], ['control-plane-0', 'control-plane-1', 'control-plane-2'], ['data-plane-0', 'data-plane-1', 'worker'], ['frontend']]);
    const cps = l.stages[1]!;
    assert.deepEqual(cps.map((c) => [argAfter(c.args, '--api-port'), argAfter(c.args, '--rpc-port'), argAfter(c.args, '--id'), argAfter(c.args, '--store')]), [
      ['9091', '9090', 'cp-0', 'etcd://127.0.0.1:2379'],
      ['9191', '9190', 'cp-1', 'etcd://127.0.0.1:2379'],
      ['9291', '9290', 'cp-2', 'etcd://127.0.0.1:2379'],
    ]);
    const rpcs = '127.0.0.1:9090,127.0.0.1:9190,127.0.0.1:9290';
    for (const c of l.stages[2]!) assert.equal(argAfter(c.args, '--control-plane'), rpcs);
    assert.deepEqual(l.stages[2]!.slice(0, 2).map((c) => [argAfter(c.args, '--proxy-port'), argAfter(c.args, '--internal-port')]), [['8080', '8081'], ['8180', '8181']]);
    const fe = l.stages[3]![0]!;
    assert.equal(argAfter(fe.args, '--control-planes'), '127.0.0.1:9091,127.0.0.1:9191,127.0.0.1:9291');
    assert.equal(argAfter(fe.args, '--data-planes'), '127.0.0.1:8080,127.0.0.1:8180');
    assert.equal(fe.args.includes('--api-health-path'), false, 'replicas need the leader check');
    assert.equal(l.apiUrl, 'http://127.0.0.1:9092');
    assert.equal(l.proxyUrl, 'http://127.0.0.1:8079');
    assert.equal(l.etcdUrl, 'http://127.0.0.1:2379');
    assert.equal(argAfter(l.stages[0]![0]!.args, '--data-dir'), '/s/etcd');
  });

  it('names every CP, DP and worker process its own /metrics URL (benches read event-loop delay there)', () => {
    const urls = (l: ReturnType<typeof planUp>): (string | undefined)[] => l.stages.flat().filter((c) => c.kind !== 'etcd' && c.kind !== 'frontend').map((c) => c.metricsUrl);
    assert.deepEqual(urls(planUp({ ...base, runtime: 'process', workers: 2 })), [
      'http://127.0.0.1:9091/metrics', 'http://127.0.0.1:8081/metrics', 'http://127.0.0.1:10010/metrics', 'http://127.0.0.1:10011/metrics',
    ]);
    assert.deepEqual(urls(planUp({ ...base, store: 'etcd', controlPlanes: 2, dataPlanes: 2 })), [
      'http://127.0.0.1:9091/metrics', 'http://127.0.0.1:9191/metrics', 'http://127.0.0.1:8081/metrics', 'http://127.0.0.1:8181/metrics', 'http://127.0.0.1:10010/metrics',
    ]);
  });

  it('puts a front end before several DPs even with one SQLite CP, checking plain /health', () => {
    const l = planUp({ ...base, dataPlanes: 2 });
    const fe = l.stages.at(-1)![0]!;
    assert.equal(fe.kind, 'frontend');
    assert.equal(argAfter(fe.args, '--api-health-path'), '/health');
  });

  it('data planes of a local cluster accept callbacks to this machine', () => {
    for (const dp of planUp(base).stages[1]!.filter((c) => c.kind === 'data-plane')) {
      assert.equal(dp.args[dp.args.indexOf('--async-callback-allow-private') + 1], 'true');
    }
  });

  it('--async-store redis starts a durable local redis-server first and points every DP at it', () => {
    const l = planUp({ ...base, store: 'etcd', dataPlanes: 2, asyncStore: 'redis', redisPort: 6479 });
    assert.deepEqual(names(l)[0], ['etcd', 'redis']);
    const redis = l.stages[0]![1]!;
    assert.equal(redis.kind, 'redis');
    assert.equal(argAfter(redis.args, '--port'), '6479');
    assert.equal(argAfter(redis.args, '--bind'), '127.0.0.1');
    assert.equal(argAfter(redis.args, '--dir'), '/s/redis');
    assert.equal(argAfter(redis.args, '--appendonly'), 'yes');
    assert.equal(argAfter(redis.args, '--appendfsync'), 'always');
    assert.equal(l.redisUrl, 'redis://127.0.0.1:6479');
    const dps = l.stages[2]!.filter((c) => c.kind === 'data-plane');
    assert.deepEqual(dps.map((c) => argAfter(c.args, '--async-store')), ['redis://127.0.0.1:6479', 'redis://127.0.0.1:6479']);
  });

  it('starts no Redis by default and DPs keep their SQLite default', () => {
    const l = planUp(base);
    assert.equal(l.redisUrl, undefined);
    assert.equal(l.stages.flat().some((c) => c.kind === 'redis' || c.args.includes('--async-store')), false);
    assert.deepEqual(names(planUp({ ...base, asyncStore: 'redis' }))[0], ['control-plane', 'redis']);
  });

  it('lists every port a component will listen on, with the flag that sets it', () => {
    const ports = (l: ReturnType<typeof planUp>): [string, number, string][] =>
      l.stages.flat().flatMap((c) => c.listens.map((x): [string, number, string] => [c.name, x.port, x.flag]));
    assert.deepEqual(ports(planUp(base)), [
      ['control-plane', 9091, '--api-port'], ['control-plane', 9090, '--rpc-port'],
      ['data-plane', 8080, '--proxy-port'], ['data-plane', 8081, '--internal-port'], ['worker', 10010, '--worker-port'],
    ]);
    const ha = ports(planUp({ ...base, store: 'etcd', controlPlanes: 2, dataPlanes: 2, runtime: 'process', workers: 2, asyncStore: 'redis', redisPort: 6400 }));
    assert.deepEqual(ha.filter(([name]) => ['etcd', 'redis', 'frontend', 'worker-2', 'control-plane-1', 'data-plane-1'].includes(name)), [
      ['etcd', 2379, '--etcd-port'], ['etcd', 2380, '--etcd-port'], ['redis', 6400, '--redis-port'],
      ['control-plane-1', 9191, '--api-port'], ['control-plane-1', 9190, '--rpc-port'],
      ['data-plane-1', 8180, '--proxy-port'], ['data-plane-1', 8181, '--internal-port'], ['worker-2', 10011, '--worker-port'],
      ['frontend', 8079, '--frontend-port'], ['frontend', 9092, '--frontend-api-port'],
    ]);
    // Each port once: two components never plan the same one.
    assert.equal(new Set(ha.map(([, port]) => port)).size, ha.length);
  });

  it('holds the API and invocation ports across restarts without a front end, and none behind one', () => {
    const held = (l: ReturnType<typeof planUp>): [string, number, string][] =>
      l.stages.flat().flatMap((c) => (c.held ?? []).map((h): [string, number, string] => [c.name, h.port, h.fdFlag]));
    assert.deepEqual(held(planUp(base)), [['control-plane', 9091, '--api-fd'], ['data-plane', 8080, '--proxy-fd']]);
    // Behind HAProxy a refused connection sends the request to another replica at once.
    assert.deepEqual(held(planUp({ ...base, store: 'etcd', controlPlanes: 2, dataPlanes: 2 })), []);
    assert.deepEqual(held(planUp({ ...base, dataPlanes: 2 })), []);
  });

  it('refuses several CPs on SQLite', () => {
    assert.throws(() => planUp({ ...base, controlPlanes: 3 }), /--store etcd/);
  });
});

describe('nodeHeapArgs', () => {
  it('sets V8\'s first old-generation limit, or leaves V8\'s own at 0', () => {
    assert.deepEqual(nodeHeapArgs(256), ['--initial-old-space-size=256']);
    assert.deepEqual(nodeHeapArgs(0), []);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dataPlanesFromCluster, resolveHostPort, wantedDataPlanes } from './discovery.js';

describe('dataPlanesFromCluster', () => {
  it('takes the proxy addresses of listed data planes', () => {
    const body = { workers: [], dataPlanes: [{ id: 'a', proxyAddress: '127.0.0.1:8080', connected: true }, { id: 'b', proxyAddress: '127.0.0.1:8180', connected: false }] };
    assert.deepEqual(dataPlanesFromCluster(body), ['127.0.0.1:8080', '127.0.0.1:8180']);
  });

  it('ignores malformed bodies and entries', () => {
    assert.equal(dataPlanesFromCluster(null), null);
    assert.equal(dataPlanesFromCluster({ dataPlanes: 'x' }), null);
    assert.deepEqual(dataPlanesFromCluster({ dataPlanes: [null, { proxyAddress: 5 }, { proxyAddress: 'nope' }] }), []);
  });

  it('skips data planes that advertise the unspecified address', () => {
    assert.deepEqual(dataPlanesFromCluster({ dataPlanes: [{ proxyAddress: '0.0.0.0:8080' }, { proxyAddress: '10.0.0.2:8080' }] }), ['10.0.0.2:8080']);
  });
});

describe('wantedDataPlanes', () => {
  it('unites static and discovered data planes', () => {
    assert.deepEqual(wantedDataPlanes(['a:1'], ['b:2', 'a:1'], []), ['a:1', 'b:2']);
  });

  it('keeps the previous set when the CP lists none or cannot be read', () => {
    assert.deepEqual(wantedDataPlanes([], [], ['b:2']), ['b:2']);
    assert.deepEqual(wantedDataPlanes([], null, ['b:2']), ['b:2']);
  });

  it('drops a discovered DP the CP no longer lists', () => {
    assert.deepEqual(wantedDataPlanes([], ['c:3'], ['b:2', 'c:3']), ['c:3']);
  });
});

describe('resolveHostPort', () => {
  it('keeps IPs and resolves names', async () => {
    assert.equal(await resolveHostPort('10.1.2.3:80'), '10.1.2.3:80');
    assert.equal(await resolveHostPort('localhost:80'), '127.0.0.1:80');
    assert.equal(await resolveHostPort('junk'), null);
  });
});

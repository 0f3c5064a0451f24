/**
 * Goal: every knob of the control plane, data plane and worker compiles through one schema:
 * strings from flags/env and numbers from a file are accepted alike, defaults fill the rest,
 * and a bad value is one line naming the key, the value and the legal range.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { controlPlaneDefaults, dataPlaneDefaults, workerDefaults } from './defaults.js';
import {
  compileControlPlane,
  compileDataPlane,
  compileWorker,
  ConfigError,
  controlPlaneKnobs,
  dataPlaneKnobs,
  workerKnobs,
} from './compile.js';
import { lbPolicyNames } from '../policy/load-balancing/lb.js';
import { placementPolicyNames } from '../policy/placement/placement.js';

test('defaults compile unchanged; every default key has a knob with a range', () => {
  assert.deepEqual(compileControlPlane({}), { ...controlPlaneDefaults, logLevel: 'info' });
  assert.deepEqual(compileDataPlane({}), { ...dataPlaneDefaults, id: '', logLevel: 'info' });
  assert.equal(compileWorker({}).count, 1);
  for (const [defaults, knobs] of [[controlPlaneDefaults, controlPlaneKnobs],
    [dataPlaneDefaults, dataPlaneKnobs], [workerDefaults, workerKnobs]] as const) {
    for (const key of Object.keys(defaults)) assert.ok(key in knobs, `${key} needs a knob in config/compile.ts`);
  }
});

test('flag and env strings become numbers; file numbers pass as they are', () => {
  const dp = compileDataPlane({ queueDepthMax: '25', queueWaitMsMax: 500, reconnectBackoffMs: '10,20' });
  assert.equal(dp.queueDepthMax, 25);
  assert.equal(dp.queueWaitMsMax, 500);
  assert.deepEqual(dp.reconnectBackoffMs, [10, 20]);
});

test('a bad value names the key, the value and the range', () => {
  const cases: [() => unknown, string][] = [
    [() => compileDataPlane({ queueDepthMax: '-1' }), 'data plane: queueDepthMax must be an integer in [1, 1000000], got -1'],
    [() => compileDataPlane({ queueDepthMax: 'many' }), 'data plane: queueDepthMax must be an integer in [1, 1000000], got many'],
    [() => compileDataPlane({ queueDepthMax: '2.5' }), 'data plane: queueDepthMax must be an integer in [1, 1000000], got 2.5'],
    [() => compileControlPlane({ apiPort: 70000 }), 'control plane: apiPort must be an integer in [0, 65535], got 70000'],
    [() => compileWorker({ reconnectBackoffMs: [5, 1] }), 'worker: reconnectBackoffMs must be two integers low,high with 1 <= low <= high <= 600000, got [5,1]'],
    [() => compileDataPlane({ controlPlane: 'nowhere' }), 'data plane: controlPlane must be host:port[,host:port...], got nowhere'],
    [() => compileWorker({ controlPlane: 'a:1,,b:2' }), 'worker: controlPlane must be host:port[,host:port...], got a:1,,b:2'],
    [() => compileControlPlane({ store: 'redis://x' }), 'control plane: store must be sqlite:<path> or etcd://host:port[,host:port...], got redis://x'],
    [() => compileWorker({ runtime: 'firecracker' }), 'worker: runtime must be a comma-separated list of process | emulated | oci | containerd (emulated alone), got firecracker'],
    [() => compileWorker({ runtime: 'process,emulated' }), 'worker: runtime must be a comma-separated list of process | emulated | oci | containerd (emulated alone), got process,emulated'],
    [() => compileWorker({ runtime: 'oci,oci' }), 'worker: runtime must be a comma-separated list of process | emulated | oci | containerd (emulated alone), got oci,oci'],
    [() => compileWorker({ isolation: 'chroot' }), 'worker: isolation must be one of bwrap | none | auto, got chroot'],
    [() => compileWorker({ egressDenyCidrs: '10.0.0.0' }), "worker: egressDenyCidrs must be '' or comma-separated CIDRs (10.0.0.0/8,fc00::/7), got 10.0.0.0"],
  ];
  for (const [run, message] of cases) assert.throws(run, (e) => e instanceof ConfigError && e.message === message, message);
});

test('a worker may have several runtimes', () => {
  assert.equal(compileWorker({ runtime: 'process,oci,containerd' }).runtime, 'process,oci,containerd');
});

test('policy names come from the one list in src/policy', () => {
  assert.throws(() => compileControlPlane({ placement: 'best' }),
    new ConfigError(`control plane: placement must be one of ${placementPolicyNames.join(' | ')}, got best`));
  assert.throws(() => compileDataPlane({ loadBalancing: 'fastest' }),
    new ConfigError(`data plane: loadBalancing must be one of ${lbPolicyNames.join(' | ')}, got fastest`));
  for (const name of lbPolicyNames) assert.equal(compileDataPlane({ loadBalancing: name }).loadBalancing, name);
});

test('an unknown option (e.g. a typo in the config file) is refused with the known keys', () => {
  assert.throws(() => compileDataPlane({ queueDepthMaxx: 3 }), /data plane: unknown option queueDepthMaxx \(known: .*queueDepthMax/);
});

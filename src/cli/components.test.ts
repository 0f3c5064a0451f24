/**
 * Goal: `dirigent control-plane | data-plane | worker` refuse a bad knob before starting
 * anything: one line naming the key, the value and the range, exit code 2; values come from
 * flag > env (DIRIGENT_<UPPER_SNAKE>) > --config file. Method: runCli in-process with only
 * bad values, so no component ever starts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { lbPolicyNames } from '../policy/load-balancing/lb.js';
import { registerComponentCommands } from './components.js';
import { captureIo } from './fake-http.js';
import { runCli } from './program.js';

async function run(argv: string[], env: Record<string, string> = {}) {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    const io = captureIo();
    const code = await runCli(argv, io, [registerComponentCommands]);
    return { code, out: io.out(), err: io.err() };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe('component commands: config checks', { timeout: 20_000 }, () => {
  let dir = '';
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'dirigent-config-')); });
  after(() => rm(dir, { recursive: true, force: true }));

  test('data-plane --queue-depth-max -1: one line with key, value and range; exit 2', async () => {
    const r = await run(['data-plane', '--queue-depth-max', '-1']);
    assert.equal(r.code, 2);
    assert.equal(r.err, 'error: data plane: queueDepthMax must be an integer in [1, 1000000], got -1\n');
  });

  test('precedence: flag > env > config file', async () => {
    const file = join(dir, 'dp.json');
    await writeFile(file, JSON.stringify({ queueDepthMax: -5 }));
    const fromFile = await run(['data-plane', '--config', file]);
    assert.match(fromFile.err, /queueDepthMax must be .*, got -5\n$/);
    const fromEnv = await run(['data-plane', '--config', file], { DIRIGENT_QUEUE_DEPTH_MAX: '-7' });
    assert.match(fromEnv.err, /queueDepthMax must be .*, got -7\n$/);
    const fromFlag = await run(['data-plane', '--config', file, '--queue-depth-max', '-9'], { DIRIGENT_QUEUE_DEPTH_MAX: '-7' });
    assert.match(fromFlag.err, /queueDepthMax must be .*, got -9\n$/);
    const configFromEnv = await run(['data-plane'], { DIRIGENT_CONFIG: file });
    assert.match(configFromEnv.err, /got -5\n$/);
  });

  test('a config file that is not JSON, or has an unknown key, is a usage error', async () => {
    const broken = join(dir, 'broken.json');
    await writeFile(broken, '{ nope');
    const r = await run(['worker', '--config', broken]);
    assert.equal(r.code, 2);
    assert.match(r.err, /^error: --config .*broken\.json: /);
    const typo = join(dir, 'typo.json');
    await writeFile(typo, JSON.stringify({ heartbeatPeriodMss: 5 }));
    const t = await run(['worker', '--config', typo]);
    assert.equal(t.code, 2);
    assert.match(t.err, /worker: unknown option heartbeatPeriodMss/);
  });

  test('help lists each knob with its env name, its range and the policy names', async () => {
    const r = await run(['data-plane', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.out, /--queue-depth-max <value>[^]*integer in \[1, 1000000\][^]*env: DIRIGENT_QUEUE_DEPTH_MAX/);
    assert.match(r.out.replace(/\s+/g, ' '), new RegExp(`one of ${lbPolicyNames.join(' \\| ')}`));
  });

  test('control-plane --placement best names the legal policies', async () => {
    const r = await run(['control-plane', '--placement', 'best']);
    assert.equal(r.code, 2);
    assert.match(r.err, /^error: control plane: placement must be one of kubernetes \| random \| round-robin, got best\n$/);
  });
});

/**
 * Goal: an async attempt that meets a sandbox which died before the CP said so (its port refuses
 * connections) is not spent on it: the sandbox leaves the rotation and the same attempt runs on
 * another sandbox, body included; only when every try is refused does the attempt fail.
 * Method: the real core and executor with undici pools, a real upstream on loopback and a
 * loopback port nothing listens on; effects run as the DP's wiring runs them.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import type { EndpointMsg, FunctionSpecMsg } from '../../api/cluster.js';
import { systemClock } from '../../shared/clock.js';
import { silentLogger } from '../../shared/logger.js';
import { seededRng } from '../../shared/rng.js';
import { DataPlaneCore, type DpEffect } from '../core/data-plane.js';
import { executeAsync, isAsyncWaiter } from './executor.js';
import type { AsyncInvocation } from './types.js';

const spec: FunctionSpecMsg = {
  name: 'f', uid: 'u1', generation: 1, image: '', command: ['x'], port: 0, env: {}, egress: false, auth: 'none', concurrency: 1, timeoutMs: 10_000, workingDir: '',
};
const endpoint = (sandboxId: string, address: string): EndpointMsg => ({ sandboxId, function: 'f', functionUid: 'u1', address, workerId: 'w' });

function invocation(body: string): AsyncInvocation {
  return {
    id: 'inv-1', functionKey: 'f', request: { method: 'POST', path: '/', query: '', headers: {}, body: Buffer.from(body) },
    status: 'running', attempts: [], nextAttemptAtMs: 0, acceptedAtMs: 0,
  };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

describe('async executor and a dead sandbox', { timeout: 20_000 }, () => {
  const pools = new Map<string, Pool>();
  const upstream = createServer((req, res) => req.pipe(res));
  let live = '';
  /** Addresses nothing listens on, distinct: a refusal takes out every sandbox at its address. */
  let dead: string[] = [];
  before(async () => {
    live = `127.0.0.1:${await listen(upstream)}`;
    const gone = [1, 2, 3, 4, 5].map(() => createServer());
    dead = (await Promise.all(gone.map((g) => listen(g)))).map((port) => `127.0.0.1:${port}`);
    await Promise.all(gone.map((g) => new Promise((r) => g.close(r))));
  });
  after(async () => {
    await Promise.all([...pools.values()].map((p) => p.destroy()));
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
  });

  function rig(endpoints: EndpointMsg[]) {
    const core = new DataPlaneCore({ queueDepthMax: 10, queueWaitMsMax: 5_000, loadBalancing: 'least-loaded' }, seededRng(1), silentLogger);
    assert.ok(core.applyRouting({ case: 'snapshot', value: { version: 1, functions: [spec], endpoints, drainEndpoints: [], tokens: [] } }, systemClock.nowMs()).ok);
    const run = (effects: DpEffect[]): void => {
      for (const fx of effects) {
        if (fx.kind === 'dispatch' && isAsyncWaiter(fx.waiter)) fx.waiter.onDispatch();
        else if (fx.kind === 'fail' && isAsyncWaiter(fx.waiter)) fx.waiter.onFail(fx.status, fx.code, fx.message);
      }
    };
    const poolFor = (ep: { address: string }): Pool => {
      let p = pools.get(ep.address);
      if (!p) pools.set(ep.address, (p = new Pool(`http://${ep.address}`)));
      return p;
    };
    return { core, deps: { core, clock: systemClock, run, poolFor, resultBytesMax: 1024, authToken: false } };
  }

  it('the attempt runs on the live sandbox; the dead ones leave the rotation', async () => {
    const { core, deps } = rig([endpoint('d1', dead[0]!), endpoint('d2', dead[0]!), endpoint('d3', dead[1]!), endpoint('live', live)]);
    for (let i = 0; i < 3; i += 1) {
      const out = await executeAsync(deps, invocation(`hello ${i}`));
      assert.equal(out.kind, 'done');
      if (out.kind !== 'done') return;
      assert.equal(out.attempt.outcome, 'ok', JSON.stringify(out.attempt));
      assert.equal(out.result?.body.toString(), `hello ${i}`);
    }
    assert.deepEqual([...core.endpoints.keys()], ['live']);
    assert.equal(core.functions.get('f')!.inflight, 0);
  });

  it('every sandbox refusing: the attempt fails as a 502 (for the retry policy), nothing leaks', async () => {
    const { core, deps } = rig(dead.map((address, i) => endpoint(`d${i + 1}`, address)));
    const out = await executeAsync(deps, invocation('x'));
    assert.equal(out.kind, 'done');
    if (out.kind !== 'done') return;
    assert.deepEqual([out.attempt.outcome, out.attempt.statusCode], ['http_5xx', 502]);
    assert.match(out.attempt.error ?? '', /refused the connection \(4 tries\)/);
    const f = core.functions.get('f')!;
    assert.deepEqual([f.inflight, f.queued, f.level], [0, 0, 0]);
  });
});

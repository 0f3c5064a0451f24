/**
 * Goal: the registry is serialized per function name (issue 7): concurrent PATCHes of different
 * fields all apply, a DELETE racing a PATCH never answers 204 and then sees the function come
 * back, and parallel creates of one name give exactly one 201. Method: a real CP process (no
 * workers needed), many requests in flight at once over HTTP.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster } from './harness.js';

/** One field per PATCH body, each with a value different from its default. */
const fieldPatches: { body: Record<string, unknown>; check: (spec: Spec) => unknown; want: unknown }[] = [
  { body: { port: 9001 }, check: (s) => s.port, want: 9001 },
  { body: { concurrency: 7 }, check: (s) => s.concurrency, want: 7 },
  { body: { timeoutMs: 12_345 }, check: (s) => s.timeoutMs, want: 12_345 },
  { body: { resources: { cpuMillis: 321 } }, check: (s) => s.resources.cpuMillis, want: 321 },
  { body: { resources: { memoryMiB: 333 } }, check: (s) => s.resources.memoryMiB, want: 333 },
  { body: { env: { A: '1' } }, check: (s) => s.env.A, want: '1' },
  { body: { scaling: { max: 77 } }, check: (s) => s.scaling.max, want: 77 },
  { body: { scaling: { targetUtilization: 0.5 } }, check: (s) => s.scaling.targetUtilization, want: 0.5 },
  { body: { scaling: { stableWindowS: 33 } }, check: (s) => s.scaling.stableWindowS, want: 33 },
  { body: { scaling: { panicWindowS: 3 } }, check: (s) => s.scaling.panicWindowS, want: 3 },
  { body: { scaling: { panicThreshold: 2.5 } }, check: (s) => s.scaling.panicThreshold, want: 2.5 },
  { body: { scaling: { maxScaleUpRate: 5 } }, check: (s) => s.scaling.maxScaleUpRate, want: 5 },
  { body: { scaling: { maxScaleDownRate: 3 } }, check: (s) => s.scaling.maxScaleDownRate, want: 3 },
  { body: { scaling: { scaleToZeroGraceS: 11 } }, check: (s) => s.scaling.scaleToZeroGraceS, want: 11 },
  { body: { scaling: { scaleDownDelayS: 4 } }, check: (s) => s.scaling.scaleDownDelayS, want: 4 },
  { body: { scaling: { tickS: 0.5 } }, check: (s) => s.scaling.tickS, want: 0.5 },
  { body: { scaling: { keepAliveWindowS: 900 } }, check: (s) => s.scaling.keepAliveWindowS, want: 900 },
];

interface Spec {
  port: number;
  concurrency: number;
  timeoutMs: number;
  resources: { cpuMillis: number; memoryMiB: number };
  env: Record<string, string>;
  scaling: Record<string, number>;
}

describe('registry serialization on a real control plane', { timeout: 120_000 }, () => {
  const c = new TestCluster();
  before(async () => {
    await c.startControlPlaneAlone();
  });
  after(async () => {
    await c.stop();
  });

  const patch = (name: string, body: unknown) =>
    c.send('PATCH', `${c.api}/v1/functions/${name}`, JSON.stringify(body), { 'content-type': 'application/json' });

  it('applies all of 50 concurrent PATCHes of different fields', async () => {
    assert.equal((await c.deploy({ name: 'patched', command: ['node', 'x.js'] })).status, 201);
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => patch('patched', fieldPatches[i % fieldPatches.length]!.body)));
    for (const r of answers) assert.equal(r.status, 200, r.text);
    const spec = ((await c.get(`${c.api}/v1/functions/patched`)).json as { function: Spec }).function;
    for (const f of fieldPatches) assert.deepEqual(f.check(spec), f.want, `lost update ${JSON.stringify(f.body)}`);
  });

  it('never answers 204 to a DELETE and then shows the function again after a racing PATCH', async () => {
    for (let round = 0; round < 20; round += 1) {
      const name = `race-${round}`;
      assert.equal((await c.deploy({ name, command: ['node', 'x.js'] })).status, 201);
      const [del, pat] = await Promise.all([
        c.send('DELETE', `${c.api}/v1/functions/${name}`),
        patch(name, { concurrency: 3 }),
      ]);
      assert.equal(del.status, 204, del.text);
      assert.ok(pat.status === 200 || pat.status === 404, pat.text);
      assert.equal((await c.get(`${c.api}/v1/functions/${name}`)).status, 404, `round ${round}: deleted function came back`);
    }
  });

  it('gives exactly one 201 and 49 409s for 50 parallel creates of one name', async () => {
    const answers = await Promise.all(Array.from({ length: 50 }, () => c.deploy({ name: 'once', command: ['node', 'x.js'] })));
    const codes = answers.map((r) => r.status);
    assert.equal(codes.filter((s) => s === 201).length, 1, codes.join(','));
    assert.equal(codes.filter((s) => s === 409).length, 49, codes.join(','));
  });
});

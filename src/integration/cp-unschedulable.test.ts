/**
 * Goal: a function no worker can run is visible and fails fast (issue 7): its status names the
 * placement reason, and an invocation is answered 503 with that reason within a few seconds
 * instead of waiting out the queue limit. Method: a real cluster whose only worker runs the
 * process runtime; the function asks for an image.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster, waitFor } from './harness.js';

interface Status {
  unschedulableReason?: string;
  unschedulableSinceMs?: number;
}

/** unschedulableFailAfterMs (2 s) plus a demand report and a routing round trip. */
const failFastMsMax = 5_000;

describe('unschedulable functions on a real cluster', { timeout: 60_000 }, () => {
  const c = new TestCluster({ workers: 1, runtime: 'process' });
  before(async () => {
    await c.start();
  });
  after(async () => {
    await c.stop();
  });

  it('shows the placement reason in status and fails invocations fast', async () => {
    const r = await c.deploy({ name: 'needs-image', image: 'docker.io/library/nginx:latest' });
    assert.equal(r.status, 201, r.text);
    const started = Date.now();
    const inv = await c.invoke('needs-image');
    const tookMs = Date.now() - started;
    assert.ok(tookMs < failFastMsMax, `answered after ${tookMs} ms`);
    assert.ok(inv.status === 503 || inv.status === 502, `${inv.status} ${inv.text}`);
    assert.match(inv.text, /without an image runtime/);
    await waitFor(async () => {
      const s = ((await c.get(`${c.api}/v1/functions/needs-image`)).json as { status: Status }).status;
      const since = s.unschedulableSinceMs ?? 0;
      return /1 without an image runtime \(start workers with --runtime oci or containerd, or emulated to benchmark\)/.test(s.unschedulableReason ?? '') && since >= started - 1_000 && since <= Date.now();
    }, 5_000, 'unschedulableReason in status');
  });

  it('answers 503 (not 502) for an unschedulable function', async () => {
    const inv = await c.invoke('needs-image');
    assert.equal(inv.status, 503, inv.text);
  });
});

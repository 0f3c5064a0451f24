/**
 * Goal: issue 10's live fuzzer runs in `npm test` too: a few seconds of generated management,
 * invocation and raw-HTTP input at a real emulated cluster leave every component alive, every
 * management reply 2xx/4xx with a JSON body and memory bounded. Method: runFuzz in-process
 * (it starts and stops its own cluster on free loopback ports), a fixed seed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runFuzz } from './run.js';

/** Long enough to hit every kind of input many times, short enough for the suite. */
const fuzzSeconds = 5;

describe('live fuzzer', { timeout: 90_000 }, () => {
  test(`${fuzzSeconds} s of hostile input: nothing exits, every management reply is sane`, async () => {
    const lines: string[] = [];
    const r = await runFuzz({ seconds: fuzzSeconds, seed: 20_261_202, concurrency: 4, out: (l) => lines.push(l) });
    assert.equal(r.failure, null, lines.join('\n'));
    assert.ok(r.sent > 100, `only ${r.sent} inputs sent`);
    for (const kind of ['management', 'invocation', 'raw']) {
      assert.ok(Object.keys(r.counts).some((k) => k.startsWith(kind)), `no ${kind} input sent: ${JSON.stringify(r.counts)}`);
    }
  });
});

#!/usr/bin/env node
// What the DP's side of a sandbox call costs, per call, on real loopback sockets: the lean
// upstream pool sends a GET to a sandbox stand-in (a child process answering the emulated
// responder's answer: a keep-alive head and a 48-byte JSON body) and reads the answer into a
// response that keeps nothing. 32 calls in flight in a closed loop over 32 kept-alive
// connections, as `bench warm --connections 32` puts on one worker. Seven rounds of 3 s after a
// 2 s warm-up; prints the median CPU microseconds of this process per call (user + system, and
// user alone: the system part is mostly the loopback and its wake-ups, and varies most), and
// calls per second.
//
// Give a build's root to compare two builds (their `dist/` must be built):
//
//   taskset -c 1 node scripts/upstream-bench.mjs [root]
//
// Both processes on one CPU (taskset) make runs repeatable on a shared 2-vCPU machine: unpinned,
// whether the two land on one CPU or two moves a run by up to 1.5x. Alternate the builds.
import { fileURLToPath } from 'node:url';
import { forkStandIn, measureRounds, runStandIn, standInFlag } from './loopback-closed-loop.mjs';

if (process.argv[2] === standInFlag) {
  runStandIn();
} else {
  const root = process.argv[2] ?? fileURLToPath(new URL('..', import.meta.url));
  const { LeanUpstreamPool, LeanUpstreamCall } = await import(`${root}/dist/data-plane/shell/lean-upstream.js`);
  const { systemClock } = await import(`${root}/dist/shared/clock.js`);
  const { silentLogger } = await import(`${root}/dist/shared/logger.js`);

  const inFlight = 32;
  const { child, port } = await forkStandIn(fileURLToPath(import.meta.url));
  const pool = new LeanUpstreamPool('127.0.0.1', port, { connectionsMax: inFlight, connectTimeoutMs: 5_000, keepAliveMs: 4_000, keepAliveMsMax: 60_000 }, systemClock);
  const head = `GET /invoke HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nx-dirigent-sandbox: sb-0123456789abcdef\r\n\r\n`;
  const res = { write: () => true, once() {}, writableNeedDrain: false };
  let calls = 0;
  let failures = 0;
  let running = true;
  const one = () => {
    const events = {
      head: () => true,
      end: () => {
        calls += 1;
        if (running) one();
      },
      failed: () => {
        failures += 1;
        if (running) one();
      },
    };
    pool.dispatch(new LeanUpstreamCall(pool, head, null, false, res, events, silentLogger));
  };
  const result = await measureRounds(() => { for (let i = 0; i < inFlight; i++) one(); }, () => calls);
  running = false;
  const failedBefore = failures;
  pool.destroy();
  child.kill();
  if (failedBefore > 0) console.log(`${failedBefore} calls failed (not counted)`);
  console.log(result.text);
}

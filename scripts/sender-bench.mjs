#!/usr/bin/env node
// What the load generator's sender costs, per request, on real loopback sockets: `send` (the
// benches' entry) puts GETs on the pool `bench cold` and `bench warm` use (the lean client over
// plain HTTP) or on undici's pool (`createSenderPool`, still used by the other benches), against
// a stand-in for the DP answering a keep-alive head and a 48-byte body. 32 requests in flight in
// a closed loop over 32 connections; seven rounds of 3 s after a 2 s warm-up; prints the median
// CPU microseconds of this process per request (user + system, and user alone) and requests/s.
//
//   taskset -c 1 node scripts/sender-bench.mjs lean|undici [root]
//
// Both processes on one CPU (taskset) keep runs repeatable on a shared 2-vCPU machine;
// alternate the two senders.
import { fileURLToPath } from 'node:url';
import { forkStandIn, measureRounds, runStandIn, standInFlag } from './loopback-closed-loop.mjs';

if (process.argv[2] === standInFlag) {
  runStandIn();
} else {
  const sender = process.argv[2] === 'undici' ? 'undici' : 'lean';
  const root = process.argv[3] ?? fileURLToPath(new URL('..', import.meta.url));
  const senders = await import(`${root}/dist/loadgen/shell/http-sender.js`);
  const createPool = sender === 'undici' ? senders.createSenderPool : senders.createBodilessSenderPool;
  const { send } = senders;

  const inFlight = 32;
  const { child, port } = await forkStandIn(fileURLToPath(import.meta.url));
  const pool = createPool({ origin: `http://127.0.0.1:${port}`, connections: inFlight, timeoutMs: 30_000 });
  const opts = { path: '/', method: 'GET', headers: ['host', 'fn-1', 'x-dirigent-emulated-duration-ms', '0'] };
  let calls = 0;
  let failures = 0;
  let running = true;
  let firstFailure = '';
  const sink = {
    onOutcome: (o) => {
      if (o.status === 200) calls += 1;
      else {
        failures += 1;
        firstFailure ||= `${o.status} ${o.error}`;
      }
      if (running) one();
    },
  };
  const one = () => send(pool, opts, 0, performance.now(), sink);
  const result = await measureRounds(() => { for (let i = 0; i < inFlight; i++) one(); }, () => calls);
  running = false;
  const failedBefore = failures;
  void pool.close();
  child.kill();
  if (failedBefore > 0) console.log(`${failedBefore} calls failed (not counted; the first: ${firstFailure})`);
  console.log(`${sender}: ${result.text}`);
}

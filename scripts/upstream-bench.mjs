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
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

if (process.argv[2] === '--stand-in') {
  const net = await import('node:net');
  const body = '{"sandbox":"sb-0123456789abcdef","durationMs":0}';
  const answer = Buffer.from(
    'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n' +
      `content-length: ${body.length}\r\nconnection: keep-alive\r\nkeep-alive: timeout=5\r\n\r\n${body}`,
    'latin1',
  );
  const server = net.createServer((c) => {
    c.setNoDelay(true);
    c.on('data', (d) => {
      // One answer per request head in the read (the bench sends GETs without bodies).
      for (let i = d.indexOf('\r\n\r\n'); i >= 0; i = d.indexOf('\r\n\r\n', i + 4)) c.write(answer);
    });
  });
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
} else {
  const root = process.argv[2] ?? fileURLToPath(new URL('..', import.meta.url));
  const { LeanUpstreamPool, LeanUpstreamCall } = await import(`${root}/dist/data-plane/shell/lean-upstream.js`);
  const { systemClock } = await import(`${root}/dist/shared/clock.js`);
  const { silentLogger } = await import(`${root}/dist/shared/logger.js`);

  const inFlight = 32;
  const rounds = 7;
  const roundMs = 3_000;
  const warmupMs = 2_000;
  const standIn = fork(fileURLToPath(import.meta.url), ['--stand-in'], { stdio: 'inherit' });
  const port = await new Promise((resolve) => standIn.once('message', resolve));
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
  for (let i = 0; i < inFlight; i++) one();
  await new Promise((r) => setTimeout(r, warmupMs));
  const perCallUs = [];
  const userPerCallUs = [];
  const perSecond = [];
  for (let r = 0; r < rounds; r++) {
    const cpu0 = process.cpuUsage();
    const calls0 = calls;
    const t0 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, roundMs));
    const cpu = process.cpuUsage(cpu0);
    const n = calls - calls0;
    perCallUs.push((cpu.user + cpu.system) / n);
    userPerCallUs.push(cpu.user / n);
    perSecond.push((n / (performance.now() - t0)) * 1000);
  }
  running = false;
  pool.destroy();
  standIn.kill();
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  if (failures > 0) console.log(`${failures} calls failed (not counted)`);
  console.log(`${median(perCallUs).toFixed(2)} us of CPU per call, ${median(userPerCallUs).toFixed(2)} of it in user space (medians of ${rounds}; all, total/user: ${perCallUs.map((x, i) => `${x.toFixed(1)}/${userPerCallUs[i].toFixed(1)}`).join(' ')}), ${Math.round(median(perSecond))} calls/s`);
}

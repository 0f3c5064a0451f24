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
  const sender = process.argv[2] === 'undici' ? 'undici' : 'lean';
  const root = process.argv[3] ?? fileURLToPath(new URL('..', import.meta.url));
  const senders = await import(`${root}/dist/loadgen/shell/http-sender.js`);
  const createPool = sender === 'undici' ? senders.createSenderPool : senders.createBodilessSenderPool;
  const { send } = senders;

  const inFlight = 32;
  const rounds = 7;
  const roundMs = 3_000;
  const warmupMs = 2_000;
  const standIn = fork(fileURLToPath(import.meta.url), ['--stand-in'], { stdio: 'inherit' });
  const port = await new Promise((resolve) => standIn.once('message', resolve));
  const pool = createPool({ origin: `http://127.0.0.1:${port}`, connections: inFlight, timeoutMs: 30_000 });
  const opts = { path: '/', method: 'GET', headers: ['host', 'fn-1', 'x-dirigent-emulated-duration-ms', '0'] };
  let calls = 0;
  let failures = 0;
  let running = true;
  let firstFailure = "";
  const sink = { onOutcome: (o) => { if (o.status === 200) calls += 1; else { failures += 1; firstFailure ||= `${o.status} ${o.error}`; } if (running) one(); } };
  const one = () => send(pool, opts, 0, performance.now(), sink);
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
  void pool.close();
  standIn.kill();
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  if (failures > 0) console.log(`${failures} calls failed (not counted; the first: ${firstFailure})`);
  console.log(`${sender}: ${median(perCallUs).toFixed(2)} us of CPU per call, ${median(userPerCallUs).toFixed(2)} of it in user space (medians of ${rounds}; all, total/user: ${perCallUs.map((x, i) => `${x.toFixed(1)}/${userPerCallUs[i].toFixed(1)}`).join(' ')}), ${Math.round(median(perSecond))} calls/s`);
}

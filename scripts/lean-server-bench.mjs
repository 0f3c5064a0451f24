#!/usr/bin/env node
// What the lean HTTP/1.1 server side costs per request on real loopback sockets: a child process
// serves requests with the lean path (shared/http1/lean-h1: read, parse, answer 'ok' in one
// write), as the DP does for clients, the CP for its API and a worker for emulated sandboxes;
// this process keeps 32 keep-alive connections busy in a closed loop. Seven rounds of 3 s after
// a 2 s warm-up; prints the server's median CPU microseconds per request (user + system, and
// user alone), and requests per second.
//
// Give a build's root to compare two builds (their `dist/` must be built):
//
//   taskset -c 1 node scripts/lean-server-bench.mjs [root]
//
// Both processes on one CPU (taskset) make runs repeatable on a shared 2-vCPU machine: unpinned,
// whether the two land on one CPU or two moves a run by up to 1.5x. Alternate the builds.
import { fork } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const root = process.argv[2] && process.argv[2] !== '--server' ? process.argv[2] : fileURLToPath(new URL('..', import.meta.url));

if (process.argv[3] === '--server') {
  const { LeanConnections } = await import(`${root}/dist/shared/http1/lean-h1.js`);
  const { systemClock } = await import(`${root}/dist/shared/clock.js`);
  const { silentLogger } = await import(`${root}/dist/shared/logger.js`);
  const host = {
    name: 'bench',
    guard: (_kind, _event, fn) => fn(),
    accepts: () => true,
    serve: (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
      res.end('ok');
    },
    handOff: (socket) => socket.destroy(),
  };
  const timeouts = { headersTimeoutMs: 60_000, requestTimeoutMs: 60_000, keepAliveTimeoutMs: 60_000 };
  const lean = new LeanConnections(host, { bodyBytesMax: 65_536 }, timeouts, systemClock, silentLogger, 1_000);
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy());
    lean.accept(socket, null);
  });
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  process.on('message', () => process.send({ cpu: process.cpuUsage() }));
} else {
  const connections = 32;
  const rounds = 7;
  const roundMs = 3_000;
  const warmupMs = 2_000;
  const child = fork(fileURLToPath(import.meta.url), [root, '--server'], { stdio: 'inherit' });
  const next = () => new Promise((resolve) => child.once('message', resolve));
  const { port } = await next();
  const request = 'GET /invoke HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n';
  let answers = 0;
  const sockets = [];
  for (let i = 0; i < connections; i++) {
    const socket = connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    socket.on('connect', () => socket.write(request, 'latin1'));
    // One small answer per request; it may arrive split: count answers by their last byte.
    socket.on('data', (d) => {
      if (d[d.length - 1] === 0x6b /* 'k' of 'ok' */) {
        answers += 1;
        socket.write(request, 'latin1');
      }
    });
    socket.on('error', () => {});
    sockets.push(socket);
  }
  const cpu = async () => {
    child.send('cpu');
    return (await next()).cpu;
  };
  await new Promise((r) => setTimeout(r, warmupMs));
  const perRequestUs = [];
  const userPerRequestUs = [];
  const perSecond = [];
  for (let r = 0; r < rounds; r++) {
    const cpu0 = await cpu();
    const n0 = answers;
    const t0 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, roundMs));
    const cpu1 = await cpu();
    const n = answers - n0;
    perRequestUs.push((cpu1.user - cpu0.user + cpu1.system - cpu0.system) / n);
    userPerRequestUs.push((cpu1.user - cpu0.user) / n);
    perSecond.push((n / (performance.now() - t0)) * 1000);
  }
  for (const s of sockets) s.destroy();
  child.kill();
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`${median(perRequestUs).toFixed(2)} us of server CPU per request, ${median(userPerRequestUs).toFixed(2)} of it in user space (medians of ${rounds}), ${Math.round(median(perSecond))} requests/s`);
}

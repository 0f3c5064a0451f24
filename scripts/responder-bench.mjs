#!/usr/bin/env node
// What the emulated sandboxes' responder costs per request: the responder runs alone in a
// child process (from `<root>/dist`, so two builds can be compared), the parent drives a closed
// loop of raw keep-alive HTTP/1.1 POSTs on `connections` sockets, and the child's CPU
// (process.cpuUsage) over the measured window is divided by the requests answered in it.
//
//   node scripts/responder-bench.mjs [connections=1] [seconds=4] [root=.]
import { fork } from 'node:child_process';
import net from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const connections = Number(process.argv[2] ?? 1);
const seconds = Number(process.argv[3] ?? 4);
const root = resolve(process.argv[4] ?? '.');
const role = process.argv[5] ?? 'driver';
const warmupMs = 1_500;

if (role === 'responder') {
  const m = await import(pathToFileURL(`${root}/dist/worker/runtime/emulated-runtime.js`).href);
  const responder = await m.startEmulatedResponder({ host: '127.0.0.1', port: 0 });
  let start = null;
  process.on('message', (msg) => {
    if (msg === 'start') start = process.cpuUsage();
    if (msg === 'stop') {
      const u = process.cpuUsage(start);
      process.send({ cpuMs: (u.user + u.system) / 1000 });
    }
  });
  process.send({ port: responder.port });
} else {
  const child = fork(fileURLToPath(import.meta.url), [String(connections), String(seconds), root, 'responder']);
  const { port } = await new Promise((r) => child.once('message', r));
  const request = Buffer.from('POST /invoke HTTP/1.1\r\nhost: 127.0.0.1\r\nx-dirigent-sandbox: sb-1\r\ncontent-length: 2\r\n\r\n{}');
  let answered = 0;
  let measuring = false;
  const latenciesMs = [];
  for (let i = 0; i < connections; i++) {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    socket.setEncoding('latin1');
    let text = '';
    let sentAtMs = 0;
    const send = () => {
      sentAtMs = performance.now();
      socket.write(request);
    };
    socket.on('connect', send);
    socket.on('data', (chunk) => {
      text += chunk;
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(text.slice(0, end))?.[1]);
      if (text.length < end + 4 + length) return;
      text = text.slice(end + 4 + length);
      if (measuring) {
        answered++;
        latenciesMs.push(performance.now() - sentAtMs);
      }
      send();
    });
  }
  await new Promise((r) => setTimeout(r, warmupMs));
  measuring = true;
  child.send('start');
  const startMs = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  child.send('stop');
  const { cpuMs } = await new Promise((r) => child.once('message', r));
  const wallS = (performance.now() - startMs) / 1000;
  latenciesMs.sort((a, b) => a - b);
  console.log(JSON.stringify({
    root, connections, requestsPerS: Math.round(answered / wallS),
    p50Ms: Number(latenciesMs[Math.floor(latenciesMs.length / 2)].toFixed(3)),
    responderCpuUsPerRequest: Number(((1000 * cpuMs) / answered).toFixed(1)),
  }));
  child.kill();
  process.exit(0);
}

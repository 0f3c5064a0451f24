#!/usr/bin/env node
// What one message between two processes costs on this machine: a client sends a 40-byte
// message, a server in a child process echoes it, the client sends the next one when the reply
// arrives (so every message travels alone, as each step of a cold start does at a low rate).
// Two transports: a grpc-js bidi stream (the internal links) and raw TCP with a 4-byte length
// prefix. Prints wall time and each side's CPU per round trip (process.cpuUsage).
//
// With an interval, the client waits that long after each reply before it sends again, so both
// processes sleep between messages (as at a low cold-start rate) and each message pays a wakeup.
//
//   node scripts/stream-pingpong.mjs grpc|raw [roundTrips] [intervalMs]
import { fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';

const mode = process.argv[2];
const roundTrips = Number(process.argv[3] ?? 20_000);
const intervalMs = Number(process.argv[4] ?? 0);
const role = process.argv[5] ?? 'client';
const warmupRoundTrips = 2_000;
const message = Buffer.alloc(40, 7);
const same = (b) => b;
const service = {
  stream: {
    path: '/pingpong.Echo/Stream', requestStream: true, responseStream: true,
    requestSerialize: same, requestDeserialize: same, responseSerialize: same, responseDeserialize: same,
  },
};

if (mode !== 'grpc' && mode !== 'raw') {
  console.error('usage: node scripts/stream-pingpong.mjs grpc|raw [roundTrips] [intervalMs]');
  process.exit(2);
}

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Calls `onMessage` per length-prefixed message read from `socket`. */
function readFrames(socket, onMessage) {
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    pending = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 4) {
      const length = pending.readUInt32BE(0);
      if (pending.length < 4 + length) break;
      const body = pending.subarray(4, 4 + length);
      pending = pending.subarray(4 + length);
      onMessage(body);
    }
  });
}

function writeFrame(socket, body) {
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(body.length);
  socket.write(Buffer.concat([head, body]));
}

function serve() {
  let startCpuMs = cpuMs();
  let echoed = 0;
  const echoedOne = () => {
    if (++echoed === roundTrips) process.send({ serverCpuMs: cpuMs() - startCpuMs });
  };
  process.on('message', (m) => {
    if (m === 'measure') startCpuMs = cpuMs();
  });
  if (mode === 'grpc') {
    const server = new grpc.Server();
    server.addService(service, {
      stream: (call) => call.on('data', (b) => {
        call.write(b);
        echoedOne();
      }),
    });
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) throw err;
      process.send({ port });
    });
  } else {
    const server = net.createServer((socket) => {
      socket.setNoDelay(true);
      readFrames(socket, (body) => {
        writeFrame(socket, body);
        echoedOne();
      });
    });
    server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  }
}

async function drive() {
  const child = fork(fileURLToPath(import.meta.url), [mode, String(roundTrips), '0', 'server']);
  const { port } = await new Promise((resolve) => child.once('message', resolve));
  let send;
  let onReply = () => {};
  if (mode === 'grpc') {
    const Client = grpc.makeGenericClientConstructor(service, 'Echo');
    const call = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()).stream();
    call.on('data', () => onReply());
    send = () => call.write(message);
  } else {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    await new Promise((resolve) => socket.once('connect', resolve));
    readFrames(socket, () => onReply());
    send = () => writeFrame(socket, message);
  }
  const run = (count) => new Promise((resolve) => {
    let left = count;
    const next = intervalMs > 0 ? () => setTimeout(send, intervalMs) : send;
    onReply = () => (--left === 0 ? resolve() : next());
    send();
  });
  await run(warmupRoundTrips);
  child.send('measure');
  await new Promise((resolve) => setTimeout(resolve, 50));
  const measured = roundTrips - warmupRoundTrips;
  const serverDone = new Promise((resolve) => child.on('message', (m) => m.serverCpuMs !== undefined && resolve(m)));
  const startCpuMs = cpuMs();
  const startMs = performance.now();
  await run(measured);
  const clientCpuMs = cpuMs() - startCpuMs;
  const wallMs = performance.now() - startMs;
  const { serverCpuMs } = await serverDone;
  const perRoundTripUs = (ms) => Number(((1000 * ms) / measured).toFixed(1));
  console.log(JSON.stringify({
    transport: mode, intervalMs, roundTrips: measured, wallUs: perRoundTripUs(wallMs),
    clientCpuUs: perRoundTripUs(clientCpuMs), serverCpuUs: perRoundTripUs(serverCpuMs),
  }));
  child.kill();
  process.exit(0);
}

if (role === 'server') serve();
else await drive();

#!/usr/bin/env node
// What the event-loop monitor costs an idle process: CPU per second and wakeups per second (the
// main thread's voluntary context switches) of a process that holds the monitor and nothing else,
// or, with `none`, of a process that holds only an idle timer (the floor).
// The first argument is a checkout's root (its dist/ is used), so two builds can run side by side.
//
//   node scripts/loop-monitor-cost.mjs <root>|none [seconds]
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import client from 'prom-client';

const root = process.argv[2];
const seconds = Number(process.argv[3] ?? 10);
if (!root || !(seconds > 0)) {
  console.error('usage: loop-monitor-cost.mjs <root>|none [seconds]');
  process.exit(2);
}
let stop = () => undefined;
if (root !== 'none') {
  const monitor = await import(pathToFileURL(resolve(root, 'dist/shared/loop-delay.js')).href);
  stop = monitor.registerLoopDelayMetrics(new client.Registry());
}
const keepAlive = setInterval(() => undefined, 1 << 30);
const switches = () => Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync('/proc/thread-self/status', 'utf8'))[1]);
await new Promise((r) => setTimeout(r, 2_000)); // start-up done; an adaptive monitor settles
const cpu0 = process.cpuUsage();
const switches0 = switches();
await new Promise((r) => setTimeout(r, seconds * 1_000));
const cpu = process.cpuUsage(cpu0);
const wakeups = switches() - switches0;
console.log(JSON.stringify({ root, seconds, cpuMsPerS: +((cpu.user + cpu.system) / 1_000 / seconds).toFixed(2), wakeupsPerS: +(wakeups / seconds).toFixed(1) }));
stop();
clearInterval(keepAlive);

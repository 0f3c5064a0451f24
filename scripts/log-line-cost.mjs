#!/usr/bin/env node
// What a log line costs the process that logs it: 40,000 lines shaped like the CP's
// `function.registered` through the production logger (pinoLogger, stderr, asynchronous
// writes), `perTurn` lines per event-loop turn (as a turn answers several requests under load).
// Prints the process's CPU per line (process.cpuUsage: every thread, the write's thread-pool
// work included). Send stderr to /dev/null; `dist` is a build's dist directory (to compare two).
//
//   npm run build && node scripts/log-line-cost.mjs [perTurn] [dist] 2>/dev/null
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const perTurn = Number(process.argv[2] ?? 8);
const dist = resolve(process.argv[3] ?? 'dist');
const lines = 40_000;
const drainMs = 200;

const { pinoLogger } = await import(pathToFileURL(`${dist}/shared/pino-logger.js`).href);
const log = pinoLogger('control-plane', 'info');
let logged = 0;
const cpu0 = process.cpuUsage();
const t0Ms = performance.now();
await new Promise((done) => {
  const turn = () => {
    for (let k = 0; k < perTurn && logged < lines; k++, logged++) {
      log.info('function.registered', { fn: `fn-${logged}`, uid: `u-${logged.toString(36)}`, desired: 0 });
    }
    if (logged < lines) setImmediate(turn);
    else done();
  };
  turn();
});
const wallMs = performance.now() - t0Ms;
await new Promise((r) => setTimeout(r, drainMs)); // the last writes complete (their CPU counts)
const cpu = process.cpuUsage(cpu0);
process.stdout.write(`${dist} perTurn=${perTurn} lines=${lines} cpuUsPerLine=${((cpu.user + cpu.system) / lines).toFixed(2)} wallMs=${wallMs.toFixed(0)}\n`);

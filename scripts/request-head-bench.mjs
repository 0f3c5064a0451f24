#!/usr/bin/env node
// What the lean request-head reader (`parseLeanHead`) costs per head, without sockets, for the
// two heads of a warm request: a client's to the DP, and the DP's to the emulated responder.
// Seven rounds of 500,000 heads each; prints the median microseconds per head.
//
// Give a build's root to compare two builds (their `dist/` must be built):
//
//   node scripts/request-head-bench.mjs [root]
import { fileURLToPath } from 'node:url';

const root = process.argv[2] ?? fileURLToPath(new URL('..', import.meta.url));
const { parseLeanHead } = await import(`${root}/dist/shared/http1/h1-head.js`);

const rounds = 7;
const headsPerRound = 500_000;
const limits = { bodyBytesMax: 1_048_576 };
const heads = {
  client: 'GET /bench-warm-1 HTTP/1.1\r\nhost: 127.0.0.1:18480\r\nconnection: keep-alive\r\nx-emulated-duration-ms: 0',
  upstream: 'GET / HTTP/1.1\r\nhost: 127.0.0.1:18510\r\nx-emulated-duration-ms: 0\r\nx-forwarded-host: 127.0.0.1:18480\r\n' +
    'x-dirigent-sandbox: sb-0123456789abcdef01',
};

const out = { root };
let lean = 0;
for (const [name, text] of Object.entries(heads)) {
  const perHeadUs = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < headsPerRound; i++) if (parseLeanHead(text, limits).kind === 'lean') lean += 1;
    perHeadUs.push(Number(process.hrtime.bigint() - t0) / headsPerRound / 1000);
  }
  perHeadUs.sort((a, b) => a - b);
  out[`${name}UsPerHead`] = Number(perHeadUs[Math.floor(rounds / 2)].toFixed(3));
}
if (lean !== rounds * headsPerRound * Object.keys(heads).length) throw new Error('a head was not read as lean');
console.log(JSON.stringify(out));

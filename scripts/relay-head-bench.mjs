#!/usr/bin/env node
// What the DP's JavaScript spends on a sandbox's response head, per answer, without sockets:
// the lean upstream's reader takes the emulated responder's answer (head and a 48-byte JSON
// body), the hop-by-hop headers are left out, the proxy's two headers are added, and a lean
// answer writes head and body (to a socket stub that keeps nothing). Seven rounds of 300,000
// answers; prints the median microseconds per answer.
//
// Give a build's root to compare two builds (their `dist/` must be built):
//
//   node scripts/relay-head-bench.mjs [root]
import { fileURLToPath } from 'node:url';

const root = process.argv[2] ?? fileURLToPath(new URL('..', import.meta.url));
const { H1ResponseReader } = await import(`${root}/dist/shared/http1/h1-response.js`);
const { LeanResponse } = await import(`${root}/dist/shared/http1/lean-h1.js`);
const { hopByHop } = await import(`${root}/dist/data-plane/shell/http-util.js`);

const rounds = 7;
const answersPerRound = 300_000;
const body = '{"sandbox":"sb-0123456789abcdef","durationMs":0}';
const wire = Buffer.from(
  'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n' +
    `content-length: ${body.length}\r\ndate: Mon, 07 Dec 2026 03:00:00 GMT\r\n` +
    `connection: keep-alive\r\nkeep-alive: timeout=5\r\n\r\n${body}`,
  'latin1',
);
const socketStub = { write: () => true, cork() {}, uncork() {}, writableNeedDrain: false, writableLength: 0, destroyed: false };
const connection = { socket: socketStub, keepAliveS: 5 };

/** The head as the build's lean upstream hands it on: a flat list (`fields`) or an object (`headers`). */
function relayed(h) {
  if (h.fields !== undefined) {
    const out = [];
    for (let i = 0; i < h.fields.length; i += 2) if (!hopByHop.has(h.fields[i])) out.push(h.fields[i], h.fields[i + 1]);
    out.push('x-dirigent-cold-start', 'false', 'x-dirigent-queue-ms', (0.123).toFixed(3));
    return out;
  }
  const out = {};
  for (const k in h.headers) if (!hopByHop.has(k)) out[k] = h.headers[k];
  out['x-dirigent-cold-start'] = 'false';
  out['x-dirigent-queue-ms'] = (0.123).toFixed(3);
  return out;
}

function answerOne() {
  const reader = new H1ResponseReader(false);
  const res = new LeanResponse(connection, false, true);
  reader.feed(wire, {
    head: (h) => res.writeHead(h.statusCode, relayed(h)),
    data: (chunk) => res.write(chunk),
    end: () => {},
  });
}

const perAnswerUs = [];
for (let r = 0; r < rounds; r++) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < answersPerRound; i++) answerOne();
  perAnswerUs.push(Number(process.hrtime.bigint() - t0) / answersPerRound / 1000);
}
perAnswerUs.sort((a, b) => a - b);
console.log(JSON.stringify({ root, medianUsPerAnswer: Number(perAnswerUs[Math.floor(rounds / 2)].toFixed(3)), roundsUs: perAnswerUs.map((x) => Number(x.toFixed(3))) }));

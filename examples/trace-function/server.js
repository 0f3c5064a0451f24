// A function for trace replays: it burns CPU (a busy loop, not a sleep) for the time a request
// asks for, so replayed invocations load the worker's cores the way the traced ones did.
// Dependency-free Node ESM. Run by hand: PORT=8000 node server.js
//
// Requested time, first match wins:
//   x-emulated-duration-ms: <ms>   our load generator and the emulated runtime's header
//   requested_cpu: <ms>            InVitro's Dirigent HTTP client (its runtime in ms)
//   workload: empty                InVitro's "empty" function: 0 ms
// Reply: {"function", "requestedMs", "durationMs"}; durationMs is measured from the moment
// the request arrived to the end of the spin, in ms with microsecond precision.
import { createServer } from 'node:http';

const name = process.env.DIRIGENT_FUNCTION || 'trace-function';
const host = process.env.HOST || '127.0.0.1';
const port = Number(process.env.PORT ?? '8000');
/** Longest spin one request may ask for: the API's largest function timeout (1 h). */
const requestedMsMax = 3_600_000;
/** Request bodies are read and dropped; past this the request is refused. */
const bodyBytesMax = 6 * 1024 * 1024;
const shutdownGraceMs = 5000;

if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`${name}: PORT must be an integer in [0, 65535], got "${process.env.PORT}"`);
  process.exit(1);
}

/** The requested spin in ms, or an error naming the header. */
function requestedMs(headers) {
  for (const header of ['x-emulated-duration-ms', 'requested_cpu']) {
    const text = headers[header];
    if (text === undefined) continue;
    const ms = Number(text);
    if (text.trim() === '' || !Number.isFinite(ms) || ms < 0 || ms > requestedMsMax) {
      return { error: `${header} must be a number of ms in [0, ${requestedMsMax}], got "${text}"`,
        field: header };
    }
    return { ms };
  }
  return { ms: 0 }; // no header, or InVitro's `workload: empty`
}

/** Spins until `startNs + ms`; reading the clock each turn keeps the loop from being elided. */
function spinUntil(startNs, ms) {
  const deadlineNs = startNs + BigInt(Math.round(ms * 1e6));
  let turns = 0;
  while (process.hrtime.bigint() < deadlineNs) turns++;
  return turns;
}

const server = createServer((req, res) => {
  const startNs = process.hrtime.bigint();
  let bytes = 0;
  req.on('data', (chunk) => { bytes += chunk.length; });
  req.on('end', () => {
    const asked = requestedMs(req.headers);
    if (bytes > bodyBytesMax || asked.error !== undefined) {
      const message = asked.error ?? `request body over ${bodyBytesMax} bytes`;
      const code = asked.error === undefined ? 'body_too_large' : 'invalid_field';
      const field = asked.field ?? 'body';
      res.writeHead(asked.error === undefined ? 413 : 400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code, message, field } }));
      return;
    }
    spinUntil(startNs, asked.ms);
    const durationUs = Number((process.hrtime.bigint() - startNs) / 1000n);
    const reply = { function: name, requestedMs: asked.ms, durationMs: durationUs / 1000 };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(reply));
  });
});

server.on('error', (err) => {
  console.error(`${name}: cannot listen on ${host}:${port}: ${err.message}`);
  process.exit(1);
});

// PORT=0 picks a free port; the line below says which.
server.listen(port, host, () => {
  console.log(`${name} listening on ${host}:${server.address().port}`);
});

function shutdown() {
  // A spin blocks the event loop, so this runs between requests: in-flight work always ends.
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), shutdownGraceMs).unref();
}
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);

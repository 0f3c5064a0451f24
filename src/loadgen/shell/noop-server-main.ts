/**
 * @module loadgen/shell/noop-server-main
 * Entry point of the no-op HTTP server `bench generator` runs in a child process (so it does
 * not share the generator's event loop). Answers every request with an empty 200, prints
 * `{"port":n}` on stdout once listening on 127.0.0.1, and exits when its stdin closes, so it
 * never outlives the parent.
 */
import { createServer } from 'node:http';

const keepAliveMs = 60_000;

const server = createServer((req, res) => {
  // Drain the request so the connection can be reused; answer with no body.
  req.resume();
  res.writeHead(200, { 'content-length': '0' });
  res.end();
});
server.keepAliveTimeout = keepAliveMs;
server.headersTimeout = keepAliveMs + 1_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));

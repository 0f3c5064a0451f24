// The smallest useful function: answers "Hello from <name>! " followed by the request body.
// Dependency-free Node ESM, because the process runtime starts it with nothing but `node`,
// PORT and the function's own env (DESIGN §7). Run by hand: PORT=8000 node server.js
import { createServer } from 'node:http';

const name = process.env.DIRIGENT_FUNCTION || 'hello';
const host = process.env.HOST || '127.0.0.1';
const port = Number(process.env.PORT ?? '8000');
/** A function bounds what it buffers too: larger bodies get 413 instead of eating memory. */
const bodyBytesMax = 1024 * 1024;
/** In-flight requests get this long to finish after SIGTERM before the process exits anyway. */
const shutdownGraceMs = 5000;

if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`${name}: PORT must be an integer in [0, 65535], got "${process.env.PORT}"`);
  process.exit(1);
}

const server = createServer((req, res) => {
  const chunks = [];
  let bytes = 0;
  req.on('data', (chunk) => {
    bytes += chunk.length;
    if (bytes <= bodyBytesMax) chunks.push(chunk);
  });
  req.on('end', () => {
    if (bytes > bodyBytesMax) {
      res.writeHead(413, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${name}: request body over ${bodyBytesMax} bytes\n`);
      return;
    }
    const body = Buffer.concat([Buffer.from(`Hello from ${name}! `), ...chunks]);
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(body);
  });
});

server.on('error', (err) => {
  console.error(`${name}: cannot listen on ${host}:${port}: ${err.message}`);
  process.exit(1);
});

// PORT=0 picks a free port; the line below says which, so tests and people can find it.
server.listen(port, host, () => {
  console.log(`${name} listening on ${host}:${server.address().port}`);
});

function shutdown() {
  // Stop accepting, drop idle keep-alive sockets, let in-flight requests finish, then exit 0.
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), shutdownGraceMs).unref();
}
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);

/**
 * @module cli/fake-http
 * Test support: a tiny HTTP server on 127.0.0.1 (port 0) that records every request and
 * answers from a route function, standing in for the control plane or the data plane; and
 * captured CLI output. A fake, not a mock: tests assert on what was sent and printed.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CliIo } from './context.js';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface CannedReply {
  status: number;
  /** Objects are sent as JSON, strings as they are. */
  body?: unknown;
  headers?: Record<string, string>;
}

export interface FakeServer {
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export async function startFakeServer(
  route: (req: RecordedRequest) => CannedReply,
): Promise<FakeServer> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(recorded);
      const reply = route(recorded);
      const isText = typeof reply.body === 'string' || reply.body === undefined;
      const text = isText ? ((reply.body as string | undefined) ?? '') : JSON.stringify(reply.body);
      const type = isText ? 'text/plain' : 'application/json';
      res.writeHead(reply.status, { 'content-type': type, ...reply.headers });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** A port with nothing listening: bound once, then released. */
export async function closedPortUrl(): Promise<string> {
  const server = await startFakeServer(() => ({ status: 200 }));
  await server.close();
  return server.url;
}

export interface CapturedIo extends CliIo {
  out(): string;
  err(): string;
}

export function captureIo(options: Pick<CliIo, 'env' | 'cwd'> = {}): CapturedIo {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const sink = (into: Buffer[]) => ({
    write: (chunk: string | Uint8Array) => into.push(Buffer.from(chunk)),
  });
  return {
    stdout: sink(out),
    stderr: sink(err),
    env: options.env ?? {},
    cwd: options.cwd ?? '/home/user/project',
    out: () => Buffer.concat(out).toString('utf8'),
    err: () => Buffer.concat(err).toString('utf8'),
  };
}

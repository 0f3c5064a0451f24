/**
 * @module data-plane/shell/delegate
 * A proxy process passes what only the primary serves (async submissions and reads, the
 * reference's async mode) to the primary's loopback delegate listener, as a plain HTTP/1.1
 * proxy: the request streams there with its Host and Authorization (the primary checks both as
 * for any request), the answer streams back with backpressure.
 */
import type { Dispatcher } from 'undici';
import { Pool } from 'undici';
import type { Logger } from '../../shared/logger.js';
import { forwardHeaders, hasBody, sendError, type Req, type Res } from './http-util.js';
import { UpstreamCall } from './upstream-call.js';

/** Keep-alive connections from one proxy process to the primary's delegate listener. */
const delegateConnectionsMax = 64;

export interface Delegate {
  forward(req: Req, res: Res): void;
  close(): Promise<void>;
}

export function delegateTo(address: string, log: Logger): Delegate {
  const pool = new Pool(`http://${address}`, { connections: delegateConnectionsMax, pipelining: 1 });
  return {
    forward(req, res) {
      const headers = forwardHeaders(req);
      delete headers['x-forwarded-host'];
      const host = (req.headers[':authority'] as string | undefined) ?? req.headers.host;
      if (host) headers.host = host;
      const call = new UpstreamCall(res, {
        head: (statusCode, out) => {
          if (res.headersSent || res.destroyed) return false;
          res.writeHead(statusCode, out);
          return true;
        },
        end: () => res.end(),
        failed: (err, headSent) => {
          if (headSent) res.destroy();
          else sendError(res, 502, 'delegate_failed', `the data plane's primary process did not answer: ${err.message}`);
        },
      }, log);
      res.once('close', () => call.abort(new Error('client closed')));
      pool.dispatch({
        method: (req.method ?? 'GET') as Dispatcher.HttpMethod, path: req.url ?? '/', headers,
        body: hasBody(req) ? (req as NodeJS.ReadableStream as import('node:stream').Readable) : null, headersTimeout: 0, bodyTimeout: 0,
      }, call);
    },
    close: () => pool.destroy().catch(() => {}),
  };
}

/**
 * @module shared/grpc-link/keepalive
 * HTTP/2 pings that find a dead peer: every `everyMs` a ping goes out on the connection, and one
 * unanswered for `timeoutMs` destroys it (its streams close, their owners see the link lost).
 * Both ends of the links use it: the channel towards the CP, the CP's server towards its peers.
 */
import type http2 from 'node:http2';

/** Starts pinging `session`; the returned function stops it (also call it when the session closes). */
export function startKeepalive(session: http2.Http2Session, everyMs: number, timeoutMs: number): () => void {
  const timer = setInterval(() => ping(session, timeoutMs), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

function ping(session: http2.Http2Session, timeoutMs: number): void {
  if (session.destroyed) return;
  const timer = setTimeout(() => session.destroy(new Error('keepalive ping unanswered')), timeoutMs);
  timer.unref();
  const sent = session.ping((err) => {
    clearTimeout(timer);
    if (err && !session.destroyed) session.destroy(err);
  });
  if (!sent) clearTimeout(timer); // one still in flight: its own timer guards it
}

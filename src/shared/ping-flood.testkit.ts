/**
 * A client that floods its HTTP/2 connection with pings, for the tests of the ping budget: one
 * ping at a time, each sent when the last was answered, until one is not or `pingsMax` were.
 */
import type http2 from 'node:http2';

/** Pings `session` until a ping fails or the session is gone; resolves with the pings answered. */
export async function pingUntilRefused(session: http2.ClientHttp2Session, pingsMax = 1_000): Promise<number> {
  let answered = 0;
  while (answered < pingsMax && !session.destroyed) {
    const acked = await new Promise<boolean>((resolve) => {
      if (!session.ping((err) => resolve(!err))) resolve(false);
    });
    if (!acked) break;
    answered += 1;
  }
  return answered;
}

/**
 * A client that floods its HTTP/2 connection with pings, for the tests of the ping budget: one
 * ping at a time, each sent when the last was answered, until one is not or `pingsMax` were.
 */
import { once } from 'node:events';
import http2 from 'node:http2';

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

/** What a fresh connection saw when it flooded a server with pings. */
export interface FloodResult {
  answered: number;
  /** The GOAWAY's error code and debug data. */
  goawayCode: number;
  goawayData: string;
}

/**
 * Opens a new HTTP/2 connection to `url`, pings it until refused, and waits for the GOAWAY;
 * the connection is destroyed before this resolves or rejects.
 */
export async function floodFreshConnection(url: string): Promise<FloodResult> {
  const session = http2.connect(url);
  session.on('error', () => undefined);
  const goaway = once(session, 'goaway') as Promise<[number, number, Buffer | undefined]>;
  try {
    await once(session, 'connect');
    const answered = await pingUntilRefused(session);
    const [goawayCode, , data] = await goaway;
    return { answered, goawayCode, goawayData: String(data ?? '') };
  } finally {
    session.destroy();
  }
}

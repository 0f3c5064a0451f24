/**
 * @module worker/runtime/readiness
 * TCP readiness probe: connect to host:port until it accepts, with a growing pause between tries.
 * A connect says the function listens; it does not say the function is healthy, which is all the
 * reference asks of a cold start too. The caller aborts the probe when the process exits.
 */
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { assert } from '../../shared/assert.js';

/** One connect attempt on loopback is refused in microseconds; this bounds a stuck SYN. */
const probeConnectTimeoutMs = 250;
/** Pause growth per failed attempt. */
const probeBackoffFactor = 1.5;

export interface ProbeOptions {
  host: string;
  port: number;
  timeoutMs: number;
  /** [first pause, largest pause] in ms. */
  backoffMs: readonly [number, number];
  signal: AbortSignal;
}

export type ProbeResult =
  | { ok: true; attempts: number }
  | { ok: false; reason: 'timeout' | 'aborted' };

async function probeTcpReady(opts: ProbeOptions): Promise<ProbeResult> {
  const [pauseMsFirst, pauseMsMax] = opts.backoffMs;
  assert(pauseMsFirst > 0 && pauseMsFirst <= pauseMsMax, 'bad readiness backoff');
  assert(opts.timeoutMs > 0, 'readiness timeout must be positive');
  const deadlineMs = performance.now() + opts.timeoutMs;
  let pauseMs = pauseMsFirst;
  for (let attempts = 1; ; attempts++) {
    if (opts.signal.aborted) return { ok: false, reason: 'aborted' };
    const leftMs = deadlineMs - performance.now();
    if (leftMs <= 0) return { ok: false, reason: 'timeout' };
    const connectMs = Math.min(probeConnectTimeoutMs, leftMs);
    if (await probeTcpReadyAttempt(opts.host, opts.port, connectMs)) return { ok: true, attempts };
    const waitMs = Math.min(pauseMs, deadlineMs - performance.now());
    if (waitMs > 0) {
      try {
        await sleep(waitMs, undefined, { signal: opts.signal });
      } catch {
        return { ok: false, reason: 'aborted' };
      }
    }
    pauseMs = Math.min(pauseMs * probeBackoffFactor, pauseMsMax);
  }
}

/** True when a TCP connection was accepted within `timeoutMs`. Never throws. */
function probeTcpReadyAttempt(
  host: string,
  port: number,
  timeoutMs: number,
): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, noDelay: true });
    const finish = (ready: boolean): void => {
      socket.removeAllListeners();
      socket.on('error', () => {}); // a late RST after destroy() must not become uncaught
      socket.destroy();
      resolve(ready);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

export type ReadyOrExit<T> =
  | { kind: 'ready'; attempts: number }
  | { kind: 'timeout' }
  | { kind: 'cancelled' }
  | { kind: 'exited'; exit: T };

/**
 * Probes until the port accepts, the process exits (`exited` resolves: no point in waiting
 * for a dead process), `cancel` fires, or time runs out. Cancellation wins over everything.
 */
export async function probeReadyOrExit<T>(
  opts: Omit<ProbeOptions, 'signal'> & { exited: Promise<T>; cancel: AbortSignal },
): Promise<ReadyOrExit<T>> {
  const probeAbort = new AbortController();
  const onCancel = (): void => probeAbort.abort();
  opts.cancel.addEventListener('abort', onCancel, { once: true });
  if (opts.cancel.aborted) probeAbort.abort();
  let exit: { value: T } | undefined;
  void opts.exited.then((value) => {
    exit = { value };
    probeAbort.abort();
  });
  const { exited: _exited, cancel: _cancel, ...probeOpts } = opts;
  const probe = await probeTcpReady({ ...probeOpts, signal: probeAbort.signal });
  opts.cancel.removeEventListener('abort', onCancel);
  // Read the flags after the await on purpose: either may have fired meanwhile.
  if (opts.cancel.aborted) return { kind: 'cancelled' };
  if (exit !== undefined) return { kind: 'exited', exit: exit.value };
  if (probe.ok) return { kind: 'ready', attempts: probe.attempts };
  assert(probe.reason === 'timeout', 'probe aborted without cancel or exit');
  return { kind: 'timeout' };
}

/**
 * @module data-plane/proxy-process
 * Entry point of a proxy process (`--proxy-threads N`, see core/proxy-link): forked by the
 * data plane's primary with an IPC channel. It gets its settings, then the invocation listener's
 * socket (the kernel hands each new connection to one of the processes accepting on it), then
 * routing updates and the primary's dispatches and failures. It serves invocations with the same
 * proxy as the primary; slots and queues are the primary's.
 *
 * It lives only as long as its channel: when the primary goes, it exits.
 */
import type { Server, Socket } from 'node:net';
import type { DataPlaneConfig } from '../config/compile.js';
import { systemClock } from '../shared/clock.js';
import { pinoLogger, type LogLevel } from '../shared/pino-logger.js';
import { seededRng } from '../shared/rng.js';
import { serverTlsOf } from '../shared/tls-files.js';
import { DataPlaneCore, type DpEffect } from './core/data-plane.js';
import { parseToProxy, RemoteAdmission, type ToPrimary } from './core/proxy-link.js';
import { delegateTo } from './shell/delegate.js';
import { guarded } from '../shared/guard.js';
import { InvocationProxy } from './shell/proxy.js';
import { toLbPolicy } from './shell/lb-policy.js';

/** The primary's first message. */
export interface ProxyProcessInit {
  init: { cfg: DataPlaneConfig; index: number; delegateAddress: string; connectionsMax: number };
}

/** Malformed messages from the primary logged (then counted silently). */
const malformedLogsMax = 10;

const sendToPrimary = process.send?.bind(process);
if (!sendToPrimary) {
  process.stderr.write('dirigent proxy process: started without an IPC channel (it is forked by a data plane with --proxy-threads)\n');
  process.exit(2);
}

// Messages that arrive before a listener are dropped: the primary sends nothing until this
// process says it listens (module loading takes a while).
let running = false;
process.on('message', (m: unknown) => {
  if (running) return;
  const init = (m as Partial<ProxyProcessInit>).init;
  if (!init) {
    process.stderr.write('dirigent proxy process: the first message was not init\n');
    process.exit(2);
  }
  running = true;
  run(init);
});
sendToPrimary({ ready: true });
process.on('disconnect', () => process.exit(0));

function run({ cfg, index, delegateAddress, connectionsMax }: ProxyProcessInit['init']): void {
  const log = pinoLogger('data-plane', cfg.logLevel as LogLevel).child({ proxyProcess: index });
  const clock = systemClock;
  // The replica: the routing table only (no request is admitted here).
  const replica = new DataPlaneCore(
    { queueDepthMax: cfg.queueDepthMax, queueWaitMsMax: cfg.queueWaitMsMax, loadBalancing: toLbPolicy(cfg.loadBalancing) },
    seededRng(index),
    log,
  );
  // One message to the primary per event-loop turn, carrying everything this turn produced.
  let outbox: ToPrimary[] = [];
  const flush = (): void => {
    const batch = outbox;
    outbox = [];
    // An error (the primary went away) ends this process through 'disconnect'.
    if (process.connected) sendToPrimary!(batch, undefined, {}, () => {});
  };
  const post = (m: ToPrimary): void => {
    if (outbox.length === 0) setImmediate(flush);
    outbox.push(m);
  };
  // Held slots go back after idling: one timer, armed while any is held.
  let expiryTimer: NodeJS.Timeout | null = null;
  const expireHeld = guarded(log, 'timer', 'held_slots', () => {
    expiryTimer = null;
    admission.expireHeld(clock.nowMs());
    armExpiry();
  });
  const armExpiry = (): void => {
    const due = admission.nextHeldExpiryMs();
    if (expiryTimer !== null || due === null) return;
    expiryTimer = setTimeout(expireHeld, Math.max(1, due - clock.nowMs()));
  };
  const admission = new RemoteAdmission(replica, post, armExpiry);
  const runEffects = (effects: DpEffect[]): void => {
    for (const fx of effects) {
      if (fx.kind === 'dispatch') proxy.start(fx.waiter as Parameters<InvocationProxy['start']>[0]);
      else if (fx.kind === 'fail') proxy.fail(fx.waiter, fx.status, fx.code, fx.message);
      else if (fx.kind === 'close_pool') proxy.closePool(fx.endpoint);
      // drained and first_demand are the primary's: its core has the slots and reports demand.
    }
  };
  const proxy = new InvocationProxy(replica, cfg, clock, log, runEffects, serverTlsOf('data plane', cfg.tlsCertFile, cfg.tlsKeyFile), admission);
  const delegate = delegateTo(delegateAddress, log);
  proxy.delegate = (req, res) => delegate.forward(req, res);

  let malformed = 0;
  const onBatch = guarded(log, 'callback', 'proxy_process.message', (batch: unknown[]) => {
    const nowMs = clock.nowMs();
    for (const raw of batch) {
      const m = parseToProxy(raw);
      if (!m) {
        malformed += 1;
        if (malformed <= malformedLogsMax) log.warn('proxy_process.malformed_message', { message: JSON.stringify(raw)?.slice(0, 200) });
        continue;
      }
      if (m[0] !== 'routing') {
        runEffects(admission.handle(m, nowMs));
        continue;
      }
      const [, term, update] = m;
      if (replica.admitTerm(term) === 'stale') continue;
      const r = replica.applyRouting(update, nowMs);
      if (!r.ok) post(['resync']);
      runEffects(r.effects);
      proxy.routingApplied();
      // Held slots of sandboxes or functions that are gone go back now, not when they idle out.
      admission.expireHeld(nowMs);
    }
  });
  process.on('message', (m: unknown, handle: unknown) => {
    if (Array.isArray(m)) {
      onBatch(m as unknown[]);
      return;
    }
    if ((m as { listen?: boolean }).listen && handle) {
      const server = handle as Server;
      server.maxConnections = connectionsMax;
      // The kernel picks which process accepts; each connection is served whole by its process.
      server.on('connection', (socket: Socket) => proxy.server.emit('connection', socket));
      server.on('error', (err) => log.error('proxy_process.listener_failed', { error: err.message }));
      log.info('proxy_process.started', { pid: process.pid });
    }
  });
}

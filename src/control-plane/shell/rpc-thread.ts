/**
 * @module control-plane/shell/rpc-thread
 * The worker thread behind `RpcThreadLinks`: an `RpcServer` whose sockets, HTTP/2 sessions, gRPC
 * framing, decoding and validation run here. The valid events of one turn go to the CP's loop in
 * one message; the commands and updates the loop sends come back the same way and leave through
 * the server's per-peer batchers. Its log events are posted to the CP's logger.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { LogFields, Logger } from '../../shared/logger.js';
import type { CpEvent } from '../core/types.js';
import { RpcServer } from './rpc-server.js';
import { rpcPausedCheckMs, type FromRpcThread, type RpcThreadInit, type ToRpcThread } from './rpc-thread-protocol.js';

const port = parentPort!;
const init = workerData as RpcThreadInit;
const post = (m: FromRpcThread): void => port.postMessage(m);

function postingLogger(bindings: LogFields): Logger {
  const at = (level: 'debug' | 'info' | 'warn' | 'error') => (event: string, fields: LogFields = {}): void => {
    if (level !== 'debug' || init.debugLogs) post({ kind: 'log', level, event, fields: { ...bindings, ...fields } });
  };
  return {
    debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'),
    isDebugEnabled: () => init.debugLogs,
    child: (b) => postingLogger({ ...bindings, ...b }),
  };
}

const state = { term: 0, standbyLeader: init.standbyLeader };
const pending = new Int32Array(init.pending);
let events: CpEvent[] = [];
let pausedCheck: NodeJS.Timeout | null = null;
const flushEvents = (): void => {
  const batch = events;
  events = [];
  post({ kind: 'events', events: batch });
  if (Atomics.add(pending, 0, batch.length) + batch.length > init.eventsPendingMax && pausedCheck === null) pauseReading();
};

/** The loop is far behind: peers' messages wait on their side until it catches up. */
function pauseReading(): void {
  server.pauseReading();
  post({ kind: 'log', level: 'warn', event: 'rpc.reading_paused', fields: { eventsPending: Atomics.load(pending, 0), eventsPendingMax: init.eventsPendingMax } });
  pausedCheck = setInterval(() => {
    if (Atomics.load(pending, 0) > init.eventsPendingMax / 2) return;
    clearInterval(pausedCheck!);
    pausedCheck = null;
    server.resumeReading();
    post({ kind: 'log', level: 'info', event: 'rpc.reading_resumed', fields: { eventsPending: Atomics.load(pending, 0) } });
  }, rpcPausedCheckMs);
}

const server = new RpcServer({
  handle(event) {
    if (events.length === 0) setImmediate(flushEvents);
    events.push(event);
  },
  core: state,
  standbyLeader: () => state.standbyLeader,
  clusterTokenSha256Hex: init.clusterTokenSha256Hex,
  pingLimits: init.pingLimits ?? undefined,
}, postingLogger({}));

port.on('message', (m: ToRpcThread) => {
  switch (m.kind) {
    case 'listen':
      server.listen(m.host, m.port, m.tls).then(
        (bound) => post({ kind: 'listening', port: bound }),
        (err: NodeJS.ErrnoException) => post({ kind: 'listen_failed', message: err.message, code: err.code ?? '' }),
      );
      return;
    case 'send':
      state.term = m.term;
      for (const o of m.items) {
        if (o.to === 'worker') server.sendWorker(o.id, o.command, o.deferrable);
        else if (o.to === 'data_plane') server.sendDataPlane(o.id, o.update, o.deferrable);
        else server.broadcastDataPlanes(o.update, o.deferrable);
      }
      return;
    case 'standby_leader':
      state.standbyLeader = m.leader;
      return;
    case 'close':
      if (pausedCheck !== null) clearInterval(pausedCheck);
      void server.close().then(() => {
        post({ kind: 'closed' });
        port.close();
      });
  }
});

/**
 * @module data-plane/shell/cp-link
 * The data plane's stream to the control plane: hello, then demand reports and drain
 * acknowledgements up; routing snapshots and deltas down. Reconnects with capped exponential
 * back-off; the DP keeps serving warm requests on its cached routing table meanwhile.
 *
 * Every update is decoded and validated here (`decodeRoutingUpdate`): a bad one is logged as
 * `cp_link.invalid_message` and answered with a resync, never passed on or thrown. Exceptions
 * in stream callbacks are logged naming the event (see `guard.ts`).
 *
 * Fencing: each batch's term goes to the core first (`admitTerm`); a batch of a term below the
 * highest seen comes from a deposed leader and is ignored whole (`cp_link.stale_term`, once per
 * stream).
 */
import {
  ControlPlane,
  type DataPlaneBatch,
  type RoutingBatch,
} from '../../gen/dirigent/v1/cluster_pb.js';
import type { DataPlaneEventMsg, RoutingUpdateMsg, TermVerdict } from '../../api/cluster.js';
import { decodeBatchHeader, decodeRoutingUpdate, encodeDataPlaneBatch } from '../../wire/codec.js';
import { Batcher, deferrableFlushMs, isUnauthenticated, makeClient, openStream, type BidiStream, type LinkSecurity } from '../../shared/grpc.js';
import type { GrpcChannel } from '../../shared/grpc-link/channel.js';
import type { Logger } from '../../shared/logger.js';
import { CpAddresses } from '../../shared/cp-addresses.js';
import { guarded, runGuarded } from '../../shared/guard.js';

/**
 * At most one resync per this period for invalid messages: a CP that keeps sending a bad
 * snapshot must not turn the link into a snapshot/resync busy loop.
 */
const invalidResyncMsMin = 1_000;

export class ControlPlaneLink {
  private client: GrpcChannel | null = null;
  private stream: BidiStream<DataPlaneBatch> | null = null;
  private backoffMs: number;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  private resyncHold: NodeJS.Timeout | null = null;
  private resyncOwed = false;
  /** The CP list and the standbys' redirects: which CP to dial next. */
  private readonly targets: CpAddresses;
  connected = false;
  /** Refusals of our cluster token are logged once per streak (the back-off retries go on). */
  private refusedLogged = false;
  private readonly out = new Batcher<DataPlaneEventMsg>((events) => runGuarded(this.log, 'callback', 'cp_link.flush', () => {
    if (!this.stream || !this.connected) return;
    this.stream.write(encodeDataPlaneBatch(events));
  }), deferrableFlushMs);

  constructor(
    private readonly opts: {
      address: string;
      hello: { dataPlaneId: string; proxyAddress: string; internalAddress: string };
      backoffMs: readonly [number, number];
      onUpdate: (u: RoutingUpdateMsg) => void;
      /** The core's fencing decision for a batch of `term`, and the highest term it has seen. */
      admitTerm: (term: number) => TermVerdict;
      seenTerm: () => number;
      /** A message failed validation: the DP asks for a snapshot. */
      onInvalid: () => void;
      /** The cluster token and the CP's CA. */
      security: LinkSecurity;
    },
    private readonly log: Logger,
  ) {
    this.backoffMs = opts.backoffMs[0];
    this.targets = new CpAddresses(opts.address);
  }

  start(): void {
    this.connect();
  }

  /** `deferrable`: nothing waits on it (see `Batcher.push`). */
  send(event: DataPlaneEventMsg, deferrable = false): void {
    this.out.push(event, deferrable);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.resyncHold) clearTimeout(this.resyncHold);
    this.stream?.cancel();
    this.client?.close();
  }

  private requestResync(): void {
    if (this.resyncHold) {
      this.resyncOwed = true;
      return;
    }
    this.opts.onInvalid();
    this.resyncHold = setTimeout(guarded(this.log, 'timer', 'cp_link.resync_hold', () => {
      this.resyncHold = null;
      if (!this.resyncOwed) return;
      this.resyncOwed = false;
      this.requestResync();
    }), invalidResyncMsMin);
  }

  private refused(address: string, reason: string): void {
    if (this.refusedLogged) return;
    this.refusedLogged = true;
    this.log.error('cp_link.refused', { address, tokenFile: this.opts.security.clusterTokenFile, reason, hint: 'the control plane refused our cluster token: fix --cluster-token-file; retrying' });
  }

  private connect(): void {
    if (this.closed) return;
    const address = this.targets.current();
    this.client ??= makeClient(address, this.opts.security.caPem);
    const stream = openStream<DataPlaneBatch, RoutingBatch>(this.client, ControlPlane, 'dataPlaneStream', this.opts.security.clusterToken());
    this.stream = stream;
    let alive = true;
    let staleLogged = false;
    stream.on('data', guarded(this.log, 'callback', 'cp_link.data', (batch: RoutingBatch) => {
      if (batch.leaderAddress !== '' && batch.updates.length === 0) {
        // A standby: it names the leader and ends the stream; the next dial goes there.
        this.targets.redirected(batch.leaderAddress);
        this.log.info('cp_link.redirected', { from: address, leader: batch.leaderAddress });
        return;
      }
      if (!this.connected) {
        this.connected = true;
        this.backoffMs = this.opts.backoffMs[0];
        this.targets.served();
        this.refusedLogged = false;
        this.log.info('control_plane.connected', { address });
      }
      const header = decodeBatchHeader(batch);
      if (!header.ok) {
        this.log.warn('cp_link.invalid_message', { field: header.field, reason: header.reason });
        return;
      }
      const seen = this.opts.seenTerm();
      if (this.opts.admitTerm(header.msg.term) === 'stale') {
        if (!staleLogged) this.log.warn('cp_link.stale_term', { term: header.msg.term, seen });
        staleLogged = true;
        return;
      }
      for (const u of batch.updates) {
        const decoded = decodeRoutingUpdate(u);
        if (decoded.ok) {
          this.opts.onUpdate(decoded.msg);
          continue;
        }
        this.log.warn('cp_link.invalid_message', { field: decoded.field, reason: decoded.reason });
        // Later deltas of this batch would not follow the skipped one: a snapshot replaces all.
        this.requestResync();
        return;
      }
    }));
    const lost = (reason: string): void => {
      if (!alive) return;
      alive = false;
      const wasConnected = this.connected;
      this.connected = false;
      this.stream = null;
      if (this.closed) return;
      if (wasConnected) this.log.warn('control_plane.disconnected', { reason });
      const now = this.targets.ended();
      if (this.targets.current() !== address) {
        this.client?.close();
        this.client = null;
      }
      this.timer = setTimeout(guarded(this.log, 'timer', 'cp_link.reconnect', () => this.connect()), now ? 0 : this.backoffMs);
      if (!now) this.backoffMs = Math.min(this.opts.backoffMs[1], this.backoffMs * 2);
    };
    stream.on('error', guarded(this.log, 'callback', 'cp_link.error', (e: Error) => {
      if (isUnauthenticated(e)) this.refused(address, e.message);
      lost(e.message);
    }));
    stream.on('end', guarded(this.log, 'callback', 'cp_link.end', () => lost('stream ended')));
    stream.on('close', guarded(this.log, 'callback', 'cp_link.close', () => lost('stream closed')));
    stream.write(encodeDataPlaneBatch([{ case: 'hello', value: this.opts.hello }]));
    // The hello is the first frame; later events wait until the CP has answered once.
    this.connected = false;
  }
}

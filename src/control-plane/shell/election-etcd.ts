/**
 * @module control-plane/shell/election-etcd
 * Leader election on etcd. Each CP holds a lease (TTL `leaseTtlS`, kept alive by etcd3) and
 * announces itself under `members/<id>` on it. The leader is whoever creates `election/leader`
 * (a transaction: create only if absent) on its lease; its term is that key's create revision,
 * which grows with every new leader. Standbys poll the key every `electionPollMs`: they learn
 * the leader's addresses (for redirects and API forwarding) and take over once the key is gone,
 * which etcd does when the leader's lease ends.
 *
 * The leader trusts its lease only until the last acknowledged keepalive's send time + TTL:
 * a process paused (SIGSTOP) or cut off from etcd past that stops acting at its next check,
 * even before etcd's answer tells it the lease is gone.
 */
import type { Lease, Namespace } from 'etcd3';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import type { CpMember, Election } from './election.js';

export const leaderKey = 'election/leader';
const membersDir = 'members/';

export interface EtcdElectionOptions {
  self: CpMember;
  leaseTtlS: number;
  pollMs: number;
}

export class EtcdElection implements Election {
  private lease: Lease | null = null;
  private leaseId = '';
  private current: CpMember | null = null;
  private term = 0;
  private leading = false;
  private trustedUntilMs = 0;
  private keepaliveSentMs = 0;
  private lostCallbacks: ((reason: string) => void)[] = [];
  private watchdog: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly ns: Namespace, private readonly opts: EtcdElectionOptions, private readonly clock: Clock, private readonly log: Logger) {}

  /** The leader key's create revision this CP leads with (0 while standing by). */
  get leaderTerm(): number {
    return this.term;
  }

  async campaign(): Promise<number> {
    while (!this.closed) {
      try {
        const leaseId = await this.ensureLease();
        const r = await this.ns.if(leaderKey, 'Create', '==', 0)
          .then(this.ns.put(leaderKey).value(JSON.stringify(this.opts.self)).lease(leaseId))
          .else(this.ns.get(leaderKey))
          .commit();
        if (r.succeeded) return this.won(Number(r.header.revision));
        const kv = r.responses[0]?.response_range?.kvs?.[0];
        this.current = kv ? parseMember(kv.value.toString()) : null;
      } catch (err) {
        this.log.warn('election.campaign_failed', { id: this.opts.self.id, error: String(err) });
        this.dropLease();
      }
      await new Promise((r) => setTimeout(r, this.opts.pollMs));
    }
    return new Promise(() => undefined); // closed while standing by: never leads
  }

  leader(): CpMember | null {
    return this.current;
  }

  holdsLease(): boolean {
    if (!this.leading) return false;
    if (this.clock.nowMs() <= this.trustedUntilMs) return true;
    this.lose('lease not renewed within its ttl');
    return false;
  }

  onLost(cb: (reason: string) => void): void {
    this.lostCallbacks.push(cb);
  }

  async members(): Promise<(CpMember & { role: 'leader' | 'standby' })[]> {
    const values = Object.values(await this.ns.getAll().prefix(membersDir).strings());
    const leaderId = this.current?.id;
    return values.map(parseMember).filter((m): m is CpMember => m !== null)
      .map((m) => ({ ...m, role: m.id === leaderId ? 'leader' as const : 'standby' as const }));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.watchdog) clearInterval(this.watchdog);
    this.leading = false;
    const lease = this.lease;
    this.lease = null;
    // Revoking hands leadership over at once instead of after the TTL.
    if (lease) await lease.revoke().catch(() => undefined);
  }

  private async ensureLease(): Promise<string> {
    if (this.lease && this.leaseId) return this.leaseId;
    const sentMs = this.clock.nowMs();
    const lease = this.ns.lease(this.opts.leaseTtlS);
    this.lease = lease;
    lease.on('lost', (err) => this.lose(`lease lost: ${err.message}`));
    lease.on('keepaliveFired', () => { this.keepaliveSentMs = this.clock.nowMs(); });
    lease.on('keepaliveSucceeded', () => { this.trustedUntilMs = this.keepaliveSentMs + this.opts.leaseTtlS * 1000; });
    this.leaseId = await lease.grant();
    this.trustedUntilMs = sentMs + this.opts.leaseTtlS * 1000;
    await this.ns.put(membersDir + this.opts.self.id).value(JSON.stringify(this.opts.self)).lease(this.leaseId).exec();
    return this.leaseId;
  }

  private dropLease(): void {
    const lease = this.lease;
    this.lease = null;
    this.leaseId = '';
    lease?.removeAllListeners();
    lease?.release();
  }

  private won(term: number): number {
    this.term = term;
    this.leading = true;
    this.current = this.opts.self;
    this.log.info('election.won', { id: this.opts.self.id, term, leaseTtlS: this.opts.leaseTtlS });
    // A paused process sees its lease end at its first timer after resuming; the key check
    // also catches a leader key deleted or taken over by hand.
    this.watchdog = setInterval(() => void this.check(), this.opts.pollMs);
    return term;
  }

  private async check(): Promise<void> {
    if (!this.holdsLease()) return;
    try {
      const kv = await this.ns.get(leaderKey).exec();
      const createRevision = Number(kv.kvs[0]?.create_revision ?? 0);
      if (createRevision !== this.term) this.lose(`leader key now has create revision ${createRevision}`);
    } catch (err) {
      // etcd unreachable: the lease deadline above decides.
      this.log.debug('election.check_failed', { error: String(err) });
    }
  }

  private lose(reason: string): void {
    if (!this.leading) return;
    this.leading = false;
    if (this.watchdog) clearInterval(this.watchdog);
    this.log.warn('election.lost', { id: this.opts.self.id, term: this.term, reason });
    for (const cb of this.lostCallbacks) cb(reason);
  }
}

/** A member record from etcd; another process wrote it, so it is checked, not trusted. */
function parseMember(text: string): CpMember | null {
  try {
    const v = JSON.parse(text) as Partial<CpMember>;
    if (typeof v.id !== 'string' || typeof v.rpcAddress !== 'string' || typeof v.apiAddress !== 'string') return null;
    return { id: v.id, rpcAddress: v.rpcAddress, apiAddress: v.apiAddress, pid: typeof v.pid === 'number' ? v.pid : 0 };
  } catch {
    return null;
  }
}

/**
 * @module control-plane/shell/election
 * Who leads the control plane, and with which term (DESIGN §6). Two implementations: `SoloElection`
 * (the embedded SQLite layout: always the leader; the term a counter persisted in SQLite that
 * grows on every start) and `EtcdElection` (election-etcd.ts: a lease and a leader key in etcd;
 * the term is the key's create revision, which only grows).
 *
 * A leader that loses its lease must stop acting at once: `holdsLease()` is checked before the
 * CP sends anything, and `onLost` fires once; the CP then exits (see main.ts) so the supervisor
 * restarts it as a standby with empty memory.
 */

/** How other processes reach a CP replica. */
export interface CpMember {
  id: string;
  rpcAddress: string;
  apiAddress: string;
  pid: number;
}

export interface Election {
  /** Resolves once this CP leads, with its term (a number that only grows). */
  campaign(): Promise<number>;
  /** The leader as last seen (this CP itself once it leads); null while unknown. */
  leader(): CpMember | null;
  /** False as soon as this CP's lease may have ended: it must not act from then on. */
  holdsLease(): boolean;
  /** Called once when a leader loses leadership. */
  onLost(cb: (reason: string) => void): void;
  /** The CP replicas alive now, each with its role. */
  members(): Promise<(CpMember & { role: 'leader' | 'standby' })[]>;
  close(): Promise<void>;
}

/** The single-CP layout: leads at once; the term comes from the persisted start counter. */
export class SoloElection implements Election {
  constructor(private readonly self: CpMember, private readonly nextTerm: () => number) {}

  campaign(): Promise<number> {
    return Promise.resolve(this.nextTerm());
  }

  leader(): CpMember {
    return this.self;
  }

  holdsLease(): boolean {
    return true;
  }

  onLost(): void {
    // Nobody can take the lead from the only CP.
  }

  members(): Promise<(CpMember & { role: 'leader' })[]> {
    return Promise.resolve([{ ...this.self, role: 'leader' }]);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

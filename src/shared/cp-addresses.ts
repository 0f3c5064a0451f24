/**
 * @module shared/cp-addresses
 * Which control plane a worker or data plane dials next, given the `--control-plane` list
 * (`a:9090,b:9190,...`) and the redirects standbys answer with (DESIGN §6): a redirect names the
 * leader, dialled next at once; a failed dial (or a standby that knows no leader) moves on to
 * the next address of the list after the caller's back-off. Redirects in a row are bounded so
 * two confused standbys cannot bounce a peer between them without back-off.
 */

/** Redirects followed at once in a row; past it the caller backs off as for a failure. */
const redirectsInARowMax = 3;

export class CpAddresses {
  private readonly list: string[];
  private index = 0;
  private redirect: string | null = null;
  private redirectsInARow = 0;
  private redirectJustNow = false;

  constructor(addresses: string) {
    this.list = addresses.split(',').map((a) => a.trim()).filter((a) => a !== '');
    if (this.list.length === 0) throw new Error('control-plane address list is empty');
  }

  /** The address to dial now. */
  current(): string {
    return this.redirect ?? this.list[this.index]!;
  }

  /** Whether every dial goes to the one configured address (a shared channel may serve it). */
  get single(): boolean {
    return this.list.length === 1 && this.redirect === null;
  }

  /** A standby named the leader (its stream ends next). */
  redirected(leader: string): void {
    this.redirect = leader;
    this.redirectJustNow = true;
    this.redirectsInARow += 1;
  }

  /** A stream was established and served: the next redirect starts a fresh count. */
  served(): void {
    this.redirectsInARow = 0;
  }

  /**
   * The dial failed or the stream ended: after a redirect the leader is dialled next (at once,
   * unless too many redirects came in a row); otherwise the next address of the list, after the
   * caller's back-off. True: dial at once.
   */
  ended(): boolean {
    if (this.redirectJustNow) {
      this.redirectJustNow = false;
      return this.redirectsInARow <= redirectsInARowMax;
    }
    if (this.redirect !== null) this.redirect = null;
    else this.index = (this.index + 1) % this.list.length;
    return false;
  }
}

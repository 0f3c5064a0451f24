/**
 * @module shared/listen-backlog
 * The accept-queue length every listener asks listen(2) for. Node's default is 511. Linux caps
 * what is asked at net.core.somaxconn (4096 by default since Linux 5.4), so asking for the most
 * gives the kernel's own limit, as Go's listeners do (they read somaxconn). While a loop is busy,
 * connections beyond the queue lose their SYN or their handshake's last ACK, and each client
 * waits out a retransmission: 1 s or more. Seen with `bench cold` at 3,000/s opening about a
 * thousand connections at once: p99 2 s from the bench's write to the DP's admission, and the
 * kernel's ListenOverflows counter up by thousands.
 */

/** What listen(2) is asked for; the kernel takes min(this, net.core.somaxconn). */
export const listenBacklog = 65_535;

/**
 * What a server listens with: host and port, or `fd` >= 0, an inherited socket already bound
 * (cli/held-listener), whose address and port are whatever it was bound to.
 */
export function listenOptions(host: string, port: number, fd = -1): { host: string; port: number; backlog: number } | { fd: number; backlog: number } {
  return fd >= 0 ? { fd, backlog: listenBacklog } : { host, port, backlog: listenBacklog };
}

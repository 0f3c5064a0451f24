/**
 * @module worker/runtime/sandbox-firewall
 * The packet filter that keeps process sandboxes off the cluster's own services.
 *
 * Design decision: sandboxes share the host network namespace, so the data plane reaches a
 * sandbox at worker-host:port, local or remote, with no veth, no DNAT and no extra cold-start
 * cost. What walls them in is the uid: each sandbox runs as its own host uid from the worker's
 * pool (sandbox-uids.ts), and ONE nftables table per worker matches on the two uid ranges in the
 * output hook:
 *
 *   meta skuid <no-egress half>  ->  replies to inbound connections pass; everything else refused
 *   meta skuid <egress half>     ->  replies pass; any address of this host refused (CP API/RPC,
 *                                    DP ports, the worker, other sandboxes, loopback); the
 *                                    egressDenyCidrs (private, link-local/metadata, CGNAT)
 *                                    refused; the rest of the internet accepted; DNS (port 53)
 *                                    to the resolvers of /etc/resolv.conf allowed before all that
 *
 * Refused means rejected (TCP reset, else ICMP admin-prohibited), not dropped, so a sandbox
 * fails fast instead of hanging in connect(). The table (`inet dirigent_<12 hex of the state
 * dir's hash>`) is loaded atomically with `nft -f -`, replaces one a previous run left, and is
 * deleted on close. Separate uids are also why sandboxes cannot signal or ptrace each other or
 * steal each other's ports (SO_REUSEPORT needs the same uid).
 *
 * NOT covered: abstract unix sockets of host processes (they live in the network namespace, not
 * the fs, and no packet passes the filter), and a sandbox binding other free ports of the host
 * (it can listen; nobody is told to connect there, and other sandboxes cannot reach them). The
 * resolvers' port 53 is open to egress sandboxes even when it is on this host.
 * Several workers on one host need disjoint uid ranges (checked by whoever starts them).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import type { Logger } from '../../shared/logger.js';
import type { UidRanges } from './sandbox-uids.js';

/** Where Debian's nftables package installs nft. */
export const nftPath = '/usr/sbin/nft';
/** Bound on one nft run (a load or a delete takes a few ms). */
const nftTimeoutMs = 10_000;
/** nft's stderr kept for the error message. */
const nftStderrCharsMax = 2_000;

/** One table per worker: its name derives from the worker's state dir. */
export function firewallTableName(stateDir: string): string {
  const digest = createHash('sha256').update(resolve(stateDir)).digest('hex');
  return `dirigent_${digest.slice(0, 12)}`;
}

/** The whole nft script; loading it replaces any table of the same name in one transaction. */
export function firewallRuleset(
  table: string,
  ranges: UidRanges,
  denyCidrs: readonly string[],
  nameservers: readonly string[] = [],
): string {
  const v4 = denyCidrs.filter((c) => !c.includes(':'));
  const v6 = denyCidrs.filter((c) => c.includes(':'));
  // DNS to the host's own resolvers (often on loopback or a private address) stays possible.
  const dns = nameservers.flatMap((ns) => {
    const family = ns.includes(':') ? 'ip6' : 'ip';
    return ['udp', 'tcp'].map((proto) => `    ${family} daddr ${ns} ${proto} dport 53 accept`);
  });
  const range = (r: readonly [number, number]): string => `${r[0]}-${r[1]}`;
  const lines = [
    // Declaring the table first makes the delete valid whether or not a previous run left it.
    `table inet ${table}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    '  chain output {',
    '    type filter hook output priority filter; policy accept;',
    `    meta skuid ${range(ranges.noEgress)} jump no_egress`,
    `    meta skuid ${range(ranges.egress)} jump egress`,
    '  }',
    '  chain no_egress {',
    '    ct state established,related accept',
    '    goto refuse',
    '  }',
    '  chain egress {',
    '    ct state established,related accept',
    ...dns,
    '    fib daddr type local goto refuse',
    ...(v4.length > 0 ? [`    ip daddr { ${v4.join(', ')} } goto refuse`] : []),
    ...(v6.length > 0 ? [`    ip6 daddr { ${v6.join(', ')} } goto refuse`] : []),
    '    accept',
    '  }',
    '  chain refuse {',
    '    meta l4proto tcp reject with tcp reset',
    '    reject with icmpx admin-prohibited',
    '  }',
    '}',
  ];
  return `${lines.join('\n')}\n`;
}

export interface SandboxFirewall {
  readonly table: string;
  /** Deletes the table; idempotent. */
  close(): Promise<void>;
}

export interface FirewallOptions {
  stateDir: string;
  ranges: UidRanges;
  denyCidrs: readonly string[];
  /** Resolvers egress sandboxes may query on port 53 (from the /etc/resolv.conf they see). */
  nameservers?: readonly string[];
  log: Logger;
}

/** Loads the table (replacing a stale one). Rejects with nft's own message when it fails. */
export async function installSandboxFirewall(opts: FirewallOptions): Promise<SandboxFirewall> {
  const table = firewallTableName(opts.stateDir);
  await runNft(['-f', '-'], firewallRuleset(table, opts.ranges, opts.denyCidrs, opts.nameservers));
  opts.log.info('firewall.installed', { table, noEgress: opts.ranges.noEgress, egress: opts.ranges.egress });
  let closed: Promise<void> | undefined;
  return {
    table,
    close() {
      closed ??= runNft(['delete', 'table', 'inet', table]).then(
        () => opts.log.info('firewall.removed', { table }),
        (err: Error) => opts.log.warn('firewall.remove_failed', { table, err: err.message }),
      );
      return closed;
    },
  };
}

/** Runs nft with `stdin`; resolves on exit 0, else rejects with its stderr. */
function runNft(args: string[], stdin = ''): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(nftPath, args, { stdio: ['pipe', 'ignore', 'pipe'], timeout: nftTimeoutMs });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-nftStderrCharsMax);
    });
    child.on('error', (err) => reject(new Error(`nft: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolvePromise();
      else reject(new Error(`nft ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
    });
    child.stdin.on('error', () => {}); // nft may exit before reading; its exit says why
    child.stdin.end(stdin);
  });
}
